"""Configs that describe their own options (core.contract.options): ranges, choices and exclusive bounds
enforced by validate(); from_options taking only the fields given; CLI flags derived from the
same description; and the CLI refusing exactly what a config (and so a page) refuses."""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import pytest

from core.cli.main import main
from core.contract.options import add_arguments, check_ranges, from_options, given, option, spec
from core.foundation.baseline.trained import BaselineConfig
from core.foundation.errors import UserError
from core.foundation.training.loop import MAX_EPOCHS, TrainRecipe
from core.pruning import PruneConfig
from core.quantization import QATConfig, SimulateConfig, StaticInt8Config


@dataclass(frozen=True)
class ToyConfig:
    rate: float = option(0.5, "a rate", minimum=0.0, below=1.0)
    steps: int = option(3, "how many steps", minimum=1, maximum=10)
    kind: str = option("a", "which kind", choices=("a", "b"))
    limit: int | None = option(None, "an optional limit", minimum=0)
    enabled: bool = option(True, "on unless turned off")
    strict: bool = option(False, "off unless turned on")
    side: bool = option(True, "left or right", flag="--left", negative_flag="--right")
    hidden: int = option(7, "set by code, not a flag", cli=False)

    def validate(self) -> None:
        check_ranges(self)


def refusal(config) -> str:
    with pytest.raises(UserError) as caught:
        config.validate()
    message = str(caught.value)
    assert "\n" not in message
    return message


# ---- ranges, choices, exclusive bounds --------------------------------------------------------------


@pytest.mark.parametrize("fields", [{}, {"rate": 0.0}, {"rate": 0.999}, {"steps": 1}, {"steps": 10}, {"kind": "b"}, {"limit": None}, {"limit": 0}])
def test_values_inside_the_ranges_validate(fields):
    ToyConfig(**fields).validate()


@pytest.mark.parametrize(
    "fields, message",
    [
        ({"rate": 1.0}, "--rate must be in [0, 1), got 1"),  # `below` is exclusive
        ({"rate": -0.1}, "--rate must be in [0, 1), got -0.1"),
        ({"rate": math.nan}, "--rate must be a finite number, got nan"),
        ({"rate": math.inf}, "--rate must be a finite number, got inf"),
        ({"steps": 0}, "--steps must be in 1..10, got 0"),
        ({"steps": 11}, "--steps must be in 1..10, got 11"),  # `maximum` is inclusive, 10 passed
        ({"steps": None}, "--steps needs a value"),
        ({"kind": "c"}, "--kind must be one of a, b, got 'c'"),
        ({"limit": -1}, "--limit must be in 0.., got -1"),
    ],
)
def test_values_outside_the_ranges_are_refused_in_one_line(fields, message):
    assert refusal(ToyConfig(**fields)) == message


@pytest.mark.parametrize(
    "config, message",
    [
        (PruneConfig(amount=1.0), "--amount must be in [0, 1), got 1"),
        (PruneConfig(method="l2"), "--method must be one of l1, random, ln, got 'l2'"),
        (PruneConfig(finetune_epochs=51), "--finetune-epochs must be in 0..50, got 51"),
        (PruneConfig(iterative_steps=0), "--iterative-steps must be in 1..10, got 0"),
        (SimulateConfig(bits=9), "--bits must be in 2..8, got 9"),
        (QATConfig(epochs=21), "--qat-epochs must be in 1..20, got 21"),
        (StaticInt8Config(observer="median"), "--observer must be one of"),
    ],
)
def test_technique_configs_run_the_range_checks_first(config, message):
    assert refusal(config).startswith(message)


def test_spec_describes_a_field():
    finetune = spec(PruneConfig, "finetune_epochs")
    assert (finetune.default, finetune.minimum, finetune.maximum, finetune.cli_flag, finetune.dest) == (0, 0, 50, "--finetune-epochs", "finetune_epochs")
    amount = spec(PruneConfig, "amount")
    assert (amount.default, amount.minimum, amount.below, amount.maximum) == (0.5, 0.0, 1.0, None)
    assert spec(PruneConfig, "method").choices == ("l1", "random", "ln")
    qat_epochs = spec(QATConfig, "epochs")
    assert qat_epochs.cli_flag == "--qat-epochs" and qat_epochs.dest == "qat_epochs"  # never the common --epochs
    assert spec(QATConfig, "bits").default == 4
    assert spec(SimulateConfig, "per_channel").negative_flag == "--per-tensor"


# ---- from_options -----------------------------------------------------------------------------------------


def test_from_options_takes_only_the_fields_given():
    assert from_options(PruneConfig, {}) == PruneConfig()
    config = from_options(PruneConfig, {"amount": 0.3, "finetune_epochs": None, "granularity": None, "not_an_option": 5})
    assert config == PruneConfig(amount=0.3)  # None means "not given": the default stays
    namespace = argparse.Namespace(amount=0.25, method="random", scope=None, remove=None, epochs=9)
    assert from_options(PruneConfig, namespace) == PruneConfig(amount=0.25, method="random")


