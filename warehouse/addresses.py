"""Normalising the addresses we message: emails trimmed and lower-cased, phones in E.164."""

import re

import phonenumbers

from warehouse.vocabulary import Channel

# Deliberately plain: one @, no spaces, a dotted domain. Providers do the rest.
_EMAIL = re.compile(
    r"[^@\s<>(),;:\"\[\]]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)


class InvalidAddressError(ValueError):
    """An email address or phone number that cannot be messaged."""


def normalise_email(raw: str) -> str:
    """The address as Sendout stores it, or InvalidAddressError."""
    email = raw.strip().lower()
    if not email:
        raise InvalidAddressError("no email address was given")
    if not _EMAIL.fullmatch(email):
        raise InvalidAddressError(f"{raw.strip()!r} is not a valid email address")
    return email


def check_region(region: str) -> str:
    """A country code for numbers written without +country code, upper-cased, or
    InvalidAddressError if it is none (ISO 3166 alpha-2, as phone numbers know them)."""
    code = region.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise InvalidAddressError(f"{region!r} is not a country code (ISO 3166, such as GB or US)")
    return code


NOT_AN_ADDRESS = "is neither an email address nor a phone number"  # said of a name, say


def read_phone(raw: str, default_region: str | None = None) -> phonenumbers.PhoneNumber:
    """The number a person wrote, parsed and checked, or InvalidAddressError.

    A number without +country code is read as one of `default_region` (an ISO 3166 code: the
    caller passes $SENDOUT_DEFAULT_REGION); with none given, a number must carry its country
    code. A number with an extension is refused: no message can reach an extension, and
    dropping it would message the switchboard.
    """
    region = default_region.upper() if default_region else None
    if not raw.strip():
        raise InvalidAddressError("no phone number was given")
    if "@" in raw:
        raise InvalidAddressError(f"{raw.strip()!r} is an email address, not a phone number")
    try:
        number = phonenumbers.parse(raw.strip(), region)
    except phonenumbers.NumberParseException as error:
        if region is None and not raw.strip().startswith("+"):
            raise InvalidAddressError(
                f"{raw.strip()!r} has no country code: write it as +<country code> <number>"
            ) from error
        if any(c.isalpha() for c in raw):  # a name, say, typed where an address goes
            raise InvalidAddressError(f"{raw.strip()!r} {NOT_AN_ADDRESS}") from error
        raise InvalidAddressError(f"{raw.strip()!r} is not a phone number") from error
    if not phonenumbers.is_valid_number(number):
        read_as = "" if raw.strip().startswith("+") else f" of {region} (no +country code)"
        raise InvalidAddressError(f"{raw.strip()!r} is not a valid phone number{read_as}")
    if number.extension:
        raise InvalidAddressError(
            f"{raw.strip()!r} has an extension ({number.extension}), which no message can reach"
        )
    return number


def normalise_phone(raw: str, default_region: str | None = None) -> str:
    """The number in E.164 (+447911123456), or InvalidAddressError."""
    return e164(read_phone(raw, default_region))


def e164(number: phonenumbers.PhoneNumber) -> str:
    """A parsed number as Sendout stores it (+447911123456)."""
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def is_landline(number: phonenumbers.PhoneNumber) -> bool:
    """True for a number its numbering plan says is a fixed line, which cannot receive SMS
    (where the plan cannot tell, as in the US, the number is taken as able to)."""
    return phonenumbers.number_type(number) == phonenumbers.PhoneNumberType.FIXED_LINE


def channel_of(address: str) -> Channel:
    """The channel an address a person typed is for: an email address has an @, anything else
    is read as a phone number."""
    return Channel.EMAIL if "@" in address else Channel.SMS


def normalise_address(channel: Channel | str, address: str, region: str | None = None) -> str:
    """The address as Sendout stores and keys it: an email lower-cased, a phone in E.164."""
    if Channel(channel) == Channel.EMAIL:
        return normalise_email(address)
    return normalise_phone(address, region)
