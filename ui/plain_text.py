"""Text from outside (a link's value, an uploaded file's name) shown as itself on one short line.

st.warning and st.error render Markdown: a value like `[log in](http://…)` or `![](http://…)`
would become a link or an image fetched by the reader's browser, and a 5,000-character value would
fill the page. `literal` cuts such a text short, puts its control characters (a newline) as
escapes, and backslash-escapes the Markdown that could make it anything but text. No Streamlit here.
"""

from __future__ import annotations

import re

SHOWN_CHARACTERS = 60  # of a value, in a warning line
MESSAGE_CHARACTERS = 600  # of a check's message around it
_TOKEN = "@@the-value@@"  # where the value goes back into a message (printable, no Markdown)
# CommonMark's backslash escapes, for the characters that start a link, an image, HTML, code,
# emphasis, a table, strikethrough or Streamlit's LaTeX and colour directives.
_MARKDOWN = re.compile(r"([\\`*\[\]<>!|~$#{}])")


def one_line(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """`text` cut to `limit` characters (then how many there were), its control characters as escapes (a newline as \\n)."""
    text = str(text)
    shown = text if len(text) <= limit else f"{text[:limit]}… ({len(text):,} characters)"
    return "".join(character if character.isprintable() else ascii(character)[1:-1] for character in shown)


def no_markdown(text: str) -> str:
    """`text` with the Markdown that could make it anything but text backslash-escaped (it reads the same)."""
    return _MARKDOWN.sub(r"\\\1", text)


def literal(text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """`text` as a warning shows it: one short line, no Markdown."""
    return no_markdown(one_line(text, limit))


def literal_in(message: str, text: str, limit: int = SHOWN_CHARACTERS) -> str:
    """`message` (a check's own wording, which may quote `text`) as `literal` shows it, each quote of
    `text` in it cut to `limit` characters."""
    if not text:
        return literal(message, limit=MESSAGE_CHARACTERS)
    return literal(message.replace(text, _TOKEN), limit=MESSAGE_CHARACTERS).replace(_TOKEN, literal(text, limit))
