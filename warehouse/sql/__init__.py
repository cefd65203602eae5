"""SQL kept in files (this folder): load them by name and run them statement by statement."""

from functools import cache
from importlib import resources

import duckdb


@cache
def read_sql(name: str, package: str = "warehouse.sql") -> str:
    """The text of `name` (for example "link_events.sql") in a package of SQL files."""
    return (resources.files(package) / name).read_text()


def run_script(con: duckdb.DuckDBPyConnection, name: str, package: str = "warehouse.sql") -> None:
    """Execute every statement of a SQL file, in order."""
    for statement in con.extract_statements(read_sql(name, package)):
        con.execute(statement)
