"""The Quantization page's part of the share link: the mode and that mode's options under `python -m core quantize`'s names."""

from __future__ import annotations

import streamlit as st

from ui.link_params import LinkParam, config_params, read_params
from ui.plain_text import literal
from ui.share.url_state import fresh_query, warn, write_query

# Each quantization mode's widgets, by config field: (widget key, the radio's labels for True and False, or None).
QUANT_WIDGETS = {
    "simulate": {
        "bits": ("quant_bits", None),
        "per_channel": ("quant_granularity", ("per-channel", "per-tensor")),
        "symmetric": ("quant_scheme", ("symmetric", "affine")),
        "activations": ("quant_activations", None),
    },
    "dynamic": {},
    "static": {"observer": ("quant_observer", None)},
    "qat": {
        "bits": ("quant_qat_bits", None),
        "epochs": ("quant_qat_epochs", None),
        "per_channel": ("quant_qat_granularity", ("per-channel", "per-tensor")),
        "symmetric": ("quant_qat_scheme", ("symmetric", "affine")),
        "activations": ("quant_qat_activations", None),
    },
}


def _mode_param() -> LinkParam:
    from core.quantization.config import MODES

    return LinkParam("mode", MODES[0], str, choices=MODES)


def _quant_params(mode: str) -> dict[str, LinkParam]:
    from core.quantization.config import CONFIG_CLASSES

    return config_params(CONFIG_CLASSES[mode], QUANT_WIDGETS[mode])


def link_params() -> dict[str, LinkParam]:
    found = {"mode": _mode_param()}
    for mode in QUANT_WIDGETS:
        for param in _quant_params(mode).values():
            found.setdefault(param.name, param)
    return found


def apply() -> None:
    query = fresh_query(set(link_params()))
    mode_reading = read_params({"mode": _mode_param()}, query)
    mode = mode_reading.values.get("mode", st.session_state.get("quant_mode", _mode_param().default))
    if "mode" in mode_reading.values:
        st.session_state["quant_mode"] = mode
    params = _quant_params(mode)
    reading = read_params(params, query)
    warnings = mode_reading.warnings + reading.warnings
    own = {param.name for param in params.values()} | {"mode"}
    warnings += [f"Link: {name}={literal(query[name])} is not a setting of mode {mode}; ignored" for name in query if name not in own]
    for field, value in reading.values.items():
        key, labels = QUANT_WIDGETS[mode][field]
        st.session_state[key] = (labels[0] if value else labels[1]) if labels else value
    warn(warnings)


def write(config=None) -> None:
    mode = st.session_state.get("quant_mode", _mode_param().default)
    params = _quant_params(mode)
    wanted: dict[str, str | None] = {name: None for name in link_params()}
    wanted["mode"] = _mode_param().text(mode)
    for field, (key, labels) in QUANT_WIDGETS[mode].items():
        if key in st.session_state:
            value = st.session_state[key]
            wanted[params[field].name] = params[field].text(value == labels[0] if labels else value)
    write_query(wanted, set(wanted))
