"""The share link: CLI-named query parameters in, widget values out, and back; refusals are one line each."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.contract.options import spec
from core.distillation.config import DEFAULT_PRESET, DISTILL_PRESETS, DistillConfig
from core.distillation.teachers import available_students
from core.pruning import PruneConfig
from tests.conftest import REPO_ROOT
from ui.link_params import config_params, read_params, settle_conflicts, sidebar_params

PRUNE_FIELDS = ("granularity", "scope", "method", "amount", "remove")


# The parsing and checks (no Streamlit) ------------------------------------------------------------


def test_an_amount_outside_the_options_range_falls_back_with_one_line_naming_it():
    params = config_params(PruneConfig, PRUNE_FIELDS)
    reading = read_params(params, {"amount": "1.5", "scope": "global"})
    amount_spec = spec(PruneConfig, "amount")
    assert reading.values == {"amount": amount_spec.default, "scope": "global"}
    assert reading.warnings == [f"Link: amount=1.5 is outside {amount_spec.describe_range()}; using 0.5"]
    assert reading.warnings == ["Link: amount=1.5 is outside [0, 1); using 0.5"]


def test_choices_types_and_the_clis_baseline_checks_refuse_alike():
    reading = read_params(config_params(PruneConfig, PRUNE_FIELDS), {"granularity": "foo", "remove": "maybe", "amount": "nan"})
    assert reading.values == {"granularity": "unstructured", "remove": False, "amount": 0.5}
    assert reading.warnings[0] == "Link: granularity=foo is not one of unstructured, channel; using unstructured"
    assert reading.warnings[1].startswith("Link: amount=nan is refused (--amount must be a finite number")
    assert reading.warnings[2] == "Link: remove=maybe is not true or false; using false"
    sidebar = read_params(sidebar_params(), {"seed": "-1", "epochs": "2", "dataset": "nope", "device": "tpu", "train-size": "0"})
    assert sidebar.values == {"dataset": "digits", "epochs": 2, "seed": 0, "device": "auto", "train-size": None}
    assert any(line.startswith("Link: seed=-1 is refused (--seed must be 0 or more") and line.endswith("; using 0") for line in sidebar.warnings)
    assert any(line.startswith("Link: dataset=nope is refused (unknown dataset") for line in sidebar.warnings)
    assert "Link: device=tpu is not one of auto, cpu, cuda, mps; using auto" in sidebar.warnings
    assert any(line.startswith("Link: train-size=0 is refused (--train-size must be at least 1") for line in sidebar.warnings)
    assert len(sidebar.warnings) == 4


def test_the_machines_devices_narrow_the_clis_choices():
    reading = read_params(sidebar_params(devices=["auto", "cpu"]), {"device": "cuda"})
    assert reading.warnings == ["Link: device=cuda is not one of auto, cpu; using auto"]


def test_a_combination_the_config_refuses_drops_the_dependent_value():
    params = config_params(PruneConfig, PRUNE_FIELDS)
    query = {"method": "ln", "remove": "true"}
    given = read_params(params, query).values
    warnings = settle_conflicts(PruneConfig, params, given, {"granularity": "unstructured"}, ("remove", "method"), query)
    assert given == {"method": "l1", "remove": False}
    assert len(warnings) == 2 and warnings[0].startswith("Link: remove=true does not fit the rest (removal needs --granularity channel")
    assert warnings[1].startswith("Link: method=ln does not fit the rest (method 'ln' ranks whole channels") and warnings[1].endswith("; using l1")


def test_the_qr_code_is_a_png_drawn_locally():
    import segno

    from ui.share import qr_png

    link = "http://localhost:8501/pruning?dataset=digits&seed=0&granularity=channel&amount=0.7"
    png = qr_png(link)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert segno.make(link, error="m").version >= 1


# The app (AppTest) ----------------------------------------------------------------------------------


def open_link(page_path: str | None, **query) -> AppTest:
    at = AppTest.from_file(str(REPO_ROOT / "app.py"), default_timeout=180)
    at.query_params.update(query)
    if page_path is not None:
        at.switch_page(page_path)
    at.run()
    assert not at.exception
    return at


def shown_link(at: AppTest) -> str:
    return at.sidebar.code[-1].value


def test_a_pruning_link_sets_the_widgets_and_the_url_follows_the_widgets(digits_baseline):
    at = open_link("pages/pruning.py", dataset="digits", seed="0", granularity="channel", amount="0.7")
    assert not at.warning
    assert at.slider(key="prune_amount").value == pytest.approx(0.7)
    assert at.radio(key="prune_granularity").value == "channel"
    assert at.sidebar.number_input(key="sidebar_seed").value == 0
    assert at.query_params == {"dataset": "digits", "seed": "0", "granularity": "channel", "amount": "0.7"}
    assert shown_link(at) == "/pruning?dataset=digits&seed=0&granularity=channel&amount=0.7"
    assert "Share this setup" in [expander.label for expander in at.sidebar.expander] and at.sidebar.get("image"), "the Share expander draws the link's QR code"
    at.slider(key="prune_amount").set_value(0.9).run()
    at.radio(key="prune_scope").set_value("global").run()
    assert not at.exception
    assert at.slider(key="prune_amount").value == pytest.approx(0.9), "the URL's older 0.7 must not win over the slider"
    assert at.query_params == {"dataset": "digits", "seed": "0", "granularity": "channel", "amount": "0.9", "scope": "global"}
    assert shown_link(at) == "/pruning?dataset=digits&seed=0&granularity=channel&scope=global&amount=0.9"
    at.selectbox(key="prune_method_channel").set_value("random").run()
    at.checkbox(key="prune_remove").check().run()
    assert at.query_params["method"] == "random" and at.query_params["remove"] == "true"


def test_a_sidebar_link_sets_the_seed_and_the_epochs(session_workspace):
    at = open_link(None, dataset="digits", seed="3", epochs="2")
    assert not at.warning
    assert at.sidebar.number_input(key="sidebar_seed").value == 3
    assert at.sidebar.number_input(key="sidebar_epochs").value == 2
    at.sidebar.number_input(key="sidebar_seed").set_value(5).run()
    assert at.query_params == {"dataset": "digits", "seed": "5", "epochs": "2"}
    assert at.sidebar.number_input(key="sidebar_seed").value == 5


def test_bad_values_are_one_line_each_and_the_rest_of_the_link_applies(digits_baseline):
    at = open_link("pages/pruning.py", dataset="digits", seed="-1", granularity="foo", amount="1.5", scope="global", colour="red")
    lines = [warning.value for warning in at.warning]
    assert sorted(lines) == sorted(
        [
            "Link: unknown parameter colour ignored",
            "Link: seed=-1 is refused (--seed must be 0 or more, got -1); using 0",
            "Link: granularity=foo is not one of unstructured, channel; using unstructured",
            "Link: amount=1.5 is outside [0, 1); using 0.5",
        ]
    )
    assert all("\n" not in line for line in lines)
    assert at.sidebar.number_input(key="sidebar_seed").value == 0
    assert at.radio(key="prune_granularity").value == "unstructured"
    assert at.slider(key="prune_amount").value == pytest.approx(0.5)
    assert at.radio(key="prune_scope").value == "global"
    assert at.query_params == {"dataset": "digits", "seed": "0", "scope": "global"}
    at.run()
    assert not at.warning, "a refusal is said once, when the link is opened"


def test_a_quantization_link_sets_the_mode_and_its_settings(digits_baseline):
    at = open_link("pages/quantization.py", dataset="digits", seed="0", mode="qat", bits="3", **{"per-channel": "false", "qat-epochs": "1"})
    assert not at.warning
    assert at.radio(key="quant_mode").value == "qat"
    assert at.slider(key="quant_qat_bits").value == 3
    assert at.radio(key="quant_qat_granularity").value == "per-tensor"
    assert at.number_input(key="quant_qat_epochs").value == 1
    assert at.query_params == {"dataset": "digits", "seed": "0", "mode": "qat", "bits": "3", "qat-epochs": "1", "per-channel": "false"}
    assert shown_link(at) == "/quantization?dataset=digits&seed=0&mode=qat&bits=3&per-channel=false&qat-epochs=1"
    at.radio(key="quant_qat_scheme").set_value("affine").run()
    assert at.query_params["symmetric"] == "false" and at.slider(key="quant_qat_bits").value == 3


def test_a_quantization_link_refuses_with_the_modes_own_range(digits_baseline):
    at = open_link("pages/quantization.py", dataset="digits", seed="0", bits="9", observer="minmax")
    lines = [warning.value for warning in at.warning]
    assert lines == ["Link: bits=9 is outside 2..8; using 8", "Link: observer=minmax is not a setting of mode simulate; ignored"]
    assert at.radio(key="quant_mode").value == "simulate" and at.slider(key="quant_bits").value == 8
    assert at.query_params == {"dataset": "digits", "seed": "0"}


def distill_widgets(at: AppTest) -> dict:
    """The Distillation page's linked settings as its widgets show them."""
    return {
        "preset": at.selectbox(key="distill_preset").value,
        "temperature": at.number_input(key="distill_temperature").value,
        "alpha": at.slider(key="distill_alpha").value,
        "labelled_fraction": at.select_slider(key="distill_labelled").value,
    }


