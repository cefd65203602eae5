"""What the warehouse is told, from environment variables (SENDOUT_*) or a `.env` file.

The warehouse never reads these itself: whoever calls it (flows, the dashboard) holds the
process's settings (flows/settings.py, which adds the senders' and services' own) and hands each
function what it needs (prices, the default phone region, paths).
"""

from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from warehouse.addresses import check_region, normalise_phone
from warehouse.status import Prices


class WarehouseSettings(BaseSettings):
    """The settings of the data: where the warehouse is, prices, phone numbers' default region,
    inbound SMS defaults and the dashboard's logins, with the embedded defaults."""

    model_config = SettingsConfigDict(env_prefix="SENDOUT_", env_file=".env", extra="ignore")

    db: Path = Path("data") / "sendout.duckdb"
    # the analysts' copy of the warehouse (warehouse/snapshot.py); none: next to `db`, as
    # data/sendout.snapshot.duckdb
    snapshot: Path | None = None
    default_region: str = "GB"  # an ISO 3166 code that phone numbers know (checked below)
    # what one email and one SMS segment cost, in `currency` (DESIGN §5)
    email_cost: float = Field(0.0001, ge=0, allow_inf_nan=False)
    sms_segment_cost: float = Field(0.04, ge=0, allow_inf_nan=False)
    currency: str = "GBP"  # ISO 4217: GBP, EUR, USD
    # what happens to an inbound SMS when its send-out says nothing (DESIGN §6)
    forward_to: str | None = None
    auto_reply_text: str | None = None

    # the dashboard's logins (docs/dashboard.md): "password" checks users kept in the warehouse;
    # "oidc" lets the organisation's identity provider log people in (Streamlit's st.login,
    # configured in .streamlit/secrets.toml) and the users table still gives their role
    dashboard_login: Literal["password", "oidc"] = "password"
    session_idle_minutes: float = 30.0  # a logged-in session ends after this long unused
    login_delay_seconds: float = 1.0  # the wait after a wrong password, doubled each time
    login_delay_max_seconds: float = 900.0

    @field_validator("default_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        """$SENDOUT_DEFAULT_REGION refused at once, not every number written without +country
        code later, as though the numbers were wrong."""
        return check_region(value)

    @field_validator("currency")
    @classmethod
    def _currency_code(cls, value: str) -> str:
        """Money is shown with a currency code (12.34 GBP), not a word."""
        code = value.strip().upper()
        if len(code) != 3 or not code.isalpha() or not code.isascii():
            raise ValueError(
                f"{value!r} is not a currency code: use its three letters (ISO 4217), such as "
                "GBP, EUR or USD"
            )
        return code

    @field_validator("forward_to")
    @classmethod
    def _forward_to_in_e164(cls, value: str | None, info: ValidationInfo) -> str | None:
        """$SENDOUT_FORWARD_TO written as people write numbers (07911 200001, of the default
        region) is handed to Twilio as +447911200001, as a send-out's own is; what is no
        number is refused at start, not at the first reply. (The region is checked first.)"""
        if value is None or not value.strip():
            return None
        return normalise_phone(value, info.data.get("default_region"))

    @classmethod
    def embedded(cls) -> "WarehouseSettings":
        """The embedded defaults alone, whatever the environment says: what a warehouse
        function uses when its caller gives no settings (tests; every flow and page gives them,
        tests/test_layout.py checks)."""
        return cls.model_construct()

    @property
    def prices(self) -> Prices:
        """What one email and one SMS segment cost."""
        return Prices(email=self.email_cost, sms_segment=self.sms_segment_cost)
