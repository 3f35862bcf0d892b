"""The Explore page's part of the share link: `python -m core sweep`'s names, one `grid` per axis
(the form's --grid texts, parsed back into its widgets), then search, objective, budget-points and
cpus-per-trial. Not --address: the Ray cluster is the server's business."""

from __future__ import annotations

from typing import Any

import streamlit as st

from core.foundation.errors import UserError
from ui.link_params import LinkParam, read_params
from ui.plain_text import literal, literal_in
from ui.share.url_state import applied_values, fresh_query, warn, write_query

# The Explore page's settings, by `python -m core sweep`'s names, with their widget keys. Not
# --address: the Ray cluster is the server's business. `grid` is one query parameter per axis.
EXPLORE_KEYS = {"search": "explore_search", "objective": "explore_objective", "budget-points": "explore_budget", "cpus-per-trial": "explore_cpus_per_trial"}
RANDOM_COUNT_KEY = "explore_random_count"
GRID = "grid"
# The form's widget of each grid axis it can say; prune.amount is three (from, to, step) and
# quantize.mode one selectbox, so they are mapped by hand in _explore_axis.
EXPLORE_LIST_KEYS = {
    "prune.granularity": "explore_granularity",
    "prune.scope": "explore_scope",
    "prune.finetune_epochs": "explore_finetune_epochs",
    "quantize.bits": "explore_quantize_bits",
    "quantize.per_channel": "explore_quantize_per_channel",
}
EXPLORE_TEXT_KEYS = {"distill.temperature": "explore_temperatures", "distill.alpha": "explore_alphas"}
AMOUNT_KEYS = ("explore_amount_min", "explore_amount_max", "explore_amount_step")


def _search_check(text: str) -> None:
    from core.sweep.explore import MAX_RANDOM_COUNT
    from core.sweep.search import parse_search

    search = parse_search(text)
    if search.kind == "random" and search.count > MAX_RANDOM_COUNT:  # the page's "Random trials (N)" bound
        raise UserError(f"--search '{text}': the page draws at most {MAX_RANDOM_COUNT} random points")


def _cpus_check(cpus: int) -> None:
    from core.sweep.explore import MAX_CPUS_PER_TRIAL
    from core.sweep.run import EngineOptions

    EngineOptions(None, cpus).validate()
    if cpus > MAX_CPUS_PER_TRIAL:  # the page's "CPUs per trial" bound
        raise UserError(f"--cpus-per-trial is at most {MAX_CPUS_PER_TRIAL} on this page, got {cpus}")


def link_params() -> dict[str, LinkParam]:
    """The Explore page's parameters by CLI name: the checks of `python -m core sweep` (SweepSpec,
    EngineOptions, parse_search) and the page's widget bounds; the defaults are the form's."""
    from core.sweep.frontier import OBJECTIVES, check_objective
    from core.sweep.grid import SweepGrid
    from core.sweep.run import EngineOptions, SweepSpec

    objectives = tuple(OBJECTIVES)
    params = [
        LinkParam(GRID, None, keep=True),  # only its name: the axes are read by _apply_grid, one value each
        LinkParam("search", SweepSpec.search.as_text(), str, _search_check),
        LinkParam("objective", objectives[0], str, check_objective, objectives),  # the selectbox starts at the first
        LinkParam("budget-points", SweepSpec.budget_points, float, lambda value: SweepSpec(SweepGrid(()), budget_points=value).validate()),
        LinkParam("cpus-per-trial", EngineOptions.cpus_per_trial, int, _cpus_check),
    ]
    return {param.name: param for param in params}


def apply() -> None:
    state = st.session_state
    params = link_params()
    reading = read_params({name: param for name, param in params.items() if name != GRID}, fresh_query(set(EXPLORE_KEYS)))
    for name, value in reading.values.items():
        if name == "search":
            search = value.partition(":")
            state[EXPLORE_KEYS[name]] = search[0]
            if search[2]:
                state[RANDOM_COUNT_KEY] = int(search[2])
        else:
            state[EXPLORE_KEYS[name]] = value
    texts = _fresh_grid()
    warn(reading.warnings + (_apply_grid(texts) if texts is not None else []))


def _fresh_grid() -> list[str] | None:
    """The URL's grid texts when this session has not applied them yet (as _fresh_query, for a repeated name)."""
    texts = st.query_params.get_all(GRID)
    applied = applied_values()
    if not texts or applied.get(GRID) == _grid_marker(texts):
        return None
    applied[GRID] = _grid_marker(texts)
    return texts


def _grid_marker(texts: list[str]) -> str:
    return "\n".join(texts)  # the applied record holds one text per name