def preset_widgets(name: str) -> dict:
    """What the Distillation page's widgets show for a preset (its None share: every image, the option's maximum)."""
    preset = DISTILL_PRESETS[name]
    every_image = spec(DistillConfig, "labelled_fraction").maximum
    return {"preset": name, "temperature": preset.temperature, "alpha": preset.alpha, "labelled_fraction": preset.labelled_fraction or every_image}


def other_preset() -> str:
    return next(name for name in DISTILL_PRESETS if name != DEFAULT_PRESET)


def test_a_distillation_link_sets_the_widgets_over_its_preset_and_the_url_follows_them(digits_baseline):
    preset = other_preset()  # not the page's default, so the link's preset is seen to apply
    at = open_link("pages/distillation.py", dataset="digits", seed="0", preset=preset, temperature="8", alpha="0.3", augment="none", **{"labelled-fraction": "0.2", "teacher-epochs": "3"})
    assert not at.warning
    assert distill_widgets(at) == {"preset": preset, "temperature": 8.0, "alpha": pytest.approx(0.3), "labelled_fraction": 0.2}, "the link's own values win over its preset's"
    assert at.selectbox(key="distill_augment").value == "none" and at.number_input(key="distill_teacher_epochs").value == 3
    assert at.query_params == {"dataset": "digits", "seed": "0", "preset": preset, "temperature": "8", "alpha": "0.3", "labelled-fraction": "0.2", "augment": "none", "teacher-epochs": "3"}
    assert shown_link(at) == f"/distillation?dataset=digits&seed=0&preset={preset}&temperature=8&alpha=0.3&labelled-fraction=0.2&augment=none&teacher-epochs=3"
    at.number_input(key="distill_temperature").set_value(3.0).run()
    at.number_input(key="distill_teacher_epochs").set_value(None).run()
    assert not at.exception
    assert at.number_input(key="distill_temperature").value == 3.0, "the URL's older 8 must not win over the widget"
    assert at.query_params["temperature"] == "3" and "teacher-epochs" not in at.query_params
    # Another preset fills T, alpha and the labelled share: at the preset's values they leave the URL.
    at.selectbox(key="distill_preset").set_value(DEFAULT_PRESET).run()
    assert distill_widgets(at) == preset_widgets(DEFAULT_PRESET)
    assert at.query_params == {"dataset": "digits", "seed": "0", "preset": DEFAULT_PRESET, "augment": "none"}


