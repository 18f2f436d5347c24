from reliability_cli.cli import main

main()
