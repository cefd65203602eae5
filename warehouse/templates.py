"""A send-out's texts as templates: {first_name} and friends, checked when a send-out is
composed and filled in for each recipient when it is sent."""

import string

PLACEHOLDERS = ("first_name", "last_name", "email", "mobile")


def template_problem(template: str | None) -> str | None:
    """Why the template cannot be filled in (a stray brace, a placeholder we do not know), or
    None."""
    if template is None:
        return None
    try:
        fields = {f for _, f, _, _ in string.Formatter().parse(template) if f is not None}
    except ValueError as error:
        return f"has a stray brace ({error}); write {{{{ or }}}} for one"
    unknown = sorted(fields - set(PLACEHOLDERS))
    if unknown:
        known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
        return f"unknown placeholder {{{unknown[0]}}}; use {known}"
    return None


def render(template: str | None, contact: dict[str, str | None]) -> str | None:
    """A template with {first_name} and friends filled in (empty where the contact has none)."""
    if template is None:
        return None
    return template.format_map({p: contact.get(p) or "" for p in PLACEHOLDERS})
