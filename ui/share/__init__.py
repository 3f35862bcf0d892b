"""The share link: the sidebar's and the page's settings in the address bar, and back.

Before the widgets are made, a value the URL holds that this session has not applied yet (a link
just opened) goes into st.session_state under the widget's key; after them, the current values are
written back into st.query_params under the CLI's names (ui/link_params.py), so the address bar
always holds the current setup and a later rerun does not overwrite a widget with a stale URL. A
refused value is one st.warning line naming it and the default used. This module holds the
sidebar's part, the link itself and the "Share this setup" expander (the link and its QR code,
drawn with segno, no network); each page's part is its own module here (pruning, quantization,
compare, distillation, explore), each with link_params(), apply(...) before the page's widgets and
write(...) after them.
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from io import BytesIO
from typing import Any

import streamlit as st

from core.foundation.data.names import FOLDER_PREFIX
from ui.link_params import query_text, read_params, sidebar_params
from ui.plain_text import literal
from ui.share import compare, distillation, explore, pruning, quantization
from ui.share.url_state import applied_values, fresh_query, warn, write_query

PLACEHOLDER_KEY = "share_link_placeholder"
FOLDER_CHOICE = "folder…"

SIDEBAR_KEYS = {"dataset": "sidebar_dataset", "model": "sidebar_model", "train-size": "sidebar_train_size", "epochs": "sidebar_epochs", "seed": "sidebar_seed", "device": "sidebar_device"}

# The pages with link settings, in the link's order. Distillation and Explore come last: their
# configs' modules import torch, so their names are read only when the URL holds a name the others
# do not know (the Overview's first render imports no torch).
PAGES = {"pruning": pruning, "quantization": quantization, "compare": compare, "distillation": distillation, "explore": explore}


def _names_of(page: str) -> set[str]:
    return {param.name for param in PAGES[page].link_params().values()}


def _link_names(present: Iterable[str]) -> list[str]:
    """The names a link carries, in its order (the sidebar's, then each page's), read page by page
    only until every name in `present` is placed (a name no page carries reads them all)."""
    names = list(SIDEBAR_KEYS)
    for page in PAGES:
        if set(present) <= set(names):
            break
        names += [param.name for param in PAGES[page].link_params().values()]
    return names


# The sidebar --------------------------------------------------------------------------------------


# The sidebar --------------------------------------------------------------------------------------


def apply_sidebar_link(models: list[str], devices: list[str]) -> None:
    """Before the sidebar's widgets: a link's baseline settings into their widget keys; unknown parameters named once."""
    params = sidebar_params(models, devices)
    applied, warnings = applied_values(), []
    known = set(_link_names(st.query_params))
    for name, text in st.query_params.items():
        if name not in known and applied.get(f"unknown:{name}") != text:
            applied[f"unknown:{name}"] = text
            # Named without its value: a link may carry text that should not be shown on a projector.
            warnings.append(f"Link: unknown parameter {literal(name)} ignored")
    reading = read_params(params, fresh_query(set(params)))
    for name, value in reading.values.items():
        if name == "dataset":
            if str(value).startswith(FOLDER_PREFIX):
                st.session_state["sidebar_dataset"] = FOLDER_CHOICE
                st.session_state["sidebar_folder"] = str(value)[len(FOLDER_PREFIX) :]
            else:
                st.session_state["sidebar_dataset"] = value
        elif name == "train-size":
            st.session_state["sidebar_train_size"] = value or 0  # the sidebar's 0 is the CLI's "all"
        else:
            st.session_state[SIDEBAR_KEYS[name]] = value
    warn(warnings + reading.warnings)


def sidebar_values() -> dict[str, Any]:
    """The sidebar's widgets as the CLI names them."""
    state = st.session_state
    dataset = state.get("sidebar_dataset")
    if dataset == FOLDER_CHOICE:
        folder = str(state.get("sidebar_folder") or "").strip()
        dataset = f"{FOLDER_PREFIX}{folder}" if folder else None
    train_size = state.get("sidebar_train_size")
    return {
        "dataset": dataset,
        "model": state.get("sidebar_model"),
        "train-size": int(train_size) if train_size else None,
        "epochs": None if state.get("sidebar_epochs") is None else int(state["sidebar_epochs"]),
        "seed": None if state.get("sidebar_seed") is None else int(state["sidebar_seed"]),
        "device": state.get("sidebar_device"),
    }


