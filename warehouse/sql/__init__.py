"""SQL kept in files (this folder): load them by name and run them statement by statement."""

from functools import cache
from importlib import resources

import duckdb

from warehouse.db import fetch_dicts


@cache
def read_sql(name: str, package: str = "warehouse.sql") -> str:
    """The text of `name` (for example "link_events.sql") in a package of SQL files."""
    return (resources.files(package) / name).read_text()


def run_script(
    con: duckdb.DuckDBPyConnection,
    name: str,
    params: dict | None = None,
    package: str = "warehouse.sql",
) -> list[list[dict]]:
    """Execute every statement of a SQL file in order, binding to each the named parameters it
    uses; return each statement's rows, as dicts."""
    results = []
    for statement in con.extract_statements(read_sql(name, package)):
        used = {k: v for k, v in (params or {}).items() if k in statement.named_parameters}
        results.append(fetch_dicts(con.execute(statement, used or None)))
    return results
