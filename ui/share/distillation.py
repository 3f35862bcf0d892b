"""The Distillation page's part of the share link: `python -m core distill`'s names. A link's preset
fills the widgets first and its own values win, as flags beside --preset do; a value left out is the
preset's (or the page's own pick for its source)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from typing import Any

import streamlit as st

from ui.link_params import LinkParam, config_params, read_params
from ui.share.url_state import fresh_query, warn, write_query

# The Distillation page's settings that are flags of `python -m core distill`, by DistillConfig field
# (and the command's --preset), with their widget keys. The students' epochs and first seed are the
# command's --epochs and --seed, names the link already gives the sidebar's baseline, so they (and
# the number of seeds) stay out of the link.
DISTILL_KEYS = {
    "preset": "distill_preset",
    "teacher": "distill_teacher",
    "student": "distill_student",
    "temperature": "distill_temperature",
    "alpha": "distill_alpha",
    "labelled_fraction": "distill_labelled",
    "learning_rate": "distill_learning_rate",
    "augment": "distill_augment",
    "teacher_epochs": "distill_teacher_epochs",
}


def _preset_param() -> LinkParam:
    from core.distillation.config import DEFAULT_PRESET, DISTILL_PRESETS

    # Always in the link: the command without --preset starts from DistillConfig's defaults, not the page's preset.
    return LinkParam("preset", DEFAULT_PRESET, str, choices=tuple(DISTILL_PRESETS), keep=True)


def link_params() -> dict[str, LinkParam]:
    """The Distillation page's parameters by field, with DistillConfig's names, checks and defaults."""
    from core.distillation.config import DistillConfig

    return {"preset": _preset_param(), **config_params(DistillConfig, [field for field in DISTILL_KEYS if field != "preset"])}


def _every_image() -> float:
    """The page's labelled share for "every image" (its None): the option's maximum."""
    from core.contract.options import spec
    from core.distillation.config import DistillConfig

    return spec(DistillConfig, "labelled_fraction").maximum


def _distill_page_params(preset: str, page_defaults: dict[str, Any], page_choices: dict[str, Iterable] | None = None) -> dict[str, LinkParam]:
    """The parameters as the page reads and writes them: each defaults to what the page shows when
    the link leaves it out (the preset's T, alpha and labelled share, then `page_defaults`: the
    student, teacher and learning rate it picks for its source), and `page_choices` narrow the CLI's
    choices to the widgets' (the teachers and students this machine has, the labelled shares offered)."""
    from core.distillation.config import DISTILL_PRESETS

    defaults = {**DISTILL_PRESETS[preset].config_fields(), **page_defaults}
    defaults["labelled_fraction"] = defaults["labelled_fraction"] or _every_image()
    choices = {field: tuple(options) for field, options in (page_choices or {}).items()}
    return {field: replace(param, default=defaults.get(field, param.default), choices=choices.get(field, param.choices)) for field, param in link_params().items()}


def apply(on_preset: Callable[[], None], teachers: list[str], labelled_choices: Iterable[float], student: str, teacher: str, students: list[str] | None = None) -> None:
    state = st.session_state
    query = fresh_query({param.name for param in link_params().values()})
    preset_reading = read_params({"preset": _preset_param()}, query)
    if "preset" in preset_reading.values:
        state[DISTILL_KEYS["preset"]] = preset_reading.values["preset"]
        on_preset()  # the preset's values first, so that the link's own values below win over them
    preset = state.get(DISTILL_KEYS["preset"], _preset_param().default)
    params = _distill_page_params(preset, {"student": student, "teacher": teacher}, {"teacher": teachers, "student": students or teachers, "labelled_fraction": labelled_choices})
    del params["preset"]
    reading = read_params(params, query)
    for field, value in reading.values.items():
        if field == "learning_rate" and value is None:
            state.pop(DISTILL_KEYS[field], None)  # refused: the widget starts from the students' recipe, which it cannot leave empty
        else:
            state[DISTILL_KEYS[field]] = value
    warn(preset_reading.warnings + reading.warnings)


def write(config, **page_defaults: Any) -> None:
    preset = st.session_state.get(DISTILL_KEYS["preset"], _preset_param().default)
    params = _distill_page_params(preset, page_defaults)
    values = {"preset": preset, **{field: getattr(config, field) for field in params if field != "preset"}}
    if config.labelled_fraction is None:
        values["labelled_fraction"] = _every_image()  # said outright: a preset with a share would otherwise win on opening
    write_query({params[field].name: params[field].text(value) for field, value in values.items()}, {param.name for param in params.values()})
