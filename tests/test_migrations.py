"""The schema comes from ordered, recorded migrations; applying them twice is a no-op."""

from pathlib import Path

from warehouse.db import connect, migrate

MIGRATIONS = sorted(
    p.stem for p in (Path(__file__).parents[1] / "warehouse" / "migrations").glob("*.sql")
)
TABLES = {"contacts", "sendouts", "messages", "events", "ingested_files", "quarantine"}


def test_a_new_warehouse_gets_every_table_and_records_the_migration(tmp_path: Path) -> None:
    with connect(tmp_path / "new.duckdb") as con:
        applied = migrate(con)
        tables = {row[0] for row in con.sql("SELECT table_name FROM duckdb_tables()").fetchall()}
        recorded = con.sql("SELECT version, name FROM schema_migrations").fetchall()

    assert applied == MIGRATIONS  # every file, in order of its number
    assert tables >= TABLES | {"schema_migrations"}
    assert [f"{version:04d}_{name}" for version, name in recorded] == MIGRATIONS


def test_migrating_again_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "again.duckdb"
    with connect(path) as con:
        migrate(con)
        con.execute("INSERT INTO contacts (email) VALUES ('kept@example.com')")
    with connect(path) as con:
        assert migrate(con) == []
        assert con.sql("SELECT email FROM contacts").fetchall() == [("kept@example.com",)]
        assert con.sql("SELECT count(*) FROM schema_migrations").fetchall() == [(len(MIGRATIONS),)]


def test_the_default_warehouse_is_under_data_unless_sendout_db_says_otherwise(
    monkeypatch,
) -> None:
    from warehouse.settings import WarehouseSettings

    monkeypatch.delenv("SENDOUT_DB", raising=False)
    assert WarehouseSettings().db == Path("data/sendout.duckdb")
    monkeypatch.setenv("SENDOUT_DB", "/srv/sendout/prod.duckdb")
    assert WarehouseSettings().db == Path("/srv/sendout/prod.duckdb")
