"""What ingest finds under the paths it is given: the files it reads, the files of no kind it
reads (passed over), and the entries it cannot read at all (named, never waited on).

A named pipe in a landing folder would block the run forever if it were opened (nothing may
ever write to it), so an entry is only opened when it is a regular file; every other entry, and
a folder that cannot be listed, is named with why, so that the summary shows it and the rest of
the folder is read.
"""

import os
import stat
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from warehouse.records import is_readable_file

KINDS = {
    stat.S_IFIFO: "a named pipe (FIFO), not a file",
    stat.S_IFSOCK: "a socket, not a file",
    stat.S_IFCHR: "a character device, not a file",
    stat.S_IFBLK: "a block device, not a file",
}


class IngestError(Exception):
    """A path given to ingest cannot be read at all."""


@dataclass(frozen=True)
class Unreadable:
    """An entry ingest could not read, and why (one sentence for a person)."""

    path: str
    reason: str


def find_files(paths: Iterable[Path]) -> list[Path]:
    """The files to read: each file named, and every readable file under each folder, sorted."""
    found: list[Path] = []
    for path in _existing(paths):
        if path.is_dir():
            found.extend(sorted(p for p in _entries(path) if _is_data_file(p)))
        elif path.is_file():
            found.append(path)
    return found


# files Sendout itself is still writing, or holding back, in a landing folder: the webhook
# service's open file, a landing file being written, the sandbox's events not yet due
PENDING_SUFFIX = ".pending"  # the sandbox's events whose time has not come (never read)
UNFINISHED_SUFFIXES = (".open", ".partial", PENDING_SUFFIX)


def passed_over(paths: Iterable[Path]) -> list[Path]:
    """The files under the folders in `paths` that are of no kind ingest reads (Sendout's own
    unfinished files left out: they are no mistake)."""
    return [
        p
        for path in paths
        if path.is_dir()
        for p in sorted(_entries(path))
        if p.is_file() and not is_readable_file(p) and p.suffix not in UNFINISHED_SUFFIXES
    ]


def unreadable_entries(paths: Iterable[Path]) -> list[Unreadable]:
    """The paths named, and the entries under the folders named, that cannot be read as files:
    named pipes, sockets, devices, links to nothing, folders that cannot be listed."""
    found: list[Unreadable] = []
    for path in _existing(paths):
        entries = sorted(_entries(path)) if path.is_dir() else [path]
        found.extend(u for entry in entries if (u := why_unreadable(entry)))
    return found


def why_unreadable(path: Path) -> Unreadable | None:
    """Why `path` cannot be read as a file or walked as a folder; None when it can."""
    try:
        mode = path.stat().st_mode  # follows a link: a link to a pipe is a pipe
    except OSError as error:
        what = "a link to nothing" if path.is_symlink() else "cannot be looked at"
        return Unreadable(str(path), f"{what}: {error.strerror}")
    if stat.S_ISDIR(mode):
        try:
            with os.scandir(path):
                return None
        except OSError as error:
            return Unreadable(str(path), f"a folder that cannot be listed: {error.strerror}")
    if stat.S_ISREG(mode):
        return None
    return Unreadable(str(path), KINDS.get(stat.S_IFMT(mode), "not a regular file"))


def _existing(paths: Iterable[Path]) -> Iterator[Path]:
    """The paths, each checked to exist (a link to nothing exists: it is named, not refused)."""
    for path in paths:
        if not os.path.lexists(path):
            raise IngestError(f"{path} does not exist")
        yield path


def _entries(folder: Path) -> Iterator[Path]:
    """Everything under a folder, and the folder itself when it cannot be listed."""
    yield from folder.rglob("*")
    if why_unreadable(folder):
        yield folder


def _is_data_file(path: Path) -> bool:
    # is_file first: it follows links and is False for a pipe, which must never be opened
    return path.is_file() and is_readable_file(path)
