"""Share links: a setup as URL query parameters, under the CLI's names, read back with the CLI's checks.

`/pruning?dataset=digits&seed=0&granularity=channel&amount=0.7` holds the sidebar's baseline (the
common options of `python -m core`) and a page's main settings (its config's `option(...)` fields).
Each parameter is parsed with the flag's type and refused by the same check the CLI runs (an
OptionSpec's range or choices, BaselineConfig.validate, validate_dataset_name), so a link accepts
exactly what the command line accepts. A refused value becomes one line naming it and the default
used instead; the rest of the link still applies. No Streamlit here: ui/share/ binds these to widgets.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from core.contract.options import OptionSpec, _argument_type, specs
from core.foundation.baseline.config import BaselineConfig
from core.foundation.data.names import DatasetSpec, validate_dataset_name
from core.foundation.errors import UserError
from ui.plain_text import literal, literal_in

TRUE_WORDS = ("true", "1", "yes", "on")
FALSE_WORDS = ("false", "0", "no", "off")


def parse_bool(text: str) -> bool:
    word = text.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValueError(text)


def show_value(value: Any, empty: str = "the default") -> str:
    """A value as a link (and a warning) writes it: 0.7, true, channel."""
    if value is None:
        return empty
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


KIND_WORDS = {int: "a whole number", float: "a number", bool: "true or false", str: "text"}


@dataclass(frozen=True)
class LinkParam:
    """One setting in a link: its CLI name, its default, how its text parses and which check refuses it."""

    name: str  # the CLI flag without its dashes, e.g. train-size
    default: Any
    kind: type = str
    check: Callable[[Any], None] = lambda value: None  # raises UserError when the CLI would refuse the value
    choices: tuple | None = None
    range_text: str | None = None  # e.g. "[0, 1)", for the warning
    keep: bool = False  # stays in the link even at its default (dataset, seed)
    empty: str = "the default"  # how the warning names a None default ("the preset", "all")

    def parse(self, text: str) -> Any:
        if self.kind is bool:
            return parse_bool(text)
        if self.kind is int:
            return int(text.strip())
        if self.kind is float:
            return float(text.strip())
        return text

    def read(self, text: str) -> tuple[Any, str | None]:
        """(value, None) for an accepted text; (the default, one warning line) for a refused one."""
        # The text is the link's, not this app's: shown short and as itself (ui/plain_text.py).
        fallback = f"; using {show_value(self.default, self.empty)}"
        try:
            value = self.parse(text)
        except ValueError:  # also a whole number of more than 4,300 digits
            return self.default, f"Link: {self.name}={literal(text)} is not {KIND_WORDS.get(self.kind, 'valid')}{fallback}"
        try:
            if self.choices is not None and value not in self.choices:
                raise UserError(f"--{self.name} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
            self.check(value)
        except UserError as error:
            return self.default, f"Link: {self.name}={literal(text)} {self.reason(value, error, text)}{fallback}"
        return value, None

    def reason(self, value: Any, error: UserError, text: str = "") -> str:
        if self.choices is not None and value not in self.choices:
            return f"is not one of {', '.join(map(str, self.choices))}"
        if self.range_text and not (isinstance(value, float) and not math.isfinite(value)):
            return f"is outside {self.range_text}"
        return f"is refused ({literal_in(str(error), text)})"

    def text(self, value: Any) -> str | None:
        """The value as the link writes it; None leaves it out (its default, unless `keep`)."""
        # Compared as the link writes them: a slider's 0.9000000000000001 is its default 0.9.
        if value is None or (show_value(value) == show_value(self.default) and not self.keep):
            return None
        return show_value(value)


def from_option_spec(option_spec: OptionSpec, config_class) -> LinkParam:
    """A config field's parameter: its CLI name, type, default, range and check, all from its OptionSpec."""
    kind = bool if isinstance(option_spec.default, bool) else _argument_type(config_class, option_spec.name, option_spec)
    has_range = option_spec.choices is None and any(bound is not None for bound in (option_spec.minimum, option_spec.maximum, option_spec.below))
    return LinkParam(option_spec.cli_flag[2:], option_spec.default, kind, option_spec.check, option_spec.choices, option_spec.describe_range() if has_range else None, empty="the preset")


def config_params(config_class, names: Iterable[str]) -> dict[str, LinkParam]:
    """The link parameters of some of a config's fields, by field name."""
    found = specs(config_class)
    return {name: from_option_spec(found[name], config_class) for name in names}


def sidebar_params(models: Iterable[str] | None = None, devices: Iterable[str] | None = None) -> dict[str, LinkParam]:
    """The common options of `python -m core` the sidebar shows, by CLI name. `models` and `devices`
    narrow the CLI's choices to the ones this machine offers."""
    from core.cli.options import common_options

    actions = {action.dest: action for action in common_options()._actions}
    model_choices = tuple(models) if models is not None else tuple(actions["model"].choices)
    device_choices = tuple(devices) if devices is not None else tuple(actions["device"].choices)
    base = BaselineConfig()
    params = [
        LinkParam("dataset", actions["dataset"].default, str, validate_dataset_name, keep=True),
        LinkParam("model", actions["model"].default, str, lambda value: BaselineConfig(base.dataset, value).validate(), model_choices),
        LinkParam("train-size", actions["train_size"].default, actions["train_size"].type, lambda value: BaselineConfig(DatasetSpec(base.dataset.name, value, None, 0)).validate(), empty="all"),
        LinkParam("epochs", actions["epochs"].default, actions["epochs"].type, lambda value: BaselineConfig(base.dataset, base.model, value).validate(), empty="the preset"),
        LinkParam("seed", actions["seed"].default, actions["seed"].type, lambda value: BaselineConfig(base.dataset, base.model, None, value).validate(), keep=True),
        LinkParam("device", actions["device"].default, str, choices=device_choices),
    ]
    return {param.name: param for param in params}


@dataclass
class LinkReading:
    """What a link says for a set of parameters: accepted values (by key), and one line per refusal."""

    values: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def read_params(params: dict[str, LinkParam], query: dict[str, str]) -> LinkReading:
    """Each parameter of `params` present in `query`, parsed and checked; a refused one gets its default."""
    reading = LinkReading()
    for key, param in params.items():
        if param.name in query:
            value, warning = param.read(query[param.name])
            reading.values[key] = value
            if warning:
                reading.warnings.append(warning)
    return reading


def settle_conflicts(
    config_class, params: dict[str, LinkParam], given: dict[str, Any], context: dict[str, Any], droppable: Iterable[str], query: dict[str, str], defaults: dict[str, Any] | None = None
) -> list[str]:
    """The config's own validate() on the link's values: each of `droppable` the link gives is checked
    with `context` (the settings it depends on, e.g. the granularity) and goes back to its default when
    the config refuses it. Modifies `given`; returns one warning line per value dropped."""
    warnings = []
    for name in droppable:
        if name not in given:
            continue
        try:
            config_class(**{**context, name: given[name]}).validate()
        except UserError as error:
            default = (defaults or {}).get(name, params[name].default)
            given[name] = default
            text = query.get(params[name].name) or ""
            warnings.append(f"Link: {params[name].name}={literal(text)} does not fit the rest ({literal_in(str(error), text)}); using {show_value(default)}")
    return warnings


def query_text(values: dict[str, str | list[str]]) -> str:
    """The query string; a list is one parameter per item (a sweep's grid axes)."""
    from urllib.parse import urlencode

    return urlencode(values, safe=":/,", doseq=True)
