"""One config dataclass per quantization mode (torchao's spirit: one verb, config objects)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar, Union

from core.errors import UserError
from core.quantization.fake_quant import MAX_BITS, MIN_BITS, QuantSpec
from core.quantization.pt2e import OBSERVERS

MODES = ("simulate", "dynamic", "static", "qat")
DEFAULT_CALIBRATION_SIZE = 512


def _check_bits(bits: int, mode: str) -> None:
    if not MIN_BITS <= bits <= MAX_BITS:
        raise UserError(f"--bits must be between {MIN_BITS} and {MAX_BITS} for {mode}, got {bits}")


def _check_calibration(size: int) -> None:
    if size < 1:
        raise UserError(f"calibration size must be at least 1 image, got {size}")


@dataclass(frozen=True)
class SimulateConfig:
    """Fake-quantize weights (and optionally each layer's input) to 2..8 bits; the model stays fp32."""

    mode: ClassVar[str] = "simulate"
    bits: int = 8
    per_channel: bool = True
    symmetric: bool = True
    activations: bool = False
    calibration_size: int = DEFAULT_CALIBRATION_SIZE  # images observed for activation ranges

    @property
    def weight_spec(self) -> QuantSpec:
        return QuantSpec(self.bits, self.per_channel, self.symmetric)

    def validate(self) -> None:
        _check_bits(self.bits, "simulate")
        _check_calibration(self.calibration_size)

    def as_dict(self) -> dict:
        return {"mode": self.mode, **asdict(self)}


@dataclass(frozen=True)
class DynamicInt8Config:
    """torchao dynamic int8: Linear weights int8, activations quantized at run time; convs stay fp32."""

    mode: ClassVar[str] = "dynamic"
    bits: int = 8

    def validate(self) -> None:
        if self.bits != 8:
            raise UserError(f"dynamic quantization is int8 only, got --bits {self.bits}; use --mode simulate or qat for {self.bits} bits")

    def as_dict(self) -> dict:
        return {"mode": self.mode, **asdict(self)}


@dataclass(frozen=True)
class StaticInt8Config:
    """PT2E static int8 with X86InductorQuantizer: convs and linears, activations calibrated."""

    mode: ClassVar[str] = "static"
    bits: int = 8
    calibration_size: int = DEFAULT_CALIBRATION_SIZE  # training images run through the observers
    observer: str = "histogram"  # activation observer: histogram (the backend's default), minmax, moving_average

    def validate(self) -> None:
        if self.bits != 8:
            raise UserError(f"static quantization is int8 only, got --bits {self.bits}; use --mode simulate or qat for {self.bits} bits")
        _check_calibration(self.calibration_size)
        if self.observer not in OBSERVERS:
            raise UserError(f"unknown observer '{self.observer}'; choose {', '.join(OBSERVERS)}")

    def as_dict(self) -> dict:
        return {"mode": self.mode, **asdict(self)}


@dataclass(frozen=True)
class QATConfig:
    """Fine-tune with fake quantization. 8 bits: PT2E QAT, converted to the real int8 model.
    Below 8 bits: weight (and optional input) fake quantization; the result stays simulated."""

    mode: ClassVar[str] = "qat"
    bits: int = 8
    epochs: int = 2
    per_channel: bool = True
    symmetric: bool = True
    activations: bool = False  # below 8 bits; at 8 bits the backend always quantizes activations
    calibration_size: int = DEFAULT_CALIBRATION_SIZE  # images for the initial activation ranges
    learning_rate: float | None = None  # None: a tenth of the baseline recipe's peak rate

    @property
    def converts_to_int8(self) -> bool:
        return self.bits == 8

    @property
    def weight_spec(self) -> QuantSpec:
        return QuantSpec(self.bits, self.per_channel, self.symmetric)

    def validate(self) -> None:
        _check_bits(self.bits, "qat")
        _check_calibration(self.calibration_size)
        if self.epochs < 1:
            raise UserError(f"--qat-epochs must be at least 1, got {self.epochs}")
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise UserError(f"QAT learning rate must be positive, got {self.learning_rate}")
        if self.converts_to_int8 and not (self.per_channel and self.symmetric):
            raise UserError("QAT at 8 bits converts to the x86 int8 backend, whose weights are per-channel symmetric; per-tensor or affine weights are available below 8 bits")

    def as_dict(self) -> dict:
        return {"mode": self.mode, **asdict(self)}


QuantizationConfig = Union[SimulateConfig, DynamicInt8Config, StaticInt8Config, QATConfig]
