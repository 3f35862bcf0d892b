"""The share link: the sidebar's and the page's settings in the address bar, and back.

Before the widgets are made, a value the URL holds that this session has not applied yet (a link
just opened) goes into st.session_state under the widget's key; after them, the current values are
written back into st.query_params under the CLI's names (core/share_link.py), so the address bar
always holds the current setup and a later rerun does not overwrite a widget with a stale URL. A
refused value is one st.warning line naming it and the default used. On the Distillation page a
link's preset fills its widgets first and the link's own values win, as flags beside --preset do;
a value left out is the preset's (or the page's own pick for its source). The "Share this setup"
expander shows the link and its QR code, drawn here with segno (no network).
"""

from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from io import BytesIO
from typing import Any, Callable, Iterable

import streamlit as st

from core.dataset_names import FOLDER_PREFIX
from core.errors import UserError
from core.share_link import LinkParam, config_params, query_text, read_params, settle_conflicts, sidebar_params

APPLIED_KEY = "share_link_applied"  # CLI name -> the URL text last applied or written by this session
PLACEHOLDER_KEY = "share_link_placeholder"
FOLDER_CHOICE = "folder…"

SIDEBAR_KEYS = {"dataset": "sidebar_dataset", "model": "sidebar_model", "train-size": "sidebar_train_size", "epochs": "sidebar_epochs", "seed": "sidebar_seed", "device": "sidebar_device"}
PRUNE_FIELDS = ("granularity", "scope", "method", "amount", "remove")


def _prune_params() -> dict[str, LinkParam]:
    from core.pruning import PruneConfig

    return config_params(PruneConfig, PRUNE_FIELDS)


# Each quantization mode's widgets, by config field: (widget key, the radio's labels for True and False, or None).
QUANT_WIDGETS = {
    "simulate": {"bits": ("quant_bits", None), "per_channel": ("quant_granularity", ("per-channel", "per-tensor")),
                 "symmetric": ("quant_scheme", ("symmetric", "affine")), "activations": ("quant_activations", None)},
    "dynamic": {},
    "static": {"observer": ("quant_observer", None)},
    "qat": {"bits": ("quant_qat_bits", None), "epochs": ("quant_qat_epochs", None), "per_channel": ("quant_qat_granularity", ("per-channel", "per-tensor")),
            "symmetric": ("quant_qat_scheme", ("symmetric", "affine")), "activations": ("quant_qat_activations", None)},
}


def _mode_param() -> LinkParam:
    from core.quantization.config import MODES

    return LinkParam("mode", MODES[0], str, choices=MODES)


def _quant_params(mode: str) -> dict[str, LinkParam]:
    from core.quantization.config import CONFIG_CLASSES

    return config_params(CONFIG_CLASSES[mode], QUANT_WIDGETS[mode])


def _all_quant_params() -> dict[str, LinkParam]:
    found = {"mode": _mode_param()}
    for mode in QUANT_WIDGETS:
        for param in _quant_params(mode).values():
            found.setdefault(param.name, param)
    return found


# The Distillation page's settings that are flags of `python -m core distill`, by DistillConfig field
# (and the command's --preset), with their widget keys. The students' epochs and first seed are the
# command's --epochs and --seed, names the link already gives the sidebar's baseline, so they (and
# the number of seeds) stay out of the link.
DISTILL_KEYS = {"preset": "distill_preset", "teacher": "distill_teacher", "student": "distill_student", "temperature": "distill_temperature",
                "alpha": "distill_alpha", "labelled_fraction": "distill_labelled", "learning_rate": "distill_learning_rate",
                "augment": "distill_augment", "teacher_epochs": "distill_teacher_epochs"}


def _preset_param() -> LinkParam:
    from core.distillation.config import DEFAULT_PRESET, DISTILL_PRESETS

    # Always in the link: the command without --preset starts from DistillConfig's defaults, not the page's preset.
    return LinkParam("preset", DEFAULT_PRESET, str, choices=tuple(DISTILL_PRESETS), keep=True)


def _distill_params() -> dict[str, LinkParam]:
    """The Distillation page's parameters by field, with DistillConfig's names, checks and defaults."""
    from core.distillation.config import DistillConfig

    return {"preset": _preset_param(), **config_params(DistillConfig, [field for field in DISTILL_KEYS if field != "preset"])}


