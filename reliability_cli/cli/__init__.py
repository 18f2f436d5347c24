"""The ``relcheck`` command line: one module per command, each a thin shell over the core."""

from __future__ import annotations

from .app import app


def main() -> None:
    """Console-script entry point."""
    app(prog_name="relcheck")


__all__ = ["app", "main"]

if __name__ == "__main__":  # pragma: no cover
    main()
