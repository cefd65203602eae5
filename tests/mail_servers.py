"""Real mail servers on 127.0.0.1 for tests: Debian's Postfix as a relay that writes real DSNs, an
SMTP destination behind it that refuses some recipients, and Dovecot serving a Maildir over IMAPS.

    with (
        mail_workdir() as workdir,
        destination_smtp() as destination,
        postfix_relay(workdir, destination.port) as relay,
    ):
        with smtplib.SMTP(relay.host, relay.port) as smtp:
            smtp.sendmail("bounces+msg_1@bounces.test", ["unknown1@dest.test"], message)
        [dsn] = relay.wait_for_bounces(1)  # multipart/report, Status: 5.1.1

Postfix and Dovecot come from Debian (`make test-deps`) and are started as root; they drop to
their own users (postfix; dovecot and dovenull). Mail is delivered, piped and read as an
unprivileged mail user, `nobody` unless said otherwise: Postfix will not deliver or pipe as root
and Dovecot will not serve a root-owned mailbox. So these users must be able to reach the working
folder, the Maildirs and a pipe's command: every folder above them must be searchable by others.
pytest's tmp_path is not (/tmp/pytest-of-root is 0700, and each pytest session that starts resets
it to 0700, so loosening it is undone under a running server): use mail_workdir(). A uv venv's
bin/python links to the interpreter it was made from, here under /root (0700), which `nobody`
cannot run either.
"""

import contextlib
import imaplib
import json
import os
import pty
import pwd
import re
import shutil
import signal
import socket
import ssl
import stat
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from pathlib import Path
from typing import TypeVar

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP

from tests.smtp_sink import free_port

MAIL_USER = "nobody"
T = TypeVar("T")


# --- waiting and Maildirs -----------------------------------------------------------------------


def wait_until(
    check: Callable[[], T], timeout: float, what: str, details: Callable[[], str] = lambda: ""
) -> T:
    """Call `check` every 0.1 s until it returns something truthy, and return that; raise
    TimeoutError naming `what` (and `details()`, e.g. a log tail) after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not (result := check()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"no {what} within {timeout} s\n{details()}")
        time.sleep(0.1)
    return result


def read_maildir(maildir: Path) -> list[EmailMessage]:
    """The messages in a Maildir (new/ and cur/), oldest first."""
    files = [
        f for sub in ("new", "cur") if (maildir / sub).is_dir() for f in (maildir / sub).iterdir()
    ]
    files.sort(key=lambda f: (f.stat().st_mtime, f.name))
    return [message_from_bytes(f.read_bytes(), policy=policy.default) for f in files]


def wait_for_maildir(
    maildir: Path, count: int, timeout: float = 20, details: Callable[[], str] = lambda: ""
) -> list[EmailMessage]:
    """Wait until `maildir` holds at least `count` messages; return them all, oldest first."""
    return wait_until(
        lambda: (found := read_maildir(maildir)) and len(found) >= count and found,
        timeout,
        f"{count} messages in {maildir}",
        details,
    )


def make_maildir(maildir: Path, user: str = MAIL_USER) -> Path:
    """Create `maildir` with new/, cur/ and tmp/ (as far as missing), all owned by `user`."""
    _check_reachable(maildir.parent)
    for sub in ("tmp", "new", "cur"):
        (maildir / sub).mkdir(parents=True, exist_ok=True)
    _chown_tree(maildir, user)
    return maildir


def add_to_maildir(maildir: Path, message: bytes, user: str = MAIL_USER) -> Path:
    """Deliver `message` into `maildir` (tmp/ then new/, as a Maildir writer must), owned by
    `user` so that Dovecot can flag, move and expunge it."""
    make_maildir(maildir, user)
    name = f"{time.time_ns()}.P{os.getpid()}.sendout-test"
    draft = maildir / "tmp" / name
    draft.write_bytes(message)
    account = pwd.getpwnam(user)
    os.chown(draft, account.pw_uid, account.pw_gid)
    return draft.rename(maildir / "new" / name)


def _chown_tree(top: Path, user: str) -> None:
    account = pwd.getpwnam(user)
    for folder, _, files in os.walk(top):
        os.chown(folder, account.pw_uid, account.pw_gid)
        for name in files:
            os.chown(os.path.join(folder, name), account.pw_uid, account.pw_gid)


@contextlib.contextmanager
def mail_workdir(prefix: str = "sendout-mail-") -> Iterator[Path]:
    """A new folder in the system's temporary folder that the servers' users can reach
    (mode 0711: others may enter, not list); removed with everything in it on leaving."""
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        workdir.chmod(0o711)
        _check_reachable(workdir)
        yield workdir
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _check_reachable(path: Path) -> None:
    """Refuse a folder that users other than root cannot reach (one above it lacks o+x)."""
    path = path.resolve()
    for folder in [*reversed(path.parents), path]:
        if folder.exists() and not folder.stat().st_mode & stat.S_IXOTH:
            raise PermissionError(
                f"{folder} is not searchable by others, so the mail servers' users cannot reach "
                f"{path}: use a folder from tests.mail_servers.mail_workdir()"
            )


def _wait_for_port(
    port: int, timeout: float, what: str, details: Callable[[], str] = lambda: ""
) -> None:
    def accepts() -> bool:
        with socket.socket() as probe:
            return probe.connect_ex(("127.0.0.1", port)) == 0

    wait_until(accepts, timeout, f"{what} listening on 127.0.0.1:{port}", details)


def is_running(pid: int) -> bool:
    """Whether process `pid` runs (a zombie, exited but not yet reaped, does not)."""
    return _process_stat(pid)[0] not in ("", "Z")


def _process_stat(pid: int) -> list[str]:
    """/proc/PID/stat after the command name: state, ppid, pgrp, session, ... (empty if gone)."""
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return [""]


def _session_members(session_id: int) -> list[int]:
    """The running processes of a session: a daemon and what it started, even orphaned."""
    return [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit()
        and (fields := _process_stat(int(entry.name)))[0] not in ("", "Z")
        and int(fields[3]) == session_id
    ]


def _end_session(session_id: int, timeout: float = 10) -> None:
    """Wait for a stopped daemon's processes to exit, then kill the ones that did not."""
    with contextlib.suppress(TimeoutError):
        wait_until(lambda: not _session_members(session_id), timeout, "exit")
    for pid in _session_members(session_id):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def _tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path} does not exist)"
    return f"last lines of {path}:\n" + "\n".join(path.read_text().splitlines()[-lines:])


