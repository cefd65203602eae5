"""The code's layout as README.md describes it: small modules and functions, and the senders and
the webhook service apart (what both need lives in a home both import)."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).parents[1]
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


# warehouse functions whose results depend on settings (prices, inbound SMS defaults, login
# delays); without `config` they use the embedded defaults, which only tests may rely on
TAKES_CONFIG = {"refresh", "refresh_figures", "create", "resend_to", "resend_to_non_openers"}
TAKES_CONFIG |= {"log_in"}


def _on_a_connection(call: ast.Call) -> bool:
    """A call whose first argument is a warehouse connection (`con`, `hold.con`)."""
    first = call.args[0] if call.args else None
    return (isinstance(first, ast.Name) and first.id == "con") or (
        isinstance(first, ast.Attribute) and first.attr == "con"
    )


def _name(call: ast.Call) -> str | None:
    func = call.func
    return func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)


def test_the_warehouse_reads_no_settings_of_its_own() -> None:
    reading = {
        f"{path.as_posix()}:{node.lineno}"
        for path in Path("warehouse").rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and _name(node) in {"settings", "WarehouseSettings"}
    }
    flows = {
        p.as_posix() for p in Path("warehouse").rglob("*.py") if "flows.settings" in imported(p)
    }

    assert reading == set() and flows == set()


def test_flows_and_pages_give_the_warehouse_their_settings() -> None:
    without = {
        f"{path.as_posix()}:{node.lineno}"
        for folder in ("flows", "dashboards")
        for path in Path(folder).rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call)
        and _name(node) in TAKES_CONFIG
        and _on_a_connection(node)
        and not any(k.arg == "config" for k in node.keywords)
        and not (_name(node) == "refresh_figures" and len(node.args) >= 2)
    }

    assert without == set()


def test_every_setting_is_in_the_operators_table() -> None:
    """docs/operations.md is the list of settings an operator reads: each one is there (a row
    may name several, `SENDOUT_SMTP_HOST`, `_PORT`: the shared beginning is left out)."""
    from flows.settings import Settings

    documented = set()
    for line in (ROOT / "docs" / "operations.md").read_text().splitlines():
        if line.startswith("| `SENDOUT_"):
            prefix = ""
            for name in re.findall(r"`(SENDOUT_[A-Z0-9_]+|_[A-Z0-9_]+)`", line.split("|")[1]):
                if name.startswith("SENDOUT_"):
                    documented.add(name)
                    prefix = name.rsplit("_", 1)[0]
                else:
                    documented.add(prefix + name)

    missing = {f"SENDOUT_{name.upper()}" for name in Settings.model_fields} - documented
    assert not missing, sorted(missing)
