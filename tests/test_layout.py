"""The code's layout as README.md describes it: small modules and functions, and the senders and
the webhook service apart (what both need lives in a home both import)."""

import ast
from pathlib import Path

FOLDERS = ("warehouse", "flows", "dashboards")
MAX_MODULE_LINES = 400
MAX_FUNCTION_LINES = 80


def modules() -> list[Path]:
    return sorted(p for folder in FOLDERS for p in Path(folder).rglob("*.py"))


def imported(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_no_module_is_over_400_lines() -> None:
    long = {
        p.as_posix(): n for p in modules() if (n := p.read_text().count("\n")) > MAX_MODULE_LINES
    }

    assert long == {}


def test_no_function_is_over_80_lines() -> None:
    long = {
        f"{path.as_posix()}:{node.name}": node.end_lineno - node.lineno + 1
        for path in modules()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    }

    assert long == {}


def test_the_senders_and_the_webhook_service_do_not_import_each_other() -> None:
    crossings = {
        p.as_posix(): sorted(n for n in imported(p) if n.startswith(other))
        for folder, other in (
            ("flows/senders", "flows.webhooks"),
            ("flows/webhooks", "flows.senders"),
        )
        for p in Path(folder).rglob("*.py")
        if any(n.startswith(other) for n in imported(p))
    }

    assert crossings == {}