def test_from_options_reads_each_field_under_its_flag_name_and_leaves_non_flags_to_overrides():
    assert from_options(QATConfig, {"epochs": 7}) == QATConfig()  # the common --epochs is not QAT's
    assert from_options(QATConfig, {"qat_epochs": 7}).epochs == 7
    assert from_options(SimulateConfig, {"per_channel": False, "symmetric": False}) == SimulateConfig(per_channel=False, symmetric=False)  # False is given
    assert from_options(PruneConfig, {"layers": ("conv1",), "seed": 5}) == PruneConfig()  # not flags: only as overrides
    assert from_options(PruneConfig, {"amount": 0.4}, layers=("conv1",), seed=5) == PruneConfig(amount=0.4, layers=("conv1",), seed=5)
    assert given({"qat_epochs": 3, "bits": None, "epochs": 9}, QATConfig) == {"epochs": 3}


def test_from_options_validates():
    with pytest.raises(UserError, match=r"--amount must be in \[0, 1\)"):
        from_options(PruneConfig, {"amount": 1.0})
    with pytest.raises(UserError, match="at least 1 fine-tuning epoch"):
        from_options(PruneConfig, {"iterative_steps": 3})
    with pytest.raises(UserError, match="--steps must be in 1..10"):
        from_options(ToyConfig, {"steps": 11})


# ---- add_arguments -----------------------------------------------------------------------------------------


def toy_parser(**kwargs) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="toy", **kwargs)
    add_arguments(parser, ToyConfig)
    return parser


def test_flags_leave_their_defaults_none_on_the_namespace():
    values = vars(toy_parser().parse_args([]))
    # Each value sits under its flag's own name (--left for `side`); `hidden` has no flag.
    assert values == {"rate": None, "steps": None, "kind": None, "limit": None, "enabled": None, "strict": None, "left": None}
    assert from_options(ToyConfig, toy_parser().parse_args([])) == ToyConfig()
    assert all(value is None for value in vars(argparse.ArgumentParser().parse_args([])).values())
    prune_parser = argparse.ArgumentParser()
    add_arguments(prune_parser, PruneConfig)
    prune_values = vars(prune_parser.parse_args([]))
    assert set(prune_values) == {"method", "granularity", "amount", "scope", "remove", "finetune_epochs", "iterative_steps"}
    assert all(value is None for value in prune_values.values())


def test_flags_parse_to_the_field_types_and_booleans_get_their_switches():
    parser = toy_parser()
    values = parser.parse_args(["--rate", "0.25", "--steps", "4", "--kind", "b", "--limit", "2", "--no-enabled", "--strict", "--right"])
    assert (values.rate, values.steps, values.kind, values.limit, values.enabled, values.strict, values.left) == (0.25, 4, "b", 2, False, True, False)
    assert isinstance(values.rate, float) and isinstance(values.steps, int)
    assert parser.parse_args(["--left"]).left is True and from_options(ToyConfig, parser.parse_args(["--left"])).side is True
    assert from_options(ToyConfig, values) == ToyConfig(rate=0.25, steps=4, kind="b", limit=2, enabled=False, strict=True, side=False)


@pytest.mark.parametrize("arguments", [["--kind", "c"], ["--left", "--right"], ["--steps", "two"], ["--hidden", "3"]])
def test_argparse_refuses_what_the_flags_cannot_take(arguments, capsys):
    with pytest.raises(SystemExit) as caught:
        toy_parser().parse_args(arguments)
    assert caught.value.code == 2


def test_help_shows_each_default():
    text = " ".join(toy_parser().format_help().split())
    for shown in (
        "a rate (default: 0.5)",
        "how many steps (default: 3)",
        "which kind (default: a)",
        "an optional limit (default: the preset)",
        "on unless turned off (default: True)",
        "off unless turned on (default: False)",
        "left or right (default: True)",
    ):
        assert shown in text, shown
    assert "--no-enabled" in text and "--right" in text and "--hidden" not in text
    prune_parser = argparse.ArgumentParser()
    add_arguments(prune_parser, PruneConfig)
    prune_help = " ".join(prune_parser.format_help().split())
    assert "(default: 0.5)" in prune_help and "--finetune-epochs FINETUNE_EPOCHS" in prune_help


def test_suppressed_defaults_leave_missing_flags_off_the_namespace():
    parser = argparse.ArgumentParser()
    add_arguments(parser, ToyConfig, skip=("kind",), suppress_defaults=True)
    assert vars(parser.parse_args(["--steps", "2"])) == {"steps": 2}
    with pytest.raises(SystemExit):
        parser.parse_args(["--kind", "a"])


# ---- the CLI refuses what the config refuses, before any work -----------------------------------------


