"""The Pruning page's part of the share link: PruneConfig's options under `python -m core prune`'s names."""

from __future__ import annotations

import streamlit as st

from ui.link_params import LinkParam, config_params, read_params, settle_conflicts
from ui.share.url_state import fresh_query, warn, write_query

PRUNE_FIELDS = ("granularity", "scope", "method", "amount", "remove")
_methods_by_granularity: dict[str, list[str]] = {}  # what the page told apply(): the same for every session


def link_params() -> dict[str, LinkParam]:
    from core.pruning import PruneConfig

    return config_params(PruneConfig, PRUNE_FIELDS)


def apply(methods: dict[str, list[str]]) -> None:
    """`methods`: the ranking methods each granularity offers (the first is its default)."""
    from core.pruning import PruneConfig

    _methods_by_granularity.update(methods)
    params = link_params()
    query = fresh_query({param.name for param in params.values()})
    reading = read_params(params, query)
    given = dict(reading.values)
    granularity = given.get("granularity", st.session_state.get("prune_granularity", params["granularity"].default))
    warnings = reading.warnings + settle_conflicts(PruneConfig, params, given, {"granularity": granularity}, ("remove", "method"), query, {"method": methods[granularity][0]})
    if "method" in given and given["method"] not in methods[granularity]:
        given["method"] = methods[granularity][0]
    top = _slider_top()
    for name, value in given.items():
        if name == "method":
            st.session_state[f"prune_method_{granularity}"] = value
        elif name == "amount":
            st.session_state["prune_amount"] = min(round(float(value), 2), top)
        else:
            st.session_state[f"prune_{name}"] = value
    warn(warnings)


def _slider_top() -> float:
    """The page's slider end: the amount's maximum, or the last 0.01 step below its exclusive bound."""
    from core.contract.options import spec
    from core.pruning import PruneConfig

    amount_spec = spec(PruneConfig, "amount")
    return amount_spec.maximum if amount_spec.maximum is not None else round(amount_spec.below - 0.01, 2)


def write(config) -> None:
    methods = _methods_by_granularity
    params = link_params()
    wanted = {params[name].name: params[name].text(getattr(config, name)) for name in PRUNE_FIELDS}
    wanted["amount"] = params["amount"].text(round(config.amount, 2))
    if methods and config.method == methods[config.granularity][0]:
        wanted["method"] = None  # the page's own default for this granularity
    if config.granularity != "channel":
        wanted["remove"] = None
    write_query(wanted, set(wanted))