def _every_image() -> float:
    """The page's labelled share for "every image" (its None): the option's maximum."""
    from core.distillation.config import DistillConfig
    from core.options import spec

    return spec(DistillConfig, "labelled_fraction").maximum


def _distill_page_params(preset: str, page_defaults: dict[str, Any], page_choices: dict[str, Iterable] | None = None) -> dict[str, LinkParam]:
    """The parameters as the page reads and writes them: each defaults to what the page shows when
    the link leaves it out (the preset's T, alpha and labelled share, then `page_defaults`: the
    student, teacher and learning rate it picks for its source), and `page_choices` narrow the CLI's
    choices to the widgets' (the teachers this machine has, the labelled shares offered)."""
    from core.distillation.config import DISTILL_PRESETS

    defaults = {**DISTILL_PRESETS[preset].config_fields(), **page_defaults}
    defaults["labelled_fraction"] = defaults["labelled_fraction"] or _every_image()
    choices = {field: tuple(options) for field, options in (page_choices or {}).items()}
    return {field: replace(param, default=defaults.get(field, param.default), choices=choices.get(field, param.choices))
            for field, param in _distill_params().items()}


# The Explore page's settings, by `python -m core sweep`'s names, with their widget keys. Not
# --address: the Ray cluster is the server's business. `grid` is one query parameter per axis.
EXPLORE_KEYS = {"search": "explore_search", "objective": "explore_objective", "budget-points": "explore_budget", "cpus-per-trial": "explore_cpus_per_trial"}
RANDOM_COUNT_KEY = "explore_random_count"
GRID = "grid"
# The form's widget of each grid axis it can say; prune.amount is three (from, to, step) and
# quantize.mode one selectbox, so they are mapped by hand in _explore_axis.
EXPLORE_LIST_KEYS = {"prune.granularity": "explore_granularity", "prune.scope": "explore_scope", "prune.finetune_epochs": "explore_finetune_epochs",
                     "quantize.bits": "explore_quantize_bits", "quantize.per_channel": "explore_quantize_per_channel"}
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


def _explore_params() -> dict[str, LinkParam]:
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


# The Compare page's settings, by `python -m core report`'s names: the run everything is compared
# with and the runs selected (ids of this server's history, which the class shares). Its filters stay
# out: the report's --dataset and --model are the sidebar's names in the link.
COMPARE_KEYS = {"reference": "compare_reference", "runs": "compare_selected"}


def _compare_params() -> dict[str, LinkParam]:
    return {"reference": LinkParam("reference", None, int), "runs": LinkParam("runs", None, str)}


# The pages with link settings, in the link's order. Distillation and Explore come last: their
# modules import torch, so their names are read only when the URL holds a name the others do not
# know (the Overview's first render imports no torch).
PAGE_PARAMS = {"pruning": _prune_params, "quantization": _all_quant_params, "compare": _compare_params, "distillation": _distill_params, "explore": _explore_params}
_page_options: dict[str, dict] = {}  # what the Pruning page told apply_page_link: the methods each granularity offers, the same for every session


def _names_of(page: str) -> set[str]:
    return {param.name for param in PAGE_PARAMS[page]().values()}


def _link_names(present: Iterable[str]) -> list[str]:
    """The names a link carries, in its order (the sidebar's, then each page's), read page by page
    only until every name in `present` is placed (a name no page carries reads them all)."""
    names = list(SIDEBAR_KEYS)
    for page in PAGE_PARAMS:
        if set(present) <= set(names):
            break
        names += [param.name for param in PAGE_PARAMS[page]().values()]
    return names


def _applied() -> dict[str, str | None]:
    return st.session_state.setdefault(APPLIED_KEY, {})


def _fresh_query(names: set[str]) -> dict[str, str]:
    """The URL's values for `names` that this session has not applied yet; marked applied now."""
    applied, fresh = _applied(), {}
    for name in names:
        text = st.query_params.get(name)
        if text is not None and applied.get(name) != text:
            fresh[name] = text
            applied[name] = text
    return fresh