# --- the destination: an SMTP server that accepts, refuses and defers -----------------------------

# the replies to RCPT by the recipient's local part without trailing digits (as in
# tests/smtp_sink.py); anyone else is accepted
REFUSALS = {
    "unknown": "550 5.1.1 <{address}>: Recipient address rejected: User unknown",
    "full": "452 4.2.2 Mailbox full",
}
DSN_PARAMETERS = ("RET", "ENVID", "NOTIFY", "ORCPT")


@dataclass
class Delivery:
    """One message the destination accepted, with its envelope. aiosmtpd upper-cases the
    parameters (`NOTIFY=FAILURE,DELAY`, `ENVID=...`)."""

    mail_from: str
    rcpt_tos: list[str]
    mail_options: list[str]
    rcpt_options: dict[str, list[str]]
    message: EmailMessage


@dataclass
class Destination:
    """The SMTP server Postfix relays to (an aiosmtpd handler): what it accepted and refused.
    Change `replies` to change its answers, e.g. delete "full" to accept those recipients."""

    hostname: str = "dest.test"
    host: str = "127.0.0.1"
    port: int = 0
    dsn: bool = True  # advertise DSN (then a relay leaves success reports to us)
    replies: dict[str, str] = field(default_factory=lambda: dict(REFUSALS))
    deliveries: list[Delivery] = field(default_factory=list)
    refusals: list[tuple[str, str]] = field(default_factory=list)  # (address, reply)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def recipients(self) -> list[str]:
        """Every recipient of every accepted message, in order."""
        with self.lock:
            return [r for d in self.deliveries for r in d.rcpt_tos]

    def wait_for_deliveries(self, count: int, timeout: float = 20) -> list[Delivery]:
        """Wait until `count` messages have been accepted; return them all."""

        def enough() -> list[Delivery]:
            with self.lock:
                return list(self.deliveries) if len(self.deliveries) >= count else []

        return wait_until(enough, timeout, f"{count} deliveries at {self.hostname}")

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname  # aiosmtpd leaves this to a handler that answers EHLO
        return [*responses[:-1], "250-DSN", responses[-1]] if self.dsn else responses

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        refusal = self.replies.get(address.split("@")[0].rstrip("0123456789"))
        if refusal:
            reply = refusal.format(address=address)
            with self.lock:
                self.refusals.append((address, reply))
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.append((address, rcpt_options))  # kept per recipient
        return "250 2.1.5 Ok"

    async def handle_DATA(self, server, session, envelope):
        delivery = Delivery(
            mail_from=envelope.mail_from,
            rcpt_tos=list(envelope.rcpt_tos),
            mail_options=list(envelope.mail_options),
            rcpt_options=dict(envelope.rcpt_options),
            message=message_from_bytes(envelope.content, policy=policy.default),
        )
        with self.lock:
            self.deliveries.append(delivery)
            number = len(self.deliveries)
        return f"250 2.0.0 Ok: queued as D{number}"


