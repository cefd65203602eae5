"""The process's settings, from environment variables (SENDOUT_*) or a `.env` file; secrets only
there: the warehouse's (warehouse/settings.py) and those of dispatch, the senders, the webhook
service, bounce mail and tracking, which only flows use."""

import difflib
import os
import re
from functools import cache
from pathlib import Path
from typing import Literal

from dotenv import dotenv_values
from pydantic import SecretStr, field_validator

from warehouse.settings import WarehouseSettings


class Settings(WarehouseSettings):
    """Everything Sendout reads from its environment, with the embedded defaults."""

    # how often the continuous ingester publishes the analysts' copy (`snapshot`), at most
    snapshot_seconds: float = 60.0
    # where provider event files land for `ingest` (the sandbox writes there too)
    landing: Path = Path("data") / "landing"
    # dispatch (DESIGN §8)
    email_sender: Literal["sandbox", "smtp"] = "sandbox"
    sms_sender: Literal["sandbox", "twilio"] = "sandbox"
    email_from: str = "Sendout <sendout@example.org>"
    batch_size: int = 2000  # at most; rate limits make batches smaller (flows/dispatch.py)
    dispatch_lease_seconds: float = 30.0
    # what DuckDB may keep in memory while dispatching (it reads the rest again from the file):
    # with it a dispatch's peak memory stays flat whatever the number of recipients
    dispatch_memory_limit: str = "32MB"
    sandbox_seed: int = 7
    # SMTP relay (Postfix, SES, SendGrid, Mailgun or Postmark SMTP endpoints)
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_ca_file: str | None = None  # to trust a relay's private certificate authority
    smtp_connections: int = 4
    email_rate: float = 0.0  # messages per second over all connections; 0 is no limit
    ses_configuration_set: str | None = None
    # where bounces go back to: each message's envelope sender is this address with our
    # message id after a "+" (VERP: bounces+<id>@domain); default bounces@<domain of email_from>
    bounce_address: str | None = None
    smtp_dsn: bool = True  # ask for delivery status notifications where the relay offers DSN
    # the mailbox bounces land in, read by `sendout bounces fetch` over IMAP with TLS
    bounce_imap_host: str | None = None
    bounce_imap_port: int = 993
    bounce_imap_user: str | None = None
    bounce_imap_password: SecretStr | None = None
    bounce_imap_folder: str = "INBOX"
    bounce_imap_ca_file: str | None = None  # to trust a server's private certificate authority
    bounce_imap_done_folder: str | None = None  # move read messages here; none: delete them
    # Twilio's Messages API
    twilio_account_sid: str | None = None
    twilio_auth_token: SecretStr | None = None
    twilio_from: str | None = None
    twilio_api_base: str = "https://api.twilio.com"
    twilio_status_callback: str | None = None  # public URL of the webhook service's endpoint
    sms_connections: int = 4
    sms_rate: float = 0.0  # messages per second; 0 is no limit
    # the webhook service (providers push events; it lands them for ingest)
    webhook_host: str = "127.0.0.1"
    webhook_port: int = 8088
    public_base_url: str | None = None  # how providers reach the service (Twilio signs it)
    webhook_max_body_bytes: int = 1024 * 1024
    webhook_request_timeout_seconds: float = 10.0  # a connection's request must be in by then
    landing_file_max_bytes: int = 64 * 2**20  # the service's files go to ingest at this size
    landing_file_max_seconds: float = 2.0  # or this age (events reach the screen in seconds)
    landing_file_quiet_seconds: float = 1.0  # or after this long without a new event
    sendgrid_public_key: str | None = None
    mailgun_signing_key: SecretStr | None = None
    postmark_user: str | None = None
    postmark_password: SecretStr | None = None
    sns_certificate_file: str | None = None  # pinned SNS signing certificate (air-gapped use)
    # open and click tracking of mail sent by our SMTP sender (tracked send-outs, when set)
    tracking_base_url: str | None = None  # public URL of the webhook service, for links
    tracking_secret: SecretStr | None = None  # else one is made once under data/
    scanner_click_seconds: float = 10.0  # a click sooner after sending is a link scanner's

    @field_validator("dispatch_memory_limit")
    @classmethod
    def _an_amount_of_memory(cls, value: str) -> str:
        if not re.fullmatch(r"\s*\d+(\.\d+)?\s*(KB|MB|GB|KiB|MiB|GiB)\s*", value, re.IGNORECASE):
            raise ValueError(f"{value!r} is not an amount of memory (64MB, 1GB)")
        return value.strip()

    @field_validator("bounce_address")
    @classmethod
    def _an_address(cls, value: str | None) -> str | None:
        """Our message id (37 characters) goes after a "+" in its local part (64 at most)."""
        if value is None:
            return value
        local, at, domain = value.strip().rpartition("@")
        if not at or not local or "." not in domain:
            raise ValueError(f"{value!r} is not an email address (bounces@example.org)")
        if len(local) > 64 - 38:
            raise ValueError(f"the local part of {value!r} leaves no room for a message id")
        return value.strip()


# SENDOUT_* variables that are no settings: who acts at the CLI, through what, and where the
# project is (set by `sendout up` for its children)
NOT_SETTINGS = {"SENDOUT_USER", "SENDOUT_VIA", "SENDOUT_HOME"}


class UnknownSettingError(ValueError):
    """A SENDOUT_* name in the environment or `.env` that is no setting (a typo would
    otherwise be ignored, and its default used: mail sent to the sandbox, say)."""


@cache
def settings() -> Settings:
    """The settings of this process, read once; UnknownSettingError for a name that is none."""
    check_names([*os.environ, *dotenv_values(".env")])  # a name given no value is named too
    return Settings()


def dotenv_here() -> dict[str, str]:
    """The values the `.env` of the working folder gives (a variable of the environment with
    the same name wins over it, as pydantic reads them); what `sendout up` hands on."""
    return {name: value for name, value in dotenv_values(".env").items() if value is not None}


def check_names(names: list[str]) -> None:
    """UnknownSettingError naming the first SENDOUT_* name that is no setting, and the setting
    it was perhaps meant to be."""
    known = {f"SENDOUT_{name.upper()}" for name in Settings.model_fields} | NOT_SETTINGS
    unknown = sorted({n.upper() for n in names if n.upper().startswith("SENDOUT_")} - known)
    if unknown:
        meant = difflib.get_close_matches(unknown[0], known, n=1)
        hint = f": did you mean ${meant[0]}?" if meant else " (docs/operations.md lists them)"
        raise UnknownSettingError(f"${unknown[0]} is not a Sendout setting{hint}")