def _write(wanted: dict[str, str | None], owned: set[str]) -> None:
    """Make st.query_params hold `wanted` for the names in `owned` (None: left out), touching only what differs."""
    applied = _applied()
    for name in owned:
        text = wanted.get(name)
        if text is None:
            if name in st.query_params:
                del st.query_params[name]
        elif st.query_params.get(name) != text:
            st.query_params[name] = text
        applied[name] = text


def _warn(lines: list[str]) -> None:
    for line in lines:
        st.warning(line, icon=":material/link:")


# The sidebar --------------------------------------------------------------------------------------


def apply_sidebar_link(models: list[str], devices: list[str]) -> None:
    """Before the sidebar's widgets: a link's baseline settings into their widget keys; unknown parameters named once."""
    params = sidebar_params(models, devices)
    applied, warnings = _applied(), []
    known = set(_link_names(st.query_params))
    for name, text in st.query_params.items():
        if name not in known and applied.get(f"unknown:{name}") != text:
            applied[f"unknown:{name}"] = text
            warnings.append(f"Link: unknown parameter {name}={text} ignored")
    reading = read_params(params, _fresh_query(set(params)))
    for name, value in reading.values.items():
        if name == "dataset":
            if str(value).startswith(FOLDER_PREFIX):
                st.session_state["sidebar_dataset"] = FOLDER_CHOICE
                st.session_state["sidebar_folder"] = str(value)[len(FOLDER_PREFIX):]
            else:
                st.session_state["sidebar_dataset"] = value
        elif name == "train-size":
            st.session_state["sidebar_train_size"] = value or 0  # the sidebar's 0 is the CLI's "all"
        else:
            st.session_state[SIDEBAR_KEYS[name]] = value
    _warn(warnings + reading.warnings)


def sidebar_values() -> dict[str, Any]:
    """The sidebar's widgets as the CLI names them."""
    state = st.session_state
    dataset = state.get("sidebar_dataset")
    if dataset == FOLDER_CHOICE:
        folder = str(state.get("sidebar_folder") or "").strip()
        dataset = f"{FOLDER_PREFIX}{folder}" if folder else None
    train_size = state.get("sidebar_train_size")
    return {"dataset": dataset, "model": state.get("sidebar_model"), "train-size": int(train_size) if train_size else None,
            "epochs": None if state.get("sidebar_epochs") is None else int(state["sidebar_epochs"]),
            "seed": None if state.get("sidebar_seed") is None else int(state["sidebar_seed"]), "device": state.get("sidebar_device")}


def write_sidebar_link() -> None:
    """After the sidebar's widgets: their values into the URL (unknown parameters dropped), and the Share expander."""
    params = sidebar_params()
    values = sidebar_values()
    _write({name: params[name].text(value) for name, value in values.items()}, set(params))
    known = set(_link_names(st.query_params))
    for name in [name for name in st.query_params if name not in known]:
        del st.query_params[name]
    with st.sidebar.expander("Share this setup", icon=":material/share:"):
        st.session_state[PLACEHOLDER_KEY] = st.empty()
    show_link(None)


# A page ---------------------------------------------------------------------------------------------


def apply_page_link(page: str, **options) -> None:
    """Before a page's widgets: the link's values for its main settings into their widget keys.
    Pruning takes `methods`, the ranking methods each granularity offers (the first is its default).
    Distillation takes `on_preset` (the preset selectbox's on_change, which fills T, alpha and the
    labelled share), `teachers` and `labelled_choices` (its widgets' choices), and `student` and
    `teacher` (the ones it picks for this source)."""
    if page == "pruning":
        _page_options[page] = options
        _apply_pruning(options["methods"])
    elif page == "quantization":
        _apply_quantization()
    elif page == "distillation":
        _apply_distillation(**options)
    elif page == "explore":
        _apply_explore()
    elif page == "compare":
        _apply_compare(**options)


def write_page_link(page: str, config=None, **page_defaults) -> None:
    """After a page's widgets: its settings (the Pruning and Distillation pages' `config`; the
    Quantization and Explore pages' widget values) into the URL, and the link shown. Distillation's
    `page_defaults` are the student, teacher and learning rate it shows when a link leaves them out;
    Explore's `grid` is the form's grid texts (None: the form is in error, the URL's grid stays)."""
    # The sidebar's write dropped every name no page knows: what is neither its nor this page's is another page's.
    own = _names_of(page)
    for name in [name for name in st.query_params if name not in SIDEBAR_KEYS and name not in own]:
        del st.query_params[name]
    if page == "pruning":
        _write_pruning(config, _page_options.get(page, {}).get("methods"))
    elif page == "quantization":
        _write_quantization()
    elif page == "distillation":
        _write_distillation(config, page_defaults)
    elif page == "explore":
        _write_explore(page_defaults["grid"])
    elif page == "compare":
        _write_compare(**page_defaults)
    show_link(page)