class _DsnSMTP(SMTP):
    """aiosmtpd's server (1.4), taking the DSN parameters of RFC 3461 that it would refuse with
    555; they still reach the handler among the MAIL and RCPT options."""

    def _getparams(self, params):
        parsed = super()._getparams(params)
        if parsed is not None:
            for name in DSN_PARAMETERS:
                parsed.pop(name, None)
        return parsed


class _DsnController(Controller):
    def factory(self):
        return _DsnSMTP(self.handler, **self.SMTP_kwargs)


@contextlib.contextmanager
def destination_smtp(hostname: str = "dest.test", dsn: bool = True) -> Iterator[Destination]:
    """An SMTP server on a free port of 127.0.0.1 that accepts every recipient but those whose
    local part starts with `unknown` (550 5.1.1) or `full` (452 4.2.2); it advertises DSN
    unless told not to (a relay then reports its successful hand-over itself: "relayed")."""
    destination = Destination(hostname=hostname, port=free_port(), dsn=dsn)
    controller = _DsnController(
        destination, hostname="127.0.0.1", port=destination.port, server_hostname=hostname
    )
    controller.start()
    try:
        yield destination
    finally:
        controller.stop()


# --- Postfix --------------------------------------------------------------------------------------

POSTFIX_MAIN_CF = """\
compatibility_level = 3.6
queue_directory = {queue_directory}
data_directory = {data_directory}
command_directory = /usr/sbin
daemon_directory = /usr/lib/postfix/sbin
meta_directory = /etc/postfix
shlib_directory = /usr/lib/postfix
mail_owner = postfix
setgid_group = postdrop
maillog_file = {log_path}
maillog_file_prefixes = {workdir}

myhostname = relay.sendout.test
mydomain = sendout.test
myorigin = $myhostname
mydestination =
alias_maps =
alias_database =
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
in_flow_delay = 0
biff = no

# everything leaves for the destination, but mail for the bounce domain stays here
relayhost = [127.0.0.1]:{next_hop_port}
virtual_mailbox_domains = {bounce_domain}
virtual_mailbox_base = {mailbox_base}
virtual_mailbox_maps = static:{mailbox}/
# (the trailing / asks for a Maildir)
virtual_uid_maps = static:{uid}
virtual_gid_maps = static:{gid}
virtual_minimum_uid = 1
virtual_transport = {virtual_transport}

# retries within seconds: a 5xx bounces at once, a 4xx is retried and warned about quickly
queue_run_delay = 1s
minimal_backoff_time = 1s
maximal_backoff_time = 2s
delay_warning_time = {delay_warning_time}
maximal_queue_lifetime = {queue_lifetime}
bounce_queue_lifetime = {queue_lifetime}
"""

