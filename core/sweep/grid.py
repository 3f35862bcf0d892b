"""What a sweep varies: `--grid TECHNIQUE.PARAM=VALUES` axes, checked against the technique
configs' own option descriptions (core.contract.options) before any work, and the trial points they make.

    prune.amount=0.5:0.9:0.1      a range: start, stop (inclusive) and step
    quantize.bits=8,4             a list
    prune.granularity=channel     one value: fixed for every trial

A parameter is a technique config's option under its CLI name (prune.finetune_epochs is
`prune --finetune-epochs`). quantize.mode may be left out: then 8 bits is the real int8 model
(static) and fewer bits are simulated, so `quantize.bits=8,4` means what it says.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

from core.contract.options import OptionSpec, specs
from core.distillation.config import DistillConfig
from core.foundation.errors import UserError
from core.pipeline.config import STEP_ORDER
from core.pruning.config import PruneConfig
from core.quantization.config import ALL_OPTIONS as QUANTIZE_OPTIONS
from core.quantization.config import MODES

MAX_AXIS_VALUES = 1000  # a range finer than this is a typo, not a sweep
MAX_TRIALS = 10_000
MODE_OPTION = OptionSpec("mode", None, "simulate, dynamic, static or qat (default: static at 8 bits, simulate below)", choices=MODES)


def technique_parameters() -> dict[str, dict[str, OptionSpec]]:
    """Every sweepable parameter of each technique, by its CLI name (dest)."""

    def flags(config_class) -> dict[str, OptionSpec]:
        return {option.dest: option for option in specs(config_class).values() if option.cli}

    return {
        "distill": flags(DistillConfig),
        "prune": flags(PruneConfig),
        "quantize": {"mode": MODE_OPTION, **QUANTIZE_OPTIONS},
    }


@dataclass(frozen=True)
class GridAxis:
    technique: str
    parameter: str
    values: tuple

    @property
    def name(self) -> str:
        return f"{self.technique}.{self.parameter}"

    def as_text(self) -> str:
        return f"{self.name}={','.join(format_value(value) for value in self.values)}"


@dataclass(frozen=True)
class SweepGrid:
    axes: tuple[GridAxis, ...]

    @property
    def techniques(self) -> tuple[str, ...]:
        """The steps of every trial, in the lab's order."""
        named = {axis.technique for axis in self.axes}
        return tuple(step for step in STEP_ORDER if step in named)

    @property
    def size(self) -> int:
        return math.prod(len(axis.values) for axis in self.axes)

    def points(self) -> list[dict]:
        """Every trial's parameters ("technique.param" -> value), in a fixed order."""
        names = [axis.name for axis in self.axes]
        return [dict(zip(names, values)) for values in itertools.product(*(axis.values for axis in self.axes))]

    def as_texts(self) -> list[str]:
        return [axis.as_text() for axis in self.axes]


def parse_grid(texts: list[str] | tuple[str, ...]) -> SweepGrid:
    """The axes of `--grid` texts; a UserError naming the bad one otherwise (before any work)."""
    if not texts:
        raise UserError("give at least one --grid TECHNIQUE.PARAM=VALUES, e.g. --grid prune.amount=0.5:0.9:0.1")
    axes = [parse_axis(text) for text in texts]
    seen = set()
    for axis in axes:
        if axis.name in seen:
            raise UserError(f"--grid {axis.name} is given twice; list all its values in one --grid")
        seen.add(axis.name)
    grid = SweepGrid(tuple(axes))
    if grid.size > MAX_TRIALS:
        raise UserError(f"the grid makes {grid.size} trials, more than {MAX_TRIALS}; use fewer values or --search random:N")
    return grid


def parse_axis(text: str) -> GridAxis:
    name, equals, values_text = text.partition("=")
    technique, dot, parameter = name.strip().partition(".")
    if not equals or not dot or not parameter:
        raise UserError(f"--grid '{text}' is not TECHNIQUE.PARAM=VALUES (e.g. prune.amount=0.5:0.9:0.1 or quantize.bits=8,4)")
    parameters = technique_parameters()
    if technique not in parameters:
        raise UserError(f"--grid '{text}': unknown technique '{technique}'; choose from {', '.join(STEP_ORDER)}")
    parameter = parameter.strip().replace("-", "_")
    option = parameters[technique].get(parameter)
    if option is None:
        raise UserError(f"--grid '{text}': {technique} has no parameter '{parameter}'; it has {', '.join(sorted(parameters[technique]))}")
    values = _parse_values(values_text.strip(), option, text)
    for value in values:
        try:
            option.check(value)
        except UserError as error:
            raise UserError(f"--grid '{text}': {error}") from None
    return GridAxis(technique, parameter, values)


def _parse_values(text: str, option: OptionSpec, whole: str) -> tuple:
    if not text:
        raise UserError(f"--grid '{whole}' has no values")
    kind = _value_type(option)
    if ":" in text:
        if kind not in (int, float):
            raise UserError(f"--grid '{whole}': a range start:stop:step needs a numeric parameter; list the values with commas")
        return _parse_range(text, kind, whole)
    values = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            raise UserError(f"--grid '{whole}' has an empty value")
        value = _convert(part, kind, whole)
        if value not in values:
            values.append(value)
    return tuple(values)


def _parse_range(text: str, kind: type, whole: str) -> tuple:
    parts = text.split(":")
    if len(parts) != 3:
        raise UserError(f"--grid '{whole}': a range is start:stop:step, e.g. 0.5:0.9:0.1")
    start, stop, step = (_convert(part.strip(), kind, whole) for part in parts)
    if not step > 0:
        raise UserError(f"--grid '{whole}': the step must be greater than 0")
    if stop < start:
        raise UserError(f"--grid '{whole}' is an empty range (stop {stop:g} is below start {start:g})")
    count = int(math.floor((stop - start) / step + 1e-9)) + 1
    if count > MAX_AXIS_VALUES:
        raise UserError(f"--grid '{whole}' makes {count} values, more than {MAX_AXIS_VALUES}")
    # Rounded so 0.5 + 2 * 0.1 is 0.7, the value a person typed, not 0.7000000000000001.
    return tuple(kind(round(start + index * step, 10)) for index in range(count))


def _value_type(option: OptionSpec) -> type:
    if option.choices:
        return type(option.choices[0])
    if isinstance(option.default, bool):
        return bool
    if option.name in _INTEGER_OPTIONS or isinstance(option.default, int):
        return int
    return float


# Integer options whose default is None (so their type cannot be read off the default).
_INTEGER_OPTIONS = {"teacher_epochs", "teacher_seed"}


def _convert(text: str, kind: type, whole: str):
    try:
        if kind is bool:
            lowered = text.lower()
            if lowered in ("true", "yes", "on", "1"):
                return True
            if lowered in ("false", "no", "off", "0"):
                return False
            raise ValueError
        if kind is int:
            number = float(text)
            if number != int(number):
                raise ValueError
            return int(number)
        if kind is float:
            return float(text)
        return text
    except ValueError:
        expected = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, "a value")
        raise UserError(f"--grid '{whole}': '{text}' is not {expected}") from None


def format_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
