"""Short connections to the warehouse (warehouse/db.py): data handed to SQL and what a failure
inside a transaction reports."""

from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from warehouse.db import open_warehouse, registered, transaction


def test_a_failing_statement_on_registered_data_raises_its_own_error(tmp_path: Path) -> None:
    """Not DuckDB's "transaction is aborted", which the unregistering would raise after it."""
    with open_warehouse(tmp_path / "w.duckdb") as con:
        refused = pytest.raises(duckdb.ConversionException, match="Could not convert")
        with refused, transaction(con), registered(con, "incoming", pa.table({"n": ["x"]})):
            con.execute("SELECT n::INTEGER FROM incoming").fetchall()
        with registered(con, "incoming", pa.table({"n": ["7"]})):  # and the name is free again
            assert con.execute("SELECT n::INTEGER FROM incoming").fetchall() == [(7,)]
