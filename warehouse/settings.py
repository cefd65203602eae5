"""Configuration from environment variables (SENDOUT_*) or a `.env` file; secrets only there."""

from functools import cache
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Everything Sendout reads from its environment, with the embedded defaults."""

    model_config = SettingsConfigDict(env_prefix="SENDOUT_", env_file=".env", extra="ignore")

    db: Path = Path("data") / "sendout.duckdb"
    default_region: str = "GB"
    # what one email and one SMS segment cost, in `currency` (DESIGN §5)
    email_cost: float = 0.0001
    sms_segment_cost: float = 0.04
    currency: str = "GBP"
    # what happens to an inbound SMS when its send-out says nothing (DESIGN §6)
    forward_to: str | None = None
    auto_reply_text: str | None = None


@cache
def settings() -> Settings:
    """The settings of this process, read once."""
    return Settings()