def _apply_pruning(methods: dict[str, list[str]]) -> None:
    from core.pruning import PruneConfig

    params = _prune_params()
    query = _fresh_query({param.name for param in params.values()})
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
    _warn(warnings)


def _slider_top() -> float:
    """The page's slider end: the amount's maximum, or the last 0.01 step below its exclusive bound."""
    from core.options import spec
    from core.pruning import PruneConfig

    amount_spec = spec(PruneConfig, "amount")
    return amount_spec.maximum if amount_spec.maximum is not None else round(amount_spec.below - 0.01, 2)


def _write_pruning(config, methods: dict[str, list[str]] | None) -> None:
    params = _prune_params()
    wanted = {params[name].name: params[name].text(getattr(config, name)) for name in PRUNE_FIELDS}
    wanted["amount"] = params["amount"].text(round(config.amount, 2))
    if methods and config.method == methods[config.granularity][0]:
        wanted["method"] = None  # the page's own default for this granularity
    if config.granularity != "channel":
        wanted["remove"] = None
    _write(wanted, set(wanted))


def _apply_quantization() -> None:
    query = _fresh_query(set(_all_quant_params()))
    mode_reading = read_params({"mode": _mode_param()}, query)
    mode = mode_reading.values.get("mode", st.session_state.get("quant_mode", _mode_param().default))
    if "mode" in mode_reading.values:
        st.session_state["quant_mode"] = mode
    params = _quant_params(mode)
    reading = read_params(params, query)
    warnings = mode_reading.warnings + reading.warnings
    own = {param.name for param in params.values()} | {"mode"}
    warnings += [f"Link: {name}={query[name]} is not a setting of mode {mode}; ignored" for name in query if name not in own]
    for field, value in reading.values.items():
        key, labels = QUANT_WIDGETS[mode][field]
        st.session_state[key] = (labels[0] if value else labels[1]) if labels else value
    _warn(warnings)


def _write_quantization() -> None:
    mode = st.session_state.get("quant_mode", _mode_param().default)
    params = _quant_params(mode)
    wanted: dict[str, str | None] = {name: None for name in _all_quant_params()}
    wanted["mode"] = _mode_param().text(mode)
    for field, (key, labels) in QUANT_WIDGETS[mode].items():
        if key in st.session_state:
            value = st.session_state[key]
            wanted[params[field].name] = params[field].text(value == labels[0] if labels else value)
    _write(wanted, set(wanted))


def _apply_distillation(on_preset: Callable[[], None], teachers: list[str], labelled_choices: Iterable[float], student: str, teacher: str) -> None:
    state = st.session_state
    query = _fresh_query(_names_of("distillation"))
    preset_reading = read_params({"preset": _preset_param()}, query)
    if "preset" in preset_reading.values:
        state[DISTILL_KEYS["preset"]] = preset_reading.values["preset"]
        on_preset()  # the preset's values first, so that the link's own values below win over them
    preset = state.get(DISTILL_KEYS["preset"], _preset_param().default)
    params = _distill_page_params(preset, {"student": student, "teacher": teacher}, {"teacher": teachers, "labelled_fraction": labelled_choices})
    del params["preset"]
    reading = read_params(params, query)
    for field, value in reading.values.items():
        if field == "learning_rate" and value is None:
            state.pop(DISTILL_KEYS[field], None)  # refused: the widget starts from the students' recipe, which it cannot leave empty
        else:
            state[DISTILL_KEYS[field]] = value
    _warn(preset_reading.warnings + reading.warnings)


def _write_distillation(config, page_defaults: dict[str, Any]) -> None:
    preset = st.session_state.get(DISTILL_KEYS["preset"], _preset_param().default)
    params = _distill_page_params(preset, page_defaults)
    values = {"preset": preset, **{field: getattr(config, field) for field in params if field != "preset"}}
    if config.labelled_fraction is None:
        values["labelled_fraction"] = _every_image()  # said outright: a preset with a share would otherwise win on opening
    _write({params[field].name: params[field].text(value) for field, value in values.items()}, {param.name for param in params.values()})


