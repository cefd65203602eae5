"""SMS segments (DESIGN §5): GSM-7 text is 160 characters alone or 153 per part, characters of
the GSM extension table count double; anything else is UCS-2, 70 alone or 67 per part, counted
in UTF-16 code units (an emoji outside the basic plane is two)."""

import polars as pl

GSM_BASIC = (
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM_EXTENSION = "^{}\\[~]|€\f"


def _char_class(chars: str) -> str:
    """A regex character class of exactly these characters (escaped by code point)."""
    return "[" + "".join(f"\\x{{{ord(c):x}}}" for c in chars) + "]"


_ALL_GSM = f"^{_char_class(GSM_BASIC + GSM_EXTENSION)}*$"
_EXTENSION = _char_class(GSM_EXTENSION)
_ASTRAL = r"[\x{10000}-\x{10FFFF}]"


def segments(text: pl.Expr) -> pl.Expr:
    """How many SMS segments each text is billed as (0 for no text)."""
    septets = text.str.len_chars() + text.str.count_matches(_EXTENSION)
    code_units = text.str.len_chars() + text.str.count_matches(_ASTRAL)
    return (
        pl.when(text.is_null())
        .then(0)
        .when(text.str.contains(_ALL_GSM))
        .then(pl.when(septets <= 160).then(1).otherwise((septets + 152) // 153))
        .otherwise(pl.when(code_units <= 70).then(1).otherwise((code_units + 66) // 67))
        .cast(pl.Int32)
    )


def sms_segments(text: str) -> int:
    """Segments of one text, for estimates while composing."""
    return pl.select(segments(pl.lit(text, dtype=pl.String))).item()


def is_gsm7(text: str) -> bool:
    """True when the text can be sent in the GSM-7 alphabet."""
    return pl.select(pl.lit(text, dtype=pl.String).str.contains(_ALL_GSM)).item()
