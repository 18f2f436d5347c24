"""The suite's own habit: shared factories live in helpers modules, so no test module imports
from a ``conftest.py`` or from another test module (each can be read, moved or deleted alone)."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _imported_modules(path: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            out.append("." * node.level + (node.module or ""))
        elif isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
    return out


def test_no_test_module_imports_a_conftest_or_another_test_module():
    offenders = []
    for path in sorted(TESTS.rglob("*.py")):
        for module in _imported_modules(path):
            last = module.rsplit(".", 1)[-1]
            if last == "conftest" or last.startswith("test_"):
                offenders.append(f"{path.relative_to(TESTS)} imports {module}")
    assert offenders == []


def test_the_check_sees_both_spellings(tmp_path):
    sample = tmp_path / "test_sample.py"
    sample.write_text("from .conftest import run\nfrom tests.core.test_show import LONG\nimport tests.helpers\n")
    assert _imported_modules(sample) == [".conftest", "tests.core.test_show", "tests.helpers"]