def test_a_distillation_link_with_only_a_preset_gives_the_presets_values(digits_baseline):
    preset = other_preset()
    at = open_link("pages/distillation.py", dataset="digits", seed="0", preset=preset)
    assert not at.warning
    assert distill_widgets(at) == preset_widgets(preset)
    assert at.query_params == {"dataset": "digits", "seed": "0", "preset": preset}
    assert shown_link(at) == f"/distillation?dataset=digits&seed=0&preset={preset}"


def test_a_distillation_link_refuses_a_value_with_one_line_and_uses_the_default(digits_baseline):
    at = open_link("pages/distillation.py", dataset="digits", seed="0", temperature="-3", alpha="0.3", student="nope", **{"labelled-fraction": "0.03", "learning-rate": "0"})
    default = preset_widgets(DEFAULT_PRESET)
    students = ", ".join(available_students())  # the page's choices: the models this machine has
    lines = [warning.value for warning in at.warning]
    assert sorted(lines) == sorted(
        [
            f"Link: temperature=-3 is outside {spec(DistillConfig, 'temperature').describe_range()}; using {default['temperature']:g}",
            f"Link: student=nope is not one of {students}; using {digits_baseline.config.model}",
            f"Link: labelled-fraction=0.03 is not one of 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0; using {default['labelled_fraction']:g}",
            f"Link: learning-rate=0 is outside {spec(DistillConfig, 'learning_rate').describe_range()}; using the preset",
        ]
    )
    assert "Link: temperature=-3 is outside 0.05..100; using 4" in lines
    assert distill_widgets(at) == {**default, "alpha": pytest.approx(0.3)}, "the rest of the link applies"
    assert at.selectbox(key="distill_student").value == digits_baseline.config.model
    assert at.number_input(key="distill_learning_rate").value > 0
    assert at.query_params == {"dataset": "digits", "seed": "0", "preset": DEFAULT_PRESET, "alpha": "0.3"}
    at.run()
    assert not at.warning, "a refusal is said once, when the link is opened"


