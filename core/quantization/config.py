"""One config dataclass per quantization mode (torchao's spirit: one verb, config objects)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from functools import partial
from typing import ClassVar

from core.contract.options import check_ranges, given, option, specs
from core.foundation.errors import UserError

# Defined here, not beside the code that uses them, so the configs (and the share link that names
# their options) need no torch: core.quantization.fake_quant and .pt2e import them from here.
MIN_BITS, MAX_BITS = 2, 8
OBSERVERS = ("histogram", "minmax", "moving_average")

MODES = ("simulate", "dynamic", "static", "qat")
DEFAULT_CALIBRATION_SIZE = 512
MAX_CALIBRATION_SIZE = 50_000
MAX_QAT_EPOCHS = 20

# The options the modes share, described once; each mode's class lists the ones it uses (a fresh field each).
BITS = partial(option, 8, f"weight bit width, {MIN_BITS}..{MAX_BITS} for simulate and qat; dynamic and static are 8 only", minimum=MIN_BITS, maximum=MAX_BITS)
PER_CHANNEL = partial(option, True, "one scale per output channel", flag="--per-channel", negative_flag="--per-tensor")
SYMMETRIC = partial(option, True, "zero maps to code 0", flag="--symmetric", negative_flag="--affine")
ACTIVATIONS = partial(option, False, "also fake-quantize each layer's input (simulate, qat below 8 bits)")
CALIBRATION = partial(option, DEFAULT_CALIBRATION_SIZE, "training images for activation ranges", minimum=1, maximum=MAX_CALIBRATION_SIZE)


# What a weight's integer grid is; torch-free, so a config can say it before torch is imported.
@dataclass(frozen=True)
class QuantSpec:
    bits: int = 8
    per_channel: bool = True  # one scale (and zero point) per output channel, else one per tensor
    symmetric: bool = True

    @property
    def quant_min(self) -> int:
        return -(2 ** (self.bits - 1) - 1) if self.symmetric else 0

    @property
    def quant_max(self) -> int:
        return 2 ** (self.bits - 1) - 1 if self.symmetric else 2**self.bits - 1

    @property
    def granularity(self) -> str:
        return "per-channel" if self.per_channel else "per-tensor"

    @property
    def scheme(self) -> str:
        return "symmetric" if self.symmetric else "affine"

    def describe(self) -> str:
        return f"{self.bits}-bit {self.granularity} {self.scheme}"


class _ModeConfig:
    """What the four modes' configs share: as_dict() names the mode beside the fields, so
    CONFIG_CLASSES finds the class again when the dict is read back."""

    mode: ClassVar[str]

    def as_dict(self) -> dict:
        return {"mode": self.mode, **asdict(self)}


def _check_bits(bits: int, mode: str) -> None:
    if not MIN_BITS <= bits <= MAX_BITS:
        raise UserError(f"--bits must be between {MIN_BITS} and {MAX_BITS} for {mode}, got {bits}")


def _check_int8_only(bits: int, mode: str) -> None:
    """dynamic and static run the int8 kernels: any other width is a job for simulate or qat."""
    if bits != 8:
        raise UserError(f"{mode} quantization is int8 only, got --bits {bits}; use --mode simulate or qat for {bits} bits")


def _check_calibration(size: int) -> None:
    if size < 1:
        raise UserError(f"calibration size must be at least 1 image, got {size}")


@dataclass(frozen=True)
class SimulateConfig(_ModeConfig):
    """Fake-quantize weights (and optionally each layer's input) to 2..8 bits; the model stays fp32."""

    mode: ClassVar[str] = "simulate"
    bits: int = BITS()
    per_channel: bool = PER_CHANNEL()
    symmetric: bool = SYMMETRIC()
    activations: bool = ACTIVATIONS()
    calibration_size: int = CALIBRATION()  # images observed for activation ranges

    @property
    def weight_spec(self) -> QuantSpec:
        return QuantSpec(self.bits, self.per_channel, self.symmetric)

    def validate(self) -> None:
        check_ranges(self)
        _check_bits(self.bits, "simulate")
        _check_calibration(self.calibration_size)
        if self.calibration_size != DEFAULT_CALIBRATION_SIZE and not self.activations:
            raise UserError("--calibration-size sets the activation ranges, which simulate uses only with --activations")


@dataclass(frozen=True)
class DynamicInt8Config(_ModeConfig):
    """torchao dynamic int8: Linear weights int8, activations quantized at run time; convs stay fp32."""

    mode: ClassVar[str] = "dynamic"
    bits: int = BITS()

    def validate(self) -> None:
        check_ranges(self)
        _check_int8_only(self.bits, "dynamic")


@dataclass(frozen=True)
class StaticInt8Config(_ModeConfig):
    """PT2E static int8 with X86InductorQuantizer: convs and linears, activations calibrated."""

    mode: ClassVar[str] = "static"
    bits: int = BITS()
    calibration_size: int = CALIBRATION()  # training images run through the observers
    observer: str = option("histogram", "static only: activation observer (histogram is the backend's default)", choices=OBSERVERS)

    def validate(self) -> None:
        check_ranges(self)
        _check_int8_only(self.bits, "static")
        _check_calibration(self.calibration_size)
        if self.observer not in OBSERVERS:
            raise UserError(f"unknown observer '{self.observer}'; choose {', '.join(OBSERVERS)}")


@dataclass(frozen=True)
class QATConfig(_ModeConfig):
    """Fine-tune with fake quantization. 8 bits: PT2E QAT, converted to the real int8 model.
    Below 8 bits: weight (and optional input) fake quantization; the result stays simulated."""

    mode: ClassVar[str] = "qat"
    bits: int = option(4, f"weight bit width, {MIN_BITS}..{MAX_BITS}; 8 converts to the real int8 model", minimum=MIN_BITS, maximum=MAX_BITS)
    epochs: int = option(2, "qat only: fine-tuning epochs", minimum=1, maximum=MAX_QAT_EPOCHS, flag="--qat-epochs")
    per_channel: bool = PER_CHANNEL()
    symmetric: bool = SYMMETRIC()
    activations: bool = ACTIVATIONS()  # below 8 bits; at 8 bits the backend always quantizes activations
    calibration_size: int = CALIBRATION()  # images for the initial activation ranges
    learning_rate: float | None = option(None, "qat only: peak learning rate (default: a tenth of the source recipe's)", cli=False)

    @property
    def converts_to_int8(self) -> bool:
        return self.bits == 8

    @property
    def weight_spec(self) -> QuantSpec:
        return QuantSpec(self.bits, self.per_channel, self.symmetric)

    def validate(self) -> None:
        check_ranges(self)
        _check_bits(self.bits, "qat")
        _check_calibration(self.calibration_size)
        if self.epochs < 1:
            raise UserError(f"--qat-epochs must be at least 1, got {self.epochs}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise UserError(f"QAT learning rate must be positive, got {self.learning_rate}")
        if self.converts_to_int8 and not (self.per_channel and self.symmetric):
            raise UserError("QAT at 8 bits converts to the x86 int8 backend, whose weights are per-channel symmetric; per-tensor or affine weights are available below 8 bits")
        if self.converts_to_int8 and self.activations:
            raise UserError("QAT at 8 bits always quantizes activations to uint8 (the x86 backend's scheme); --activations applies below 8 bits")


QuantizationConfig = SimulateConfig | DynamicInt8Config | StaticInt8Config | QATConfig


CONFIG_CLASSES: dict[str, type] = {cls.mode: cls for cls in (SimulateConfig, DynamicInt8Config, StaticInt8Config, QATConfig)}


def quantization_config(mode: str, options: dict) -> QuantizationConfig:
    """The mode's config from the options given (flags, widgets, a grid point). An option the mode
    would silently ignore is refused, so a run never reports a setting it did not use."""
    if mode not in CONFIG_CLASSES:
        raise UserError(f"unknown quantization mode '{mode}'; choose one of {', '.join(MODES)}")
    config_class = CONFIG_CLASSES[mode]
    allowed = {option_spec.dest for option_spec in specs(config_class).values() if option_spec.cli}
    for dest, value in options.items():
        if value is None or dest in allowed or dest not in ALL_OPTIONS:
            continue
        users = [other for other, cls in CONFIG_CLASSES.items() if dest in {o.dest for o in specs(cls).values() if o.cli}]
        given_flag = ALL_OPTIONS[dest].negative_flag if value is False and ALL_OPTIONS[dest].negative_flag else ALL_OPTIONS[dest].cli_flag  # --per-tensor, not --per-channel
        raise UserError(f"{given_flag} does not apply to --mode {mode} (only to {', '.join(users)})")
    config = config_class(**given(options, config_class))
    config.validate()
    return config


# Every quantization option by dest (the CLI's flags are made from these).
ALL_OPTIONS = {option_spec.dest: option_spec for cls in CONFIG_CLASSES.values() for option_spec in specs(cls).values() if option_spec.cli}