def _apply_explore() -> None:
    state = st.session_state
    params = _explore_params()
    reading = read_params({name: param for name, param in params.items() if name != GRID}, _fresh_query(set(EXPLORE_KEYS)))
    for name, value in reading.values.items():
        if name == "search":
            search = value.partition(":")
            state[EXPLORE_KEYS[name]] = search[0]
            if search[2]:
                state[RANDOM_COUNT_KEY] = int(search[2])
        else:
            state[EXPLORE_KEYS[name]] = value
    texts = _fresh_grid()
    _warn(reading.warnings + (_apply_grid(texts) if texts is not None else []))


def _fresh_grid() -> list[str] | None:
    """The URL's grid texts when this session has not applied them yet (as _fresh_query, for a repeated name)."""
    texts = st.query_params.get_all(GRID)
    applied = _applied()
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
            warnings.append(f"Link: grid={text} is refused ({error}); using the form's default for it")
            continue
        if axis.name in axes:
            try:
                parse_grid([axes[axis.name][0], text])  # raises parse_grid's own "given twice"
            except UserError as error:
                warnings.append(f"Link: grid={text} is refused ({error}); the first one applies")
            continue
        axes[axis.name] = (text, axis)
    widgets: dict[str, Any] = {}
    for text, axis in axes.values():
        fields, problem = _explore_axis(axis)
        if problem:
            warnings.append(f"Link: grid={text} {problem}")
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
_FORM_AXES = ("prune.amount", "prune.granularity", "prune.scope", "prune.finetune_epochs", "quantize.mode", "quantize.bits", "quantize.per_channel",
              "distill.temperature", "distill.alpha")


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


def _write_explore(grid: list[str] | None) -> None:
    state = st.session_state
    params = _explore_params()
    search = state.get(EXPLORE_KEYS["search"], params["search"].default)
    values = {"search": f"{search}:{int(state.get(RANDOM_COUNT_KEY))}" if search == "random" else search,
              **{name: state.get(key) for name, key in EXPLORE_KEYS.items() if name != "search"}}
    _write({name: params[name].text(value) for name, value in values.items()}, set(EXPLORE_KEYS))
    if grid is not None and st.query_params.get_all(GRID) != grid:
        st.query_params[GRID] = grid  # one query parameter per axis, in the form's order
    if grid is not None:
        _applied()[GRID] = _grid_marker(grid)


def _apply_compare(references: list[int], recorded: list[int], default_reference: int | None) -> None:
    """A link's reference (one of `references`, the baseline and pinned runs) and selected runs (of
    `recorded`, the history's ids) into the page's widgets; what the history lacks is one line each."""
    query, warnings = _fresh_query(set(COMPARE_KEYS)), []
    fallback = "the sidebar's baseline" if default_reference is None else f"#{default_reference}"
    if "reference" in query:
        text = query["reference"]
        reference = int(text) if text.strip().isdigit() else None
        if reference in references:
            st.session_state[COMPARE_KEYS["reference"]] = reference
        else:
            warnings.append(f"Link: reference={text} is not a baseline or pinned run of this history; using {fallback}")
    if "runs" in query:
        words = [word.strip() for word in query["runs"].split(",") if word.strip()]
        found = [int(word) for word in words if word.isdigit() and int(word) in recorded]
        missing = [word for word in words if not (word.isdigit() and int(word) in recorded)]
        if missing:
            warnings.append(f"Link: runs {', '.join(missing)} are not in this history; {'showing the others' if found else 'none selected'}")
        st.session_state[COMPARE_KEYS["runs"]] = list(dict.fromkeys(found))
    _warn(warnings)


def _write_compare(reference: int, selected: list[int], default_reference: int | None) -> None:
    """The reference (left out when it is the page's default) and the selection (none: every run shown)."""
    _write({"reference": None if reference == default_reference else str(reference),
            "runs": ",".join(str(run_id) for run_id in sorted(selected)) or None}, set(COMPARE_KEYS))


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
        st.image(qr_png(link), caption="Scan to open this setup", width=180)