def write_sidebar_link() -> None:
    """After the sidebar's widgets: their values into the URL (unknown parameters dropped), and the Share expander."""
    params = sidebar_params()
    values = sidebar_values()
    write_query({name: params[name].text(value) for name, value in values.items()}, set(params))
    known = set(_link_names(st.query_params))
    for name in [name for name in st.query_params if name not in known]:
        del st.query_params[name]
    with st.sidebar.expander("Share this setup", icon=":material/share:"):
        st.session_state[PLACEHOLDER_KEY] = st.empty()
    show_link(None)


# A page ---------------------------------------------------------------------------------------------


def apply_page_link(page: str, **options) -> None:
    """Before a page's widgets: the link's values for its main settings into their widget keys
    (`options`: what that page's module's apply() takes)."""
    PAGES[page].apply(**options)


def write_page_link(page: str, config=None, **page_defaults) -> None:
    """After a page's widgets: its settings (`config` and `page_defaults`: what that page's module's
    write() takes) into the URL, and the link shown."""
    # The sidebar's write dropped every name no page knows: what is neither its nor this page's is
    # another page's. One this session wrote itself (it left that page) goes quietly; one a link
    # just brought (/quantization?amount=0.7) is named once, with the page it belongs to.
    own = _names_of(page)
    applied, warnings = applied_values(), []
    for name in [name for name in st.query_params if name not in SIDEBAR_KEYS and name not in own]:
        text = "\n".join(st.query_params.get_all(name))  # as the applied record holds a repeated name
        if applied.get(name) != text:
            applied[name] = text
            owner = next((other for other in PAGES if other != page and name in _names_of(other)), None)
            warnings.append(f"Link: {literal(name)} is a setting of the {owner.capitalize()} page, not this one; ignored here" if owner else f"Link: {literal(name)} ignored on this page")
        del st.query_params[name]
    warn(warnings)
    PAGES[page].write(config, **page_defaults)
    show_link(page)


# The link itself -----------------------------------------------------------------------------------


def _page_paths() -> list[str]:
    try:
        from streamlit.runtime.scriptrunner import get_script_run_ctx

        return [page.get("url_pathname", "") for page in get_script_run_ctx().pages_manager.get_pages().values()]
    except Exception:  # noqa: BLE001 - no page registry (a bare script): no page path to trim
        return []


def link_for(page: str | None) -> str:
    """The full URL of the current setup: st.context.url's base (a relative path without one), the
    page's navigation path, then the query parameters."""
    try:
        url = st.context.url or ""
    except Exception:  # noqa: BLE001 - outside a browser session
        url = ""
    url = url.rstrip("/")
    if page is not None:
        for path in sorted(filter(None, _page_paths()), key=len, reverse=True):
            if url.endswith("/" + path):
                url = url[: -len(path) - 1]
                break
        url = f"{url}/{page}"
    elif not url:
        url = "/"
    values = {name: st.query_params.get_all(name) for name in st.query_params}  # a grid has one value per axis
    order = _link_names(values)
    query = query_text({name: values[name] for name in sorted(values, key=lambda name: order.index(name) if name in order else len(order))})
    return f"{url}?{query}" if query else url


@lru_cache(maxsize=1024)  # about 1 KB each; a class's slider positions times its pages
def qr_png(text: str) -> bytes:
    """A QR code of `text` as PNG bytes, drawn locally by segno."""
    import segno

    buffer = BytesIO()
    segno.make(text, error="m").save(buffer, kind="png", scale=4, border=2)
    return buffer.getvalue()


def show_link(page: str | None) -> None:
    placeholder = st.session_state.get(PLACEHOLDER_KEY)
    if placeholder is None:
        return
    link = link_for(page)
    with placeholder.container():
        st.code(link, language=None, wrap_lines=True)
        try:
            png = qr_png(link)
        except segno_too_long():  # about 2,300 characters: a link just opened may carry anything
            st.caption("This link is too long for a QR code; copy it instead.")
            return
        st.image(png, caption="Scan to open this setup", width=180)


def segno_too_long() -> type[Exception]:
    from segno.encoder import DataOverflowError

    return DataOverflowError
