"""What every page's part of the share link shares: which URL values this session has applied,
and writing the query parameters back (no page knowledge here)."""

from __future__ import annotations

import streamlit as st

APPLIED_KEY = "share_link_applied"  # CLI name -> the URL text last applied or written by this session


def applied_values() -> dict[str, str | None]:
    return st.session_state.setdefault(APPLIED_KEY, {})


def fresh_query(names: set[str]) -> dict[str, str]:
    """The URL's values for `names` that this session has not applied yet; marked applied now."""
    applied, fresh = applied_values(), {}
    for name in names:
        text = st.query_params.get(name)
        if text is not None and applied.get(name) != text:
            fresh[name] = text
            applied[name] = text
    return fresh


def write_query(wanted: dict[str, str | None], owned: set[str]) -> None:
    """Make st.query_params hold `wanted` for the names in `owned` (None: left out), touching only what differs."""
    applied = applied_values()
    for name in owned:
        text = wanted.get(name)
        if text is None:
            if name in st.query_params:
                del st.query_params[name]
        elif st.query_params.get(name) != text:
            st.query_params[name] = text
        applied[name] = text


def warn(lines: list[str]) -> None:
    for line in lines:
        st.warning(line, icon=":material/link:")
