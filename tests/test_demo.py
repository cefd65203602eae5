"""`sendout demo` builds a workspace that shows everything: a history of send-outs whose figures
add up, replies with a STOP on the Unsubscribes list, and one send-out still scheduled."""

import json
from pathlib import Path

from click.testing import CliRunner

from flows.cli import cli
from flows.settings import settings
from warehouse.db import connect
from warehouse.vocabulary import STATUS_COLUMNS


def test_the_demo_workspace_has_every_kind_of_send_out(tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SENDOUT_LANDING", str(tmp_path / "data" / "landing"))
    settings.cache_clear()
    runner = CliRunner()

    built = runner.invoke(cli, ["demo", "--contacts", "400", "--seed", "3"])
    again = runner.invoke(cli, ["demo"])
    rows = json.loads(runner.invoke(cli, ["report", "--json"]).output)

    assert built.exit_code == 0, built.output
    assert "rows rejected at import" in built.output
    assert again.exit_code == 1 and "exists already" in again.output
    by_name = {(r["name"], r["channel"]): r for r in rows}
    for row in rows:  # every message is counted once, by its status
        assert sum(row[c] for c in STATUS_COLUMNS.values()) == row["planned"]
        assert row["done"] == row["planned"] - row["queued"]
    newsletter = by_name["November newsletter", "email"]
    reminder = by_name["Visit reminder", "email"]
    sms = by_name["Visit reminder by SMS", "sms"]
    scheduled = by_name["December newsletter", "email"]
    assert newsletter["sendout_status"] == reminder["sendout_status"] == "Delivered"
    assert newsletter["opened"] + newsletter["clicked"] > 0 and newsletter["bad_email"] > 0
    assert reminder["skipped"] > 0  # the newsletter's bad addresses were on the list by then
    assert sms["sendout_status"] == "Delivered" and sms["inbound"] > 0
    assert (
        scheduled["sendout_status"] == "Scheduled" and scheduled["queued"] == scheduled["planned"]
    )
    with connect(tmp_path / "data" / "sendout.duckdb", read_only=True) as con:
        stops = con.sql(
            "SELECT count(*) FROM inbound_messages JOIN unsubscribes "
            "ON unsubscribes.address = inbound_messages.from_number "
            "WHERE keyword = 'stop' AND reason = 'stop_reply'"
        ).fetchall()[0][0]
        wrong_words = con.sql(
            "SELECT count(*) FROM inbound_messages WHERE lower(body) LIKE 'stop %'"
        ).fetchall()[0][0]
        handled = dict(
            con.sql("SELECT status, count(*) FROM inbound_messages GROUP BY 1").fetchall()
        )
    assert stops > 0  # a STOP reply is on the Unsubscribes list
    assert wrong_words > 0  # and a reply with the wrong word is not a STOP
    # every reply forwarded to the team's phone; all but Twilio's own keywords answered too
    assert set(handled) == {"Forwarded", "Replied"}
    settings.cache_clear()