# no chroot (the queue is not set up as one), only the services a relay with bounces needs
POSTFIX_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
pickup    unix  n - n 60 1 pickup
cleanup   unix  n - n -  0 cleanup
qmgr      unix  n - n 300 1 qmgr
rewrite   unix  - - n -  - trivial-rewrite
bounce    unix  - - n -  0 bounce
defer     unix  - - n -  0 bounce
trace     unix  - - n -  0 bounce
verify    unix  - - n -  1 verify
flush     unix  n - n 1000? 0 flush
proxymap  unix  - - n -  - proxymap
smtp      unix  - - n -  - smtp
relay     unix  - - n -  - smtp
showq     unix  n - n -  - showq
error     unix  - - n -  - error
retry     unix  - - n -  - error
discard   unix  - - n -  - discard
virtual   unix  - n n -  - virtual
anvil     unix  - - n -  1 anvil
scache    unix  - - n -  1 scache
postlog   unix-dgram n - n - 1 postlogd
"""


@dataclass
class PostfixRelay:
    """A running Postfix instance: its SMTP port, its log, its queue and the bounces it kept."""

    config_dir: Path
    port: int
    bounce_domain: str
    bounce_maildir: Path | None
    log_path: Path
    host: str = "127.0.0.1"
    master_pid: int | None = None

    def log(self) -> str:
        """Postfix's log so far."""
        return self.log_path.read_text() if self.log_path.exists() else ""

    def wait_for_log(self, pattern: str, timeout: float = 20) -> re.Match:
        """Wait until a line of the log matches the regular expression `pattern`."""
        return wait_until(
            lambda: re.search(pattern, self.log()), timeout, f"log line /{pattern}/", self._tail
        )

    def flush(self) -> None:
        """Retry deferred mail now (`postqueue -f`)."""
        subprocess.run(
            ["postqueue", "-c", str(self.config_dir), "-f"], check=True, capture_output=True
        )

    def queue(self) -> list[dict]:
        """The queued messages as `postqueue -j` describes them (queue_name, queue_id, sender,
        recipients with their delay_reason, ...)."""
        listing = subprocess.run(
            ["postqueue", "-c", str(self.config_dir), "-j"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return [json.loads(line) for line in listing.splitlines()]

    def bounces(self) -> list[EmailMessage]:
        """The messages delivered into the bounce Maildir so far, oldest first."""
        if self.bounce_maildir is None:
            raise ValueError("this relay pipes its bounces to a command, it keeps no Maildir")
        return read_maildir(self.bounce_maildir)

    def wait_for_bounces(self, count: int, timeout: float = 20) -> list[EmailMessage]:
        """Wait until the bounce Maildir holds `count` messages; return them all."""
        if self.bounce_maildir is None:
            raise ValueError("this relay pipes its bounces to a command, it keeps no Maildir")
        return wait_for_maildir(self.bounce_maildir, count, timeout, self._tail)

    def _tail(self) -> str:
        return _tail(self.log_path)


@contextlib.contextmanager
def postfix_relay(
    workdir: Path,
    next_hop_port: int,
    bounce_maildir: Path | None = None,
    bounce_pipe: list[str] | None = None,
    *,
    bounce_domain: str = "bounces.test",
    mail_user: str = MAIL_USER,
    delay_warning_time: str = "1s",
    queue_lifetime: str = "1h",
    main_cf: dict[str, str] | None = None,
) -> Iterator[PostfixRelay]:
    """Run Debian's Postfix as an instance of its own under `workdir`, listening on a free port of
    127.0.0.1 and relaying all mail to [127.0.0.1]:`next_hop_port`.

    Mail for `bounce_domain` (the DSNs Postfix writes to a sender such as
    bounces+msg_1@bounces.test, or bounces sent to its port) is delivered as `mail_user` into
    `bounce_maildir` (default workdir/bounces), or, with `bounce_pipe`, to that command with the
    message on stdin, one recipient per run. The command runs as `mail_user` without a PATH or
    a shell, so give absolute paths the user can execute (checked here); Postfix expands
    ${recipient}, ${sender}, ${original_recipient} and friends in it (write $$ for a $) and
    adds Delivered-To: and Return-Path: (<MAILER-DAEMON> on a DSN). Its exit status decides:
    0 delivered, 75 (EX_TEMPFAIL) retried, other <sysexits.h> codes bounced.

    A 5xx refusal is bounced at once; a 4xx one is retried every 1-2 s, a "delayed" DSN goes out
    after `delay_warning_time`, and a failure DSN after `queue_lifetime` ("0" tries only once).
    `main_cf` overrides or adds main.cf parameters. Requires root. The instance is stopped, and
    any process of it killed, on leaving.
    """
    if bounce_maildir is not None and bounce_pipe is not None:
        raise ValueError("bounces go to a Maildir or to a command, not both")
    _check_reachable(workdir)
    account = pwd.getpwnam(mail_user)
    # side by side: Postfix wants everything under its configuration folder owned by root, the
    # queue folder too but the queue's subfolders (made on start) and data folder by postfix
    config_dir = workdir / "postfix" / "etc"
    queue_directory = workdir / "postfix" / "queue"
    data_directory = workdir / "postfix" / "data"
    for folder in (config_dir, queue_directory, data_directory):
        folder.mkdir(parents=True, exist_ok=True)
    shutil.chown(data_directory, "postfix", "postfix")

    if bounce_pipe is None:
        bounce_maildir = make_maildir(bounce_maildir or workdir / "bounces", mail_user)
        virtual_transport = "virtual"
    else:
        _check_runnable(bounce_pipe[0], mail_user)
        virtual_transport = "bouncepipe"

    port = free_port()
    log_path = workdir / "postfix.log"
    settings = {
        "queue_directory": queue_directory,
        "data_directory": data_directory,
        "log_path": log_path,
        "workdir": workdir,
        "next_hop_port": next_hop_port,
        "bounce_domain": bounce_domain,
        "mailbox_base": bounce_maildir.parent if bounce_maildir else workdir,
        "mailbox": bounce_maildir.name if bounce_maildir else "unused",
        "uid": account.pw_uid,
        "gid": account.pw_gid,
        "virtual_transport": virtual_transport,
        "delay_warning_time": delay_warning_time,
        "queue_lifetime": queue_lifetime,
    }
    main = POSTFIX_MAIN_CF.format(**settings)
    master = POSTFIX_MASTER_CF.format(port=port)
    if bounce_pipe is not None:
        main += "bouncepipe_destination_recipient_limit = 1\n"
        master += (
            "bouncepipe unix - n n - - pipe\n"
            f"  flags=DR user={mail_user} argv={_master_cf_argv(bounce_pipe)}\n"
        )
    for name, value in (main_cf or {}).items():
        main, replaced = re.subn(rf"(?m)^{re.escape(name)} = .*$", f"{name} = {value}", main)
        main += "" if replaced else f"{name} = {value}\n"
    for name, text in (("main.cf", main), ("master.cf", master)):
        (config_dir / name).write_text(text)
        # Postfix re-reads a main.cf changed in the last seconds until it is older: ~2 s a start
        an_hour_ago = time.time() - 3600
        os.utime(config_dir / name, (an_hour_ago, an_hour_ago))

    relay = PostfixRelay(config_dir, port, bounce_domain, bounce_maildir, log_path)
    master_pid_file = queue_directory / "pid" / "master.pid"
    try:
        returncode, output = _run_on_a_terminal(["postfix", "-c", str(config_dir), "start"])
        if returncode != 0:
            raise RuntimeError(f"postfix did not start:\n{output}\n{relay._tail()}")
        _wait_for_port(port, 10, "Postfix", relay._tail)
        relay.master_pid = _read_pid(master_pid_file)
        yield relay
    finally:
        master_pid = _read_pid(master_pid_file)
        subprocess.run(["postfix", "-c", str(config_dir), "stop"], capture_output=True)
        if master_pid:
            # the master is a session leader; its children stay in its session
            _end_session(master_pid)


def _run_on_a_terminal(command: list[str]) -> tuple[int, str]:
    """Run `command` with a terminal as its stdout and stderr, and return its exit status and
    what it wrote: Postfix says why it cannot start only to a terminal (or to syslog)."""
    controller, terminal = pty.openpty()
    try:
        returncode = subprocess.run(
            command, stdin=subprocess.DEVNULL, stdout=terminal, stderr=terminal
        ).returncode
        os.set_blocking(controller, False)  # a daemon it started may hold the terminal open
        output = b""
        with contextlib.suppress(OSError):
            while chunk := os.read(controller, 65536):
                output += chunk
        return returncode, output.decode(errors="replace").replace("\r\n", "\n")
    finally:
        os.close(terminal)
        os.close(controller)


def _read_pid(pid_file: Path) -> int | None:
    try:
        return int(pid_file.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def _check_runnable(command: str, user: str) -> None:
    if not os.path.isabs(command):
        raise ValueError(f"a pipe command needs an absolute path (it runs without PATH): {command}")
    can_run = subprocess.run(["runuser", "-u", user, "--", "test", "-x", command])
    if can_run.returncode != 0:
        raise PermissionError(
            f"{user} cannot execute {command} (resolved: {os.path.realpath(command)}); "
            "a venv's python links to its base interpreter, which must be reachable too"
        )


def _master_cf_argv(argv: list[str]) -> str:
    """argv for master.cf: Postfix 3 groups an argument holding spaces as `{ ... }`."""
    words = []
    for arg in argv:
        if re.search(r"\s", arg):
            if "{" in arg or "}" in arg:
                raise ValueError(f"a pipe argument cannot hold both spaces and braces: {arg}")
            arg = "{" + arg + "}"
        words.append(arg)
    return " ".join(words)


# --- Dovecot --------------------------------------------------------------------------------------

DOVECOT_CONF = """\
protocols = imap
listen = 127.0.0.1
base_dir = {base_dir}
state_dir = {state_dir}
instance_name = sendout-test-{port}
log_path = {log_path}
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_mechanisms = plain
mail_location = maildir:{maildir}
first_valid_uid = {uid}
last_valid_uid = {uid}
first_valid_gid = {gid}
last_valid_gid = {gid}

passdb {{
  driver = passwd-file
  args = scheme=PLAIN {users}
}}
userdb {{
  driver = passwd-file
  args = {users}
}}
service imap-login {{
  inet_listener imap {{
    port = 0
  }}
  inet_listener imaps {{
    port = {port}
    ssl = yes
  }}
}}
"""


@dataclass
class DovecotImap:
    """A running Dovecot: where to connect over IMAPS, as whom, and the CA file to trust."""

    host: str
    port: int
    user: str
    password: str
    ca_file: Path
    maildir: Path
    log_path: Path
    master_pid: int | None = None

    def ssl_context(self) -> ssl.SSLContext:
        """A client context that trusts this server's certificate (and checks its name)."""
        return ssl.create_default_context(cafile=self.ca_file)

    def log(self) -> str:
        """Dovecot's log so far."""
        return self.log_path.read_text() if self.log_path.exists() else ""


@contextlib.contextmanager
def dovecot_imap(
    workdir: Path, user: str, password: str, maildir: Path, *, mail_user: str = MAIL_USER
) -> Iterator[DovecotImap]:
    """Run Dovecot with a configuration of its own under `workdir`: IMAPS (implicit TLS, a
    self-signed certificate for 127.0.0.1 made by openssl) on a free port of 127.0.0.1, and one
    login, `user`/`password`, whose INBOX is `maildir` (folders as Maildir++ .Name subfolders).

    Dovecot will not serve a root-owned mailbox, so the Maildir is handed to `mail_user` (made if
    missing, chowned if not); put messages into it with add_to_maildir. Requires root and
    Debian's dovecot and dovenull users. Stopped, and any process of it killed, on leaving.
    """
    if ":" in user + password:
        raise ValueError("a passwd-file user and password cannot hold ':'")
    _check_reachable(workdir)
    account = pwd.getpwnam(mail_user)
    home = workdir / "dovecot" / "home"
    base_dir = workdir / "dovecot" / "run"
    state_dir = workdir / "dovecot" / "state"
    for folder in (home, base_dir, state_dir):
        folder.mkdir(parents=True, exist_ok=True)
    make_maildir(maildir, mail_user)
    _chown_tree(home, mail_user)

    cert, key = workdir / "dovecot" / "cert.pem", workdir / "dovecot" / "key.pem"
    make_certificate(cert, key)
    users = workdir / "dovecot" / "users"
    users.write_text(f"{user}:{{PLAIN}}{password}:{account.pw_uid}:{account.pw_gid}::{home}::\n")
    users.chmod(0o644)  # read by the auth process, which runs as the dovecot user

    port = free_port()
    log_path = workdir / "dovecot.log"
    config = workdir / "dovecot" / "dovecot.conf"
    config.write_text(
        DOVECOT_CONF.format(
            base_dir=base_dir,
            state_dir=state_dir,
            port=port,
            log_path=log_path,
            cert=cert,
            key=key,
            maildir=maildir,
            uid=account.pw_uid,
            gid=account.pw_gid,
            users=users,
        )
    )
    server = DovecotImap("127.0.0.1", port, user, password, cert, maildir, log_path)
    stderr_path = workdir / "dovecot" / "stderr.log"
    with stderr_path.open("wb") as stderr:
        process = subprocess.Popen(
            ["dovecot", "-c", str(config), "-F"],
            stdout=stderr,
            stderr=stderr,
            start_new_session=True,
        )
    server.master_pid = process.pid

    def greets() -> bool:
        if process.poll() is not None:
            raise RuntimeError(f"dovecot exited with {process.returncode}:\n{logs()}")
        return _imaps_greets(server)

    def logs() -> str:
        return _tail(log_path) + "\n" + _tail(stderr_path)

    try:
        # until it greets over TLS: Dovecot stopped while still starting takes 6 s to exit
        wait_until(greets, 10, f"IMAPS greeting from Dovecot on 127.0.0.1:{port}", logs)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        _end_session(process.pid)


def _imaps_greets(server: DovecotImap) -> bool:
    try:
        with imaplib.IMAP4_SSL(server.host, server.port, ssl_context=server.ssl_context()):
            return True
    except (OSError, imaplib.IMAP4.error):
        return False


def make_certificate(cert: Path, key: Path) -> None:
    """A self-signed certificate for 127.0.0.1 (and localhost), made with openssl."""
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
