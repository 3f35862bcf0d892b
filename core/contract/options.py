"""Config fields that describe themselves: default, range, choices and help in one place.

Every technique config is a frozen dataclass whose fields are made with `option(...)`. From that
one description come the CLI's flags (`add_arguments`), the pages' widget ranges (`spec`), the
pipeline's and a sweep's configs (`from_options`) and the range checks every config runs first in
its `validate()` (`check_ranges`). So the page, the CLI and the pipeline accept and refuse the same
values.

    amount: float = option(0.5, "fraction to prune", minimum=0.0, below=1.0)
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from core.foundation.errors import UserError

T = TypeVar("T")  # a technique's config class

METADATA_KEY = "mel_option"


@dataclass(frozen=True)
class OptionSpec:
    name: str
    default: Any
    help: str
    choices: tuple | None = None
    minimum: float | None = None  # inclusive
    maximum: float | None = None  # inclusive
    below: float | None = None  # exclusive upper bound (an amount of 1.0 would prune everything)
    flag: str | None = None  # the CLI flag; None: --NAME with dashes
    cli: bool = True  # False: not a flag (set from other flags, e.g. a seed list)
    negative_flag: str | None = None  # a boolean's "off" flag, e.g. --per-tensor for per_channel
    optional: bool = False  # None is allowed and means "the preset"

    @property
    def cli_flag(self) -> str:
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def dest(self) -> str:
        """The key the value has on a flag namespace and in an options dict (the flag's own name,
        so --qat-epochs never collides with the common --epochs)."""
        return self.cli_flag[2:].replace("-", "_")

    def describe_range(self) -> str:
        if self.choices:
            return ", ".join(map(str, self.choices))
        low = "" if self.minimum is None else f"{self.minimum:g}"
        if self.below is not None:
            return f"[{low}, {self.below:g})"
        high = "" if self.maximum is None else f"{self.maximum:g}"
        return f"{low}..{high}"

    def check(self, value: Any) -> None:
        """Raise a one-line UserError when `value` is outside this option's range or choices."""
        if value is None:
            if self.optional:
                return
            raise UserError(f"{self.cli_flag} needs a value")
        if self.choices is not None:
            if value not in self.choices:
                raise UserError(f"{self.cli_flag} must be one of {', '.join(map(str, self.choices))}, got {value!r}")
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return
        if isinstance(value, float) and not math.isfinite(value):
            raise UserError(f"{self.cli_flag} must be a finite number, got {value}")
        too_low = self.minimum is not None and value < self.minimum
        too_high = (self.maximum is not None and value > self.maximum) or (self.below is not None and value >= self.below)
        if too_low or too_high:
            shown = f"{value:g}" if isinstance(value, float) else str(value)  # :g of a 400-digit int overflows
            raise UserError(f"{self.cli_flag} must be in {self.describe_range()}, got {shown}")


def option(
    default: Any,
    help: str,
    *,
    choices: Iterable | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    below: float | None = None,
    flag: str | None = None,
    cli: bool = True,
    optional: bool = False,
    negative_flag: str | None = None,
) -> Any:
    """A dataclass field carrying its own description (see OptionSpec)."""
    metadata = {
        METADATA_KEY: dict(
            default=default,
            help=help,
            choices=tuple(choices) if choices is not None else None,
            minimum=minimum,
            maximum=maximum,
            below=below,
            flag=flag,
            cli=cli,
            optional=optional or default is None,
            negative_flag=negative_flag,
        )
    }
    if isinstance(default, (list, dict, set)):
        raise TypeError("use a tuple for a sequence default: configs are frozen")
    return dataclasses.field(default=default, metadata=metadata)


def specs(config_class: type) -> dict[str, OptionSpec]:
    """Every described field of a config class, by field name, in declaration order."""
    found = {}
    for field in dataclasses.fields(config_class):
        meta = field.metadata.get(METADATA_KEY)
        if meta is not None:
            found[field.name] = OptionSpec(field.name, **meta)
    return found


def spec(config_class: type, name: str) -> OptionSpec:
    return specs(config_class)[name]


def check_ranges(config: Any) -> None:
    """The range and choice checks of every described field: run first by each config's validate()."""
    for name, option_spec in specs(type(config)).items():
        option_spec.check(getattr(config, name))


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, config_class: type, skip: Iterable[str] = (), suppress_defaults: bool = False) -> None:
    """One flag per described field (see add_argument_for)."""
    skipped = set(skip)
    for name, option_spec in specs(config_class).items():
        if option_spec.cli and name not in skipped:
            add_argument_for(parser, config_class, option_spec, suppress_defaults=suppress_defaults)


def add_argument_for(parser: argparse.ArgumentParser | argparse._ArgumentGroup, config_class: type, option_spec: OptionSpec, shown_default: str | None = None, suppress_defaults: bool = False) -> None:
    """The option's flag. Booleans that default to False become store_true switches; booleans
    that default to True get a --no-NAME twin (or their named negative flag). Defaults stay None
    on the namespace, so `given` can tell a flag given from one left out; the help shows the
    real default."""
    if shown_default is None:
        shown_default = "the preset" if option_spec.default is None else str(option_spec.default)
    shown = f"{option_spec.help} (default: {shown_default})"
    default = argparse.SUPPRESS if suppress_defaults else None
    dest = option_spec.dest
    if isinstance(option_spec.default, bool):
        if option_spec.negative_flag:
            group = parser.add_mutually_exclusive_group() if hasattr(parser, "add_mutually_exclusive_group") else parser
            group.add_argument(option_spec.cli_flag, dest=dest, action="store_const", const=True, default=default, help=shown)
            group.add_argument(option_spec.negative_flag, dest=dest, action="store_const", const=False, default=default, help=f"the opposite of {option_spec.cli_flag}")
        elif option_spec.default:
            parser.add_argument("--no-" + option_spec.cli_flag[2:], dest=dest, action="store_const", const=False, default=default, help=shown)
        else:
            parser.add_argument(option_spec.cli_flag, dest=dest, action="store_const", const=True, default=default, help=shown)
        return
    kind = _argument_type(config_class, option_spec.name, option_spec)
    parser.add_argument(option_spec.cli_flag, dest=dest, type=kind, choices=option_spec.choices, default=default, help=shown)


def _argument_type(config_class: type, name: str, option_spec: OptionSpec):
    hints = {field.name: field.type for field in dataclasses.fields(config_class)}
    text = str(hints.get(name, ""))
    if option_spec.choices is not None:
        return type(option_spec.choices[0])
    if "float" in text:
        return float
    if "int" in text:
        return int
    return str


def given(options: dict | argparse.Namespace, config_class: type) -> dict:
    """The flag-settable fields present (and not None) in a flag namespace or an options dict (keyed
    by each option's dest), by field name. Fields that are not flags come as overrides."""
    values = vars(options) if isinstance(options, argparse.Namespace) else dict(options)
    return {name: values[option_spec.dest] for name, option_spec in specs(config_class).items() if option_spec.cli and values.get(option_spec.dest) is not None}


def from_options(config_class: type[T], options: dict | argparse.Namespace, **overrides: Any) -> T:
    """A config from the fields given (flags, widgets, a sweep's grid point); the rest keep their
    defaults. Validated before it is returned."""
    config = config_class(**{**given(options, config_class), **overrides})
    config.validate()
    return config
