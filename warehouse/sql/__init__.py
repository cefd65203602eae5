"""SQL kept in files (this folder): load them by name and run them statement by statement."""

from functools import cache
from importlib import resources

import duckdb


@cache
def read_sql(name: str, package: str = "warehouse.sql") -> str:
    """The text of `name` (for example "link_events.sql") in a package of SQL files."""
    return (resources.files(package) / name).read_text()


def run_script(
    con: duckdb.DuckDBPyConnection,
    name: str,
    params: dict | None = None,
    package: str = "warehouse.sql",
) -> list[list[tuple]]:
    """Execute every statement of a SQL file in order, binding to each the named parameters it
    uses; return each statement's rows."""
    results = []
    for statement in con.extract_statements(read_sql(name, package)):
        used = {k: v for k, v in (params or {}).items() if k in statement.named_parameters}
        results.append(con.execute(statement, used or None).fetchall())
    return results