def _apply_grid(texts: list[str]) -> list[str]:
    """A link's grid into the form: each axis parse_grid accepts and the form can say goes into its
    widget, the "Vary" boxes follow the techniques those name, and the ticked techniques' other
    widgets are set so that the form makes the link's grid. One warning line per text refused or
    ignored; that axis keeps the form's default."""
    from core.sweep.grid import parse_grid, technique_parameters

    axes, warnings = {}, []
    for text in texts:
        try:
            axis = parse_grid([text]).axes[0]
        except UserError as error:
            warnings.append(f"Link: grid={literal(text)} is refused ({literal_in(str(error), text)}); using the form's default for it")
            continue
        if axis.name in axes:
            try:
                parse_grid([axes[axis.name][0], text])  # raises parse_grid's own "given twice"
            except UserError as error:
                warnings.append(f"Link: grid={literal(text)} is refused ({literal_in(str(error), text)}); the first one applies")
            continue
        axes[axis.name] = (text, axis)
    widgets: dict[str, Any] = {}
    for text, axis in axes.values():
        fields, problem = _explore_axis(axis)
        if problem:
            warnings.append(f"Link: grid={literal(text)} {literal_in(problem, text)}")
        else:
            widgets[axis.name] = fields
    ticked = {name.partition(".")[0] for name in widgets}
    if ticked:
        state = st.session_state
        state.update({f"explore_vary_{technique}": technique in ticked for technique in technique_parameters()})
        for name in _FORM_AXES:
            if name.partition(".")[0] in ticked:
                state.update(widgets.get(name) or _axis_fallback(name, named=name in axes))
    return warnings


# Every axis the form can say, in its order.
_FORM_AXES = ("prune.amount", "prune.granularity", "prune.scope", "prune.finetune_epochs", "quantize.mode", "quantize.bits", "quantize.per_channel", "distill.temperature", "distill.alpha")


def _explore_axis(axis) -> tuple[dict[str, Any], str | None]:
    """The form's widget values for one parsed axis, or a reason it cannot say it."""
    from core.sweep.explore import AMOUNT_STEP_MIN, FORM_AMOUNT_RANGE, FORM_QUANTIZE_MODE, amount_bounds, axis_as_range
    from core.sweep.grid import format_value

    if axis.name == "prune.amount":
        span = axis_as_range(axis)
        bottom, top = amount_bounds()
        if span is None:
            return {}, f"is not evenly spaced, which the form's from/to/step cannot say; using {_range_text(FORM_AMOUNT_RANGE)}"
        low, high, step = span[0], span[1], FORM_AMOUNT_RANGE[2] if span[2] is None else span[2]
        if not (bottom <= low and high <= top and step >= AMOUNT_STEP_MIN):
            return {}, f"is outside the form's amounts ({bottom:g} to {top:g}, step at least {AMOUNT_STEP_MIN:g}); using {_range_text(FORM_AMOUNT_RANGE)}"
        return dict(zip(AMOUNT_KEYS, (float(low), float(high), float(step)))), None
    if axis.name == "quantize.mode":
        if len(axis.values) != 1:
            return {}, f"gives several modes and the form has one; using {FORM_QUANTIZE_MODE}"
        return {"explore_quantize_mode": axis.values[0]}, None
    if axis.name in EXPLORE_LIST_KEYS:
        return {EXPLORE_LIST_KEYS[axis.name]: list(axis.values)}, None
    if axis.name in EXPLORE_TEXT_KEYS:
        return {EXPLORE_TEXT_KEYS[axis.name]: ", ".join(format_value(value) for value in axis.values)}, None
    return {}, f"is ignored: the Explore form has no widget for {axis.name}"


def _range_text(span: tuple[float, float, float]) -> str:
    return ":".join(f"{value:g}" for value in span)


def _axis_fallback(name: str, named: bool) -> dict[str, Any]:
    """The widgets of a ticked technique's axis the link does not set: the form's own start when the
    link named it (refused), else what leaving it out of a grid means: the option's default, or no
    value where the form may give none (bits, temperatures, alphas)."""
    from core.sweep.explore import FORM_ALPHAS, FORM_AMOUNT_RANGE, FORM_QUANTIZE_BITS, FORM_QUANTIZE_MODE, FORM_TEMPERATURES
    from core.sweep.grid import technique_parameters

    technique, _, parameter = name.partition(".")
    option = technique_parameters()[technique][parameter]
    if name == "prune.amount":  # the form always varies the amount: left out, it is the option's default alone
        return dict(zip(AMOUNT_KEYS, FORM_AMOUNT_RANGE if named else (option.default, option.default)))
    if name == "quantize.mode":
        return {"explore_quantize_mode": FORM_QUANTIZE_MODE}
    if name == "quantize.bits":
        return {EXPLORE_LIST_KEYS[name]: list(FORM_QUANTIZE_BITS) if named else []}
    if name in EXPLORE_TEXT_KEYS:
        start = {"distill.temperature": FORM_TEMPERATURES, "distill.alpha": FORM_ALPHAS}[name]
        return {EXPLORE_TEXT_KEYS[name]: start if named else ""}
    return {EXPLORE_LIST_KEYS[name]: [option.default]}


def write(config=None, grid: list[str] | None = None) -> None:
    state = st.session_state
    params = link_params()
    search = state.get(EXPLORE_KEYS["search"], params["search"].default)
    values = {"search": f"{search}:{int(state.get(RANDOM_COUNT_KEY))}" if search == "random" else search, **{name: state.get(key) for name, key in EXPLORE_KEYS.items() if name != "search"}}
    write_query({name: params[name].text(value) for name, value in values.items()}, set(EXPLORE_KEYS))
    if grid is not None and st.query_params.get_all(GRID) != grid:
        st.query_params[GRID] = grid  # one query parameter per axis, in the form's order
    if grid is not None:
        applied_values()[GRID] = _grid_marker(grid)
