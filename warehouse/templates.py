"""A send-out's texts as templates: {first_name} and friends, checked when a send-out is
composed and filled in for each recipient when it is sent."""

import string

PLACEHOLDERS = ("first_name", "last_name", "email", "mobile")


def template_problem(template: str | None) -> str | None:
    """Why the template cannot be filled in, in words that follow its name ("subject: ..." at
    the CLI) or stand under its field on a page: a stray brace, a placeholder we do not know,
    or one with a format (`{first_name:>9}`, `{email!r}`, which could fail for one recipient
    in the middle of sending); None when it can."""
    if template is None:
        return None
    try:
        parts = [p for p in string.Formatter().parse(template) if p[1] is not None]
    except ValueError:
        return "a stray brace: write {{ or }} for a brace of its own"
    known = ", ".join("{" + p + "}" for p in PLACEHOLDERS[:-1]) + f" or {{{PLACEHOLDERS[-1]}}}"
    for _, field, spec, conversion in parts:
        if field not in PLACEHOLDERS:
            return f"an unknown placeholder {{{field}}}: use {known}"
        if spec or conversion:
            return f"a placeholder with a format, {{{field}...}}: write {{{field}}} alone"
    return None


def render(template: str | None, contact: dict[str, str | None]) -> str | None:
    """A template with {first_name} and friends filled in (empty where the contact has none)."""
    if template is None:
        return None
    return template.format_map({p: contact.get(p) or "" for p in PLACEHOLDERS})