def test_a_page_switch_leaves_the_other_pages_settings_behind(digits_baseline):
    at = open_link("pages/distillation.py", dataset="digits", seed="0", preset=other_preset(), temperature="8")
    at.switch_page("pages/pruning.py").run()
    assert not at.exception and not at.warning
    assert at.query_params == {"dataset": "digits", "seed": "0"}
    at = open_link("pages/pruning.py", dataset="digits", seed="0", amount="0.7")
    at.switch_page("pages/distillation.py").run()
    assert not at.exception and not at.warning
    assert at.query_params == {"dataset": "digits", "seed": "0", "preset": DEFAULT_PRESET}


def test_a_link_with_another_pages_setting_names_it_once_with_its_page(digits_baseline):
    at = open_link("pages/quantization.py", dataset="digits", seed="0", amount="0.7")
    assert [warning.value for warning in at.warning] == ["Link: amount is a setting of the Pruning page, not this one; ignored here"]
    assert "amount" not in at.query_params
    at.run()
    assert not at.warning  # named once, not on every rerun


def test_the_link_parsing_needs_no_streamlit():
    import subprocess
    import sys

    code = "import sys, ui.link_params as s; s.sidebar_params(); print('streamlit' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.strip() == "False"


# The Explore page: `python -m core sweep`'s names, one `grid` parameter per axis ------------------


def explore_cli(at: AppTest) -> str:
    return next(code.value for code in at.code if code.value.startswith("python -m core sweep"))


EXPLORE_GRID = ["prune.amount=0.2:0.6:0.2", "prune.granularity=unstructured,channel"]


