"""The Compare page's part of the share link: `python -m core report`'s reference, runs and architectures."""

from __future__ import annotations

import streamlit as st

from ui.link_params import LinkParam
from ui.plain_text import literal
from ui.share.url_state import fresh_query, warn, write_query

# The Compare page's settings, by `python -m core report`'s names: the run everything is compared
# with, the runs selected (ids of this server's history, which the class shares) and the
# Architecture filter (--architecture, registry names). The Dataset and Technique filters stay out:
# the report's --dataset is the sidebar's name in the link.
COMPARE_KEYS = {"reference": "compare_reference", "runs": "compare_selected", "architecture": "compare_filter_architecture"}


def link_params() -> dict[str, LinkParam]:
    return {"reference": LinkParam("reference", None, int), "runs": LinkParam("runs", None, str), "architecture": LinkParam("architecture", None, str)}


def run_id(text: str) -> int | None:
    """A run id as the link writes it (digits), or None: "²" is a digit to str.isdigit but no number."""
    text = text.strip()
    return int(text) if text.isascii() and text.isdecimal() and len(text) <= 18 else None


def apply(references: list[int], recorded: list[int], default_reference: int | None, architectures: list[str] | None = None) -> None:
    """A link's reference (one of `references`, the baseline and pinned runs), selected runs (of
    `recorded`, the history's ids) and Architecture filter (of `architectures`, those the history's
    runs recorded) into the page's widgets; what the history lacks is one line each."""
    query, warnings = fresh_query(set(COMPARE_KEYS)), []
    fallback = "the sidebar's baseline" if default_reference is None else f"#{default_reference}"
    if "reference" in query:
        text = query["reference"]
        reference = run_id(text)
        if reference in references:
            st.session_state[COMPARE_KEYS["reference"]] = reference
        else:
            warnings.append(f"Link: reference={literal(text)} is not a baseline or pinned run of this history; using {fallback}")
    if "runs" in query:
        words = [word.strip() for word in query["runs"].split(",") if word.strip()]
        found = [run_id(word) for word in words if run_id(word) in recorded]
        missing = [word for word in words if run_id(word) not in recorded]
        if missing:
            warnings.append(f"Link: runs {literal(', '.join(missing))} are not in this history; {'showing the others' if found else 'none selected'}")
        st.session_state[COMPARE_KEYS["runs"]] = list(dict.fromkeys(found))
    if "architecture" in query:
        offered = architectures or []
        words = list(dict.fromkeys(word.strip() for word in query["architecture"].split(",") if word.strip()))
        found_names = [word for word in words if word in offered]
        missing = [word for word in words if word not in offered]
        if missing:
            warnings.append(f"Link: architecture {literal(', '.join(missing))} has no run in this history; {'filtering by the others' if found_names else 'showing every architecture'}")
        st.session_state[COMPARE_KEYS["architecture"]] = found_names
    warn(warnings)


def write(config=None, *, reference: int, selected: list[int], default_reference: int | None, architectures: list[str] | None = None) -> None:
    """The reference (left out when it is the page's default), the selection (none: every run shown)
    and the Architecture filter (none: any architecture)."""
    write_query(
        {
            "reference": None if reference == default_reference else str(reference),
            "runs": ",".join(str(run_id) for run_id in sorted(selected)) or None,
            "architecture": ",".join(architectures or []) or None,
        },
        set(COMPARE_KEYS),
    )
