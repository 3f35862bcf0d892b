"""Uploads: the size limit said before the upload, and the uploaded file's name kept out of harm's way.

The limit is Streamlit's `server.maxUploadSize` (megabytes, set in .streamlit/config.toml), read
here and only here: Streamlit's server refuses a larger request, the uploader's label says the
limit, and the page refuses anything larger that reaches it. An upload is read in memory and never
written to disk: nothing the app saves is named after it. Its file name (the browser's, or any
text a crafted request sends) is only ever shown, as its last path part, short and as plain text.
"""

from __future__ import annotations

from pathlib import PurePosixPath

from streamlit import config

from ui.plain_text import MESSAGE_CHARACTERS, literal, one_line

SHOWN_NAME_CHARACTERS = 60


def upload_limit_mb() -> int:
    """The upload limit in megabytes, as Streamlit enforces it (server.maxUploadSize)."""
    return int(config.get_option("server.maxUploadSize"))


def upload_limit_bytes() -> int:
    return upload_limit_mb() * 1024 * 1024  # Streamlit's megabytes are MiB


def upload_label(what: str) -> str:
    """An uploader's label with the limit in it, e.g. "Model zip exported by this app (at most 50 MB)"."""
    return f"{what} (at most {upload_limit_mb()} MB)"


def upload_name(name: str | None) -> str:
    """An uploaded file's name as the page names it: its last path part (a `../../x` or `/etc/x`
    is only `x`), short, no control characters. Shown through `upload_message` only."""
    last = PurePosixPath(str(name or "").replace("\\", "/")).name.strip()
    return one_line(last, SHOWN_NAME_CHARACTERS) if last not in ("", ".", "..") else "the upload"


def upload_message(text: str) -> str:
    """A message about an upload (which quotes its name or its zip's member names) as plain text on one line."""
    return literal(text, MESSAGE_CHARACTERS)


def too_large(size: int) -> str | None:
    """One line when `size` bytes are over the limit, else None."""
    if size <= upload_limit_bytes():
        return None
    return f"the upload is {size / 1024 / 1024:.1f} MB; uploads up to {upload_limit_mb()} MB are accepted (server.maxUploadSize in .streamlit/config.toml)"