def test_an_explore_link_fills_the_sweep_form_and_the_url_follows_it(digits_baseline):
    at = open_link("pages/explore.py", dataset="digits", seed="0", grid=EXPLORE_GRID, search="random:3", objective="latency", **{"budget-points": "2"})
    assert not at.warning
    assert at.checkbox(key="explore_vary_prune").value and not at.checkbox(key="explore_vary_quantize").value
    assert [at.number_input(key=key).value for key in ("explore_amount_min", "explore_amount_max", "explore_amount_step")] == pytest.approx([0.2, 0.6, 0.2])
    assert at.multiselect(key="explore_granularity").value == ["unstructured", "channel"]
    assert at.radio(key="explore_search").value == "random" and at.number_input(key="explore_random_count").value == 3
    assert at.selectbox(key="explore_objective").value == "latency" and at.number_input(key="explore_budget").value == 2.0
    command = explore_cli(at)
    assert "--grid prune.amount=0.2:0.6:0.2 --grid prune.granularity=unstructured,channel --search random:3 --objective latency --budget-points 2" in command
    assert at.query_params == {"dataset": "digits", "seed": "0", "grid": EXPLORE_GRID, "search": "random:3", "objective": "latency", "budget-points": "2"}
    assert shown_link(at) == ("/explore?dataset=digits&seed=0&grid=prune.amount%3D0.2:0.6:0.2&grid=prune.granularity%3Dunstructured,channel&search=random:3&objective=latency&budget-points=2")
    # A widget changed rewrites the URL; the URL's older grid must not win over the form.
    at.multiselect(key="explore_scope").set_value(["layer", "global"]).run()
    at.checkbox(key="explore_vary_quantize").check().run()
    at.radio(key="explore_search").set_value("budget").run()
    assert not at.exception and not at.warning
    assert at.multiselect(key="explore_scope").value == ["layer", "global"]
    grid = [*EXPLORE_GRID, "prune.scope=layer,global", "quantize.bits=8,4"]
    assert at.query_params["grid"] == grid and at.query_params["search"] == "budget"
    assert all(f"--grid {text}" in explore_cli(at) for text in grid)
    # The written link opened afresh gives the same form.
    again = open_link("pages/explore.py", **at.query_params)
    assert not again.warning and explore_cli(again) == explore_cli(at)


def test_an_explore_link_refuses_a_value_with_one_line_and_the_rest_applies(digits_baseline):
    grid = ["prune.amount=0.1:0.5:0.2", "prune.colour=red", "prune.iterative_steps=1,2", "prune.amount=0.1,0.2,0.5", "distill.alpha=0.2,0.8"]
    at = open_link("pages/explore.py", dataset="digits", seed="0", grid=grid, objective="colour", search="random:2", **{"budget-points": "-1", "cpus-per-trial": "2"})
    lines = [warning.value for warning in at.warning]
    assert len(lines) == 5, lines
    assert "Link: objective=colour is not one of size, latency, macs; using size" in lines
    assert "Link: budget-points=-1 is refused (--budget-points must be between 0 and 100, got -1); using 1" in lines
    assert any(line.startswith("Link: grid=prune.colour=red is refused (--grid 'prune.colour=red': prune has no parameter 'colour'") for line in lines)
    assert "Link: grid=prune.iterative_steps=1,2 is ignored: the Explore form has no widget for prune.iterative_steps" in lines
    assert any(line.startswith("Link: grid=prune.amount=0.1,0.2,0.5 is refused (--grid prune.amount is given twice") and line.endswith("; the first one applies") for line in lines)
    assert at.selectbox(key="explore_objective").value == "size" and at.number_input(key="explore_budget").value == 1.0
    assert at.number_input(key="explore_cpus_per_trial").value == 2 and at.number_input(key="explore_random_count").value == 2
    assert at.checkbox(key="explore_vary_distill").value and at.text_input(key="explore_temperatures").value == ""
    assert "--grid prune.amount=0.1:0.5:0.2 --grid distill.alpha=0.2,0.8" in explore_cli(at)
    assert at.query_params["grid"] == ["prune.amount=0.1:0.5:0.2", "distill.alpha=0.2,0.8"] and "objective" not in at.query_params
    at.run()
    assert not at.warning, "a refusal is said once, when the link is opened"


