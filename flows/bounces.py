"""Getting bounce mail into the landing folder, where ingest reads it (DESIGN §7).

Messages land in a Maildir, `<landing>/bounces`: written under `tmp/`, flushed to disk, then
renamed into `new/`, so a reader never sees half a message and a crash leaves nothing half
landed. A message's file is named by the hash of its bytes, so landing it twice is harmless.

- `receive`: one message from standard input (Postfix's pipe transport, a `.forward`).
- `fetch`: every message of an IMAP mailbox (TLS), each moved or deleted on the server only
  once its file is durable here: at least once, never lost.
"""

import hashlib
import imaplib
import os
import re
import ssl
from dataclasses import dataclass
from pathlib import Path

from flows.settings import Settings
from warehouse.own_records import sync_folder

MAILDIR = "bounces"
FETCH_BATCH = 100  # messages fetched per IMAP command


class BounceMailboxError(RuntimeError):
    """The bounce mailbox cannot be used (not configured, unreachable, login refused)."""


@dataclass
class FetchSummary:
    fetched: int = 0
    landed: int = 0  # new files (a message landed before is not landed again)


def maildir(landing: Path) -> Path:
    """The landing Maildir of bounce mail, created when missing."""
    root = landing / MAILDIR
    for sub in ("tmp", "new", "cur"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    return root


def land_message(raw: bytes, landing: Path) -> tuple[Path, bool]:
    """Put one message durably in the landing Maildir; return its file and whether it is new."""
    root = maildir(landing)
    name = hashlib.sha256(raw).hexdigest()[:32] + ".eml"
    final = root / "new" / name
    if final.exists() or (root / "cur" / name).exists():
        return final, False
    temporary = root / "tmp" / f"{name}.{os.getpid()}"
    with temporary.open("wb") as handle:
        handle.write(raw)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, final)
    sync_folder(final.parent)
    return final, True


def fetch(config: Settings, on_message=None) -> FetchSummary:
    """Land every message of the configured IMAP folder, then move or delete it there."""
    if not config.bounce_imap_host or not config.bounce_imap_user:
        raise BounceMailboxError(
            "no bounce mailbox is configured: set SENDOUT_BOUNCE_IMAP_HOST, "
            "SENDOUT_BOUNCE_IMAP_USER and SENDOUT_BOUNCE_IMAP_PASSWORD"
        )
    summary = FetchSummary()
    with _session(config) as imap:
        uids = _search(imap, config.bounce_imap_folder)
        for start in range(0, len(uids), FETCH_BATCH):
            landed = []
            for uid, raw in _fetch(imap, uids[start : start + FETCH_BATCH]):
                _, new = land_message(raw, config.landing)
                landed.append(uid)
                summary.fetched += 1
                summary.landed += new
                if on_message:
                    on_message(summary)
            _done(imap, landed, config.bounce_imap_done_folder)  # only what is landed
    return summary


class _session:
    """An IMAP session over TLS, logged in, logged out at the end whatever happens."""

    def __init__(self, config: Settings):
        self.config = config

    def __enter__(self) -> imaplib.IMAP4_SSL:
        config = self.config
        context = ssl.create_default_context(cafile=config.bounce_imap_ca_file)
        password = (
            config.bounce_imap_password.get_secret_value() if config.bounce_imap_password else ""
        )
        where = f"{config.bounce_imap_host}:{config.bounce_imap_port}"
        try:
            self.imap = imaplib.IMAP4_SSL(
                config.bounce_imap_host, config.bounce_imap_port, ssl_context=context, timeout=30
            )
        except (OSError, imaplib.IMAP4.error) as error:
            raise BounceMailboxError(
                f"the bounce mailbox at {where} cannot be reached: {error}"
            ) from error
        try:
            self.imap.login(config.bounce_imap_user, password)
        except imaplib.IMAP4.error as error:
            self.imap.shutdown()
            raise BounceMailboxError(
                f"the bounce mailbox at {where} refused the login of {config.bounce_imap_user}"
            ) from error
        return self.imap

    def __exit__(self, *exc) -> None:
        try:
            self.imap.logout()
        except (OSError, imaplib.IMAP4.error):
            self.imap.shutdown()


def _search(imap: imaplib.IMAP4_SSL, folder: str) -> list[bytes]:
    status, _ = imap.select(_quoted(folder))
    if status != "OK":
        raise BounceMailboxError(f"the bounce mailbox has no folder {folder!r}")
    status, data = imap.uid("SEARCH", "UNDELETED")  # not what a crash left flagged
    if status != "OK":
        raise BounceMailboxError(f"the bounce mailbox would not list folder {folder!r}")
    return data[0].split() if data and data[0] else []


def _fetch(imap: imaplib.IMAP4_SSL, uids: list[bytes]):
    """(uid, bytes) of each message the server handed over, read without marking it seen; a
    message it left out or sent empty is not yielded, and so stays on the server."""
    status, data = imap.uid("FETCH", b",".join(uids).decode(), "(UID BODY.PEEK[])")
    if status != "OK":
        raise BounceMailboxError("the bounce mailbox would not hand over its messages")
    for item in data:
        if isinstance(item, tuple) and len(item) == 2 and item[1]:
            found = re.search(rb"UID (\d+)", item[0])
            if found:
                yield found.group(1), item[1]


def _done(imap: imaplib.IMAP4_SSL, uids: list[bytes], done_folder: str | None) -> None:
    """Move the landed messages to the done folder, or delete them: these messages only (UID
    EXPUNGE where the server offers UIDPLUS; a plain EXPUNGE would also remove what another
    client flagged)."""
    if not uids:
        return
    numbers = b",".join(uids).decode()
    if done_folder:
        imap.create(_quoted(done_folder))  # fails harmlessly when it exists
        status, _ = imap.uid("COPY", numbers, _quoted(done_folder))
        if status != "OK":
            raise BounceMailboxError(f"the bounce mailbox would not copy to {done_folder!r}")
    imap.uid("STORE", numbers, "+FLAGS.SILENT", r"(\Deleted)")
    if "UIDPLUS" in imap.capabilities:
        imap.uid("EXPUNGE", numbers)
    else:
        imap.expunge()


def _quoted(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