def run_cli(capsys, arguments: list[str]) -> tuple[int, str, str]:
    try:
        code = main(arguments)
    except SystemExit as exit:  # argparse's own refusals
        code = exit.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def assert_nothing_done(workspace) -> None:
    """No dataset loaded, nothing trained or recorded: the refusal came first."""
    assert not workspace.history_db.exists()
    assert not workspace.checkpoint_dir.exists() or not any(workspace.checkpoint_dir.iterdir())
    assert not workspace.dataset_cache_dir.exists() or not any(workspace.dataset_cache_dir.iterdir())


@pytest.fixture()
def no_training(monkeypatch):
    """Fail the test if a command gets as far as loading data or training a baseline."""
    import core.cli.main
    import core.foundation.baseline.trained

    def refuse(*args, **kwargs):
        raise AssertionError("the command loaded data or trained before refusing")

    monkeypatch.setattr(core.cli.main, "load_dataset", refuse)
    monkeypatch.setattr(core.foundation.baseline.trained, "train_model", refuse)


@pytest.mark.parametrize(
    "config, arguments",
    [
        (PruneConfig(finetune_epochs=51), ["prune", "--finetune-epochs", "51"]),
        (PruneConfig(iterative_steps=11, finetune_epochs=1), ["prune", "--iterative-steps", "11", "--finetune-epochs", "1"]),
        (PruneConfig(amount=1.0), ["prune", "--amount", "1.0"]),
        (PruneConfig(iterative_steps=2), ["prune", "--iterative-steps", "2"]),
        (PruneConfig(remove=True), ["prune", "--remove"]),
        (QATConfig(epochs=21), ["quantize", "--mode", "qat", "--qat-epochs", "21"]),
        (SimulateConfig(bits=9), ["quantize", "--mode", "simulate", "--bits", "9"]),
        (StaticInt8Config(calibration_size=50_001), ["quantize", "--mode", "static", "--calibration-size", "50001"]),
    ],
)
def test_the_cli_refuses_what_the_config_refuses_with_the_same_line(config, arguments, workspace, no_training, capsys):
    message = refusal(config)
    code, out, err = run_cli(capsys, [*arguments, "--dataset", "digits", "--workspace", str(workspace.root)])
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"error: {message}"]
    assert_nothing_done(workspace)


@pytest.mark.parametrize(
    "config_class, name", [(PruneConfig, "finetune_epochs"), (PruneConfig, "iterative_steps"), (QATConfig, "epochs"), (SimulateConfig, "bits"), (StaticInt8Config, "calibration_size")]
)
def test_a_widget_bounded_by_the_spec_accepts_its_ends_and_nothing_past_them(config_class, name):
    """A page takes slider ranges from spec(): both ends must validate, one step past must not."""
    option_spec = spec(config_class, name)
    extra = {"finetune_epochs": 1} if name == "iterative_steps" else {}
    for end in (option_spec.minimum, option_spec.maximum):
        config_class(**{name: int(end), **extra}).validate()
    for past in (option_spec.minimum - 1, option_spec.maximum + 1):
        with pytest.raises(UserError, match=option_spec.cli_flag):
            config_class(**{name: int(past), **extra}).validate()


def test_the_amount_slider_stops_below_one():
    amount = spec(PruneConfig, "amount")
    PruneConfig(amount=amount.minimum).validate()
    PruneConfig(amount=0.99).validate()
    with pytest.raises(UserError):
        PruneConfig(amount=amount.below).validate()


@pytest.mark.parametrize("epochs", ["1000000000", str(MAX_EPOCHS + 1), "-1"])
def test_train_refuses_an_epoch_count_out_of_range_at_once(epochs, workspace, no_training, capsys):
    code, out, err = run_cli(capsys, ["train", "--dataset", "digits", "--epochs", epochs, "--workspace", str(workspace.root)])
    assert code == 2 and out == ""
    assert err.strip().splitlines() == [f"error: --epochs must be between 0 and {MAX_EPOCHS}, got {int(epochs)}"]
    assert_nothing_done(workspace)
    with pytest.raises(UserError):
        BaselineConfig(epochs=int(epochs)).validate()
    with pytest.raises(UserError):
        TrainRecipe(epochs=int(epochs)).validate()
    BaselineConfig(epochs=MAX_EPOCHS).validate()
    TrainRecipe(epochs=MAX_EPOCHS).validate()


def test_quantize_refuses_a_flag_its_mode_does_not_use_in_one_line(workspace, no_training, capsys):
    code, out, err = run_cli(capsys, ["quantize", "--mode", "dynamic", "--observer", "minmax", "--dataset", "digits", "--workspace", str(workspace.root)])
    assert code == 2 and out == ""
    assert err.strip().splitlines() == ["error: --observer does not apply to --mode dynamic (only to static)"]
    assert_nothing_done(workspace)


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--mode", "qat", "--bits", "8", "--activations"], "always quantizes activations"),
        (["--mode", "simulate", "--calibration-size", "64"], "only with --activations"),
    ],
)
def test_quantize_refuses_a_setting_the_mode_would_ignore(arguments, message, workspace, no_training, capsys):
    assert main(["quantize", *arguments, "--dataset", "digits", "--workspace", str(workspace.root)]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and message in error