def test_an_uneven_amount_list_falls_back_to_the_forms_range(digits_baseline):
    at = open_link("pages/explore.py", dataset="digits", seed="0", grid=["prune.amount=0.1,0.2,0.5", "prune.scope=global"])
    assert [warning.value for warning in at.warning] == ["Link: grid=prune.amount=0.1,0.2,0.5 is not evenly spaced, which the form's from/to/step cannot say; using 0.3:0.9:0.3"]
    assert "--grid prune.amount=0.3:0.9:0.3 --grid prune.scope=global" in explore_cli(at)


def test_a_page_switch_leaves_the_explore_settings_behind(digits_baseline):
    at = open_link("pages/explore.py", dataset="digits", seed="0", grid=EXPLORE_GRID, objective="latency")
    at.switch_page("pages/pruning.py").run()
    assert not at.exception and not at.warning
    assert at.query_params == {"dataset": "digits", "seed": "0"}


# The Compare page: the reference and the selected runs, under `python -m core report`'s names ------


@pytest.fixture()
def compare_home(digits_baseline, session_workspace, tmp_path, monkeypatch):
    """A copy of the session workspace (its baseline) with a pruning run and a second, pinned one:
    the page's reference can then be the baseline or the pinned run."""
    import shutil

    from core.foundation import history
    from core.foundation.workspace import Workspace
    from tests.conftest import record_prune_run

    home = tmp_path / "compare-home"
    shutil.copytree(session_workspace.root, home, ignore=shutil.ignore_patterns("*.sqlite-wal", "*.sqlite-shm", "streamlit-*.log"))
    monkeypatch.setenv("MEL_HOME", str(home))
    workspace = Workspace.open(home)
    pruned = record_prune_run(digits_baseline, workspace, amount=0.5)
    pinned = record_prune_run(digits_baseline, workspace, amount=0.8)
    history.set_pinned(workspace.history_db, pinned, True)
    return {"baseline": digits_baseline.run_id, "pruned": pruned, "pinned": pinned}


def test_a_compare_link_sets_the_reference_and_the_selected_runs_and_the_url_follows(compare_home):
    runs = compare_home
    at = open_link("pages/compare.py", dataset="digits", seed="0", reference=str(runs["pinned"]), runs=f"{runs['pruned']},{runs['baseline']}")
    assert not at.warning
    assert at.selectbox(key="compare_reference").value == runs["pinned"]
    assert at.multiselect(key="compare_selected").value == [runs["pruned"], runs["baseline"]]
    assert at.query_params["reference"] == str(runs["pinned"]) and at.query_params["runs"] == ",".join(map(str, sorted([runs["pruned"], runs["baseline"]])))
    at.selectbox(key="compare_reference").set_value(runs["baseline"]).run()  # the page's default: left out of the link
    at.multiselect(key="compare_selected").set_value([]).run()
    assert "reference" not in at.query_params and "runs" not in at.query_params
    assert shown_link(at).endswith("/compare?dataset=digits&seed=0")


def test_a_compare_link_naming_runs_the_history_lacks_is_one_line_each_and_the_rest_applies(compare_home):
    runs = compare_home
    at = open_link("pages/compare.py", reference=str(runs["pruned"]), runs=f"{runs['pruned']},999,x")
    assert [warning.value for warning in at.warning] == [
        f"Link: reference={runs['pruned']} is not a baseline or pinned run of this history; using #{runs['baseline']}",
        "Link: runs 999, x are not in this history; showing the others",
    ]
    assert at.selectbox(key="compare_reference").value == runs["baseline"]
    assert at.multiselect(key="compare_selected").value == [runs["pruned"]]
    at.run()
    assert not at.warning  # said once, on opening
    at.switch_page("pages/pruning.py").run()
    assert "runs" not in at.query_params and "reference" not in at.query_params  # a page switch leaves Compare's names behind
