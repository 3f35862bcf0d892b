"""Model Efficiency Lab: the router and the shared sidebar.

`streamlit run app.py`. The sidebar chooses the dataset and the baseline model and trains (or
loads from the cache) the baseline that every page starts from. No ML code lives here.

The sidebar and the Overview come up without importing torch (a cached baseline is shown from its
card, core.foundation.baseline.card); torch and the pages' ML modules load in the background after the first
page is drawn (ui.state.start_torch_warmup).
"""

from __future__ import annotations

from pathlib import Path

import pandas  # noqa: F401 (before the background warmup: plotly uses pandas once it is in sys.modules, even half-imported by another thread)
import streamlit as st

from core.charts.training import live_training_figure
from core.foundation import history
from core.foundation.baseline.config import MAX_SEED, MAX_SUBSET_SIZE, BaselineConfig
from core.foundation.data.names import DEFAULT_DATASET, FOLDER_PREFIX, TORCHVISION_DATASETS, DatasetSpec, is_dataset_on_disk, validate_dataset_name
from core.foundation.errors import UserError
from core.foundation.models.names import MAX_IMAGE_SIDE, MIN_IMAGE_SIDE, SMALL_IMAGE_MAX_SIDE, available_models, model_label, pretrained_arch
from core.foundation.progress import Progress
from core.foundation.training.records import MAX_EPOCHS
from ui.brought import brought_weights_from_sidebar
from ui.jobs_view import queued_baseline_training
from ui.presentation import apply_presentation_mode
from ui.state import (
    CONFIG_KEY,
    PRESENTATION_KEY,
    TRAINING_STOP_KEY,
    SessionStopFlag,
    baseline_card,
    cached_baseline,
    classroom_mode,
    dataset_for,
    ensure_navigation_mode,
    format_bytes,
    report_error,
    start_torch_warmup,
    torch_ready,
    workspace,
)

ensure_navigation_mode()
st.set_page_config(page_title="Model Efficiency Lab", page_icon=":material/speed:", layout="wide")

PAGE_FILES = [
    ("pages/overview.py", "Overview", ":material/home:"),
    ("pages/pruning.py", "Pruning", ":material/content_cut:"),
    ("pages/quantization.py", "Quantization", ":material/stairs:"),
    ("pages/distillation.py", "Distillation", ":material/school:"),
    ("pages/explore.py", "Explore", ":material/travel_explore:"),
    ("pages/compare.py", "Compare & report", ":material/leaderboard:"),
    ("pages/instructor.py", "Instructor", ":material/admin_panel_settings:"),
]
CLASSROOM_ONLY = {"pages/instructor.py"}  # the job queue's page: only a classroom server has a queue
PAGES = [st.Page(path, title=title, icon=icon, default=(i == 0)) for i, (path, title, icon) in enumerate(PAGE_FILES) if Path(path).exists() and (path not in CLASSROOM_ONLY or classroom_mode())]


def available_devices() -> list[str]:
    """auto and cpu, and the accelerators torch finds. Until torch has loaded (the first seconds of
    a fresh server, see start_torch_warmup) only auto and cpu: asking would import it here."""
    devices = ["auto", "cpu"]
    if not torch_ready():
        return devices
    from core.foundation.training.loop import resolve_device

    for name in ("cuda", "mps"):
        try:
            resolve_device(name)
            devices.append(name)
        except UserError:
            pass
    return devices


def default_dataset_choice() -> str:
    """CIFAR-10 when its files are already in the data folder, else the embedded default."""
    return "cifar10" if is_dataset_on_disk("cifar10", workspace()) else DEFAULT_DATASET


def dataset_name_from_sidebar() -> str:
    choices = [DEFAULT_DATASET, *TORCHVISION_DATASETS, "folder…"]
    if "sidebar_dataset" not in st.session_state:
        st.session_state["sidebar_dataset"] = default_dataset_choice()
    choice = st.sidebar.selectbox("Dataset", choices, key="sidebar_dataset", help="digits is built in and works offline; the others come from torchvision or your own folder")
    if choice != "folder…":
        return choice
    folder = st.sidebar.text_input("Folder with train/ and test/", key="sidebar_folder", placeholder="/path/to/images")
    return f"{FOLDER_PREFIX}{folder.strip()}" if folder.strip() else DEFAULT_DATASET


def ensure_dataset_available(name: str) -> str:
    """Offer the download for a torchvision dataset that is not on disk; fall back to digits meanwhile."""
    if name not in TORCHVISION_DATASETS or is_dataset_on_disk(name, workspace()):
        return name
    st.sidebar.warning(f"{name} is not in {workspace().data_dir} yet; showing the embedded '{DEFAULT_DATASET}' meanwhile.")
    if st.sidebar.button(f"Download {name}", key="sidebar_download"):
        bar = st.sidebar.progress(0.0, text=f"Downloading {name}…")
        from core.foundation.data.datasets import load_dataset

        try:
            with st.spinner(f"Downloading {name} (about 170 MB for CIFAR-10)…"):
                load_dataset(DatasetSpec(name), workspace(), lambda p: bar.progress(p.fraction, text=p.message))
            st.rerun()
        except UserError as error:
            report_error(error)
    return DEFAULT_DATASET


def sidebar_config() -> BaselineConfig:
    st.sidebar.title("Model Efficiency Lab")
    from ui import share  # the share link (ui/share/): the URL's settings into the widget keys first

    share.apply_sidebar_link(available_models(), available_devices())
    name = ensure_dataset_available(dataset_name_from_sidebar())
    try:
        validate_dataset_name(name)
    except UserError as error:
        report_error(error)
        name = DEFAULT_DATASET
    # Grouped as the registry groups them (the lab's own, then torchvision's): each name shows its group.
    model = st.sidebar.selectbox("Baseline model", available_models(), key="sidebar_model", format_func=model_label)
    pretrained_slot = st.sidebar.empty()  # the ImageNet toggle, under the model: drawn once the upload below is known
    brought = brought_weights_from_sidebar(model)  # the user's own trained weights for it, if uploaded
    pretrained = pretrained_toggle(pretrained_slot, model, bool(brought))
    train_size = st.sidebar.number_input("Train images (0 = all)", min_value=0, max_value=MAX_SUBSET_SIZE, value=0, step=500, key="sidebar_train_size")
    image_size = st.sidebar.number_input(
        "Image size in px (empty = the dataset's own)",
        min_value=MIN_IMAGE_SIDE,
        max_value=MAX_IMAGE_SIDE,
        value=None,
        placeholder="the dataset's own",
        key="sidebar_image_size",
        help=f"Every image resized to this side. Above {SMALL_IMAGE_MAX_SIDE} px torchvision's networks keep their own stem (as their weights were trained); a folder is read at most {SMALL_IMAGE_MAX_SIDE} px without it.",
    )
    epochs = st.sidebar.number_input("Epochs (empty = classroom preset)", min_value=0, max_value=MAX_EPOCHS, value=None, placeholder="preset", key="sidebar_epochs")
    seed = st.sidebar.number_input("Seed", min_value=0, max_value=MAX_SEED, value=0, key="sidebar_seed")
    device = st.sidebar.selectbox("Device", available_devices(), key="sidebar_device")
    share.write_sidebar_link()  # the current values back into the URL, and the Share expander
    st.sidebar.toggle("Presentation mode", key=PRESENTATION_KEY, help="Larger fonts and charts, controls tucked away: for projecting")
    spec = DatasetSpec(name, int(train_size) or None, None, 0, None if image_size is None else int(image_size))
    return BaselineConfig(spec, model, None if epochs is None else int(epochs), int(seed), device, **brought, pretrained=pretrained)


def pretrained_toggle(slot, model: str, brought: bool) -> bool:
    """Whether the baseline starts from torchvision's ImageNet weights: asked only for a torchvision
    network with published weights, and off (greyed) while an uploaded file is the start."""
    if pretrained_arch(model) is None:
        return False
    ticked = slot.toggle(
        "Start from torchvision's ImageNet weights",
        key="sidebar_pretrained",
        disabled=brought,
        help="torchvision's weights for this network (read from torch's hub cache, downloaded there when missing), with a new head for the dataset's classes; "
        "trained for the preset's epochs at a gentler rate. An uploaded file under Your own weights is the start instead.",
    )
    return ticked and not brought


def baseline_status_and_training(config: BaselineConfig, live_area) -> None:
    # Stop training's on_click sets the flag at the start of the rerun its press causes. Starting
    # that rerun ends the training run it interrupts (Streamlit stops the session's running script at
    # its next st call, the progress bar's), and a run that reads the flag stops between batches.
    stop_requested = bool(st.session_state.pop(TRAINING_STOP_KEY, False))
    try:
        card = baseline_card(config)  # no torch: a cached baseline's figures come from its meta
        dataset = baseline = None
        if card is None:
            dataset = dataset_for(config.dataset)
            baseline = cached_baseline(config)
    except UserError as error:
        report_error(error)
        st.session_state[CONFIG_KEY] = BaselineConfig()
        return
    if dataset is not None and dataset.skipped_files:
        st.sidebar.warning(f"{len(dataset.skipped_files)} files were skipped, e.g. {dataset.skipped_files[0]}")
    try:
        history.count_runs(workspace().history_db)
        history_readable = True
    except UserError as error:  # e.g. runs.sqlite of a half-copied workspace: said once, here
        st.sidebar.error(str(error), icon="⚠️")
        history_readable = False
    if card is not None or baseline is not None:
        metrics = (card or baseline).metrics
        st.sidebar.success(f"Baseline cached: {metrics.accuracy:.1%} accuracy, {format_bytes(metrics.size_bytes)}")
        return
    if config.brought:
        st.sidebar.info(f"Your {config.model} is not recorded as the baseline yet ({dataset.name}, {len(dataset.test):,} test images).")
    else:
        st.sidebar.info(f"No baseline yet for {dataset.name} ({len(dataset.train):,} training images).")
    if stop_requested:
        st.sidebar.warning("Training stopped; nothing was saved.")
    if not history_readable:
        return  # the training would end in the same error, after all its work
    if classroom_mode():
        queued_baseline_training(config, str(workspace().root))
        return
    label = ("Fine-tune and record your model" if config.epochs else "Record your model as the baseline") if config.brought else "Train baseline"
    if not st.sidebar.button(label, key="sidebar_train", type="primary"):
        return
    stop = SessionStopFlag(TRAINING_STOP_KEY)
    with live_area.container():
        st.subheader("Training the baseline")
        stop_button = st.empty()
        stop_button.button("Stop training", key="training_stop", on_click=stop.set)
        bar = st.progress(0.0, text="starting…")
        chart = st.empty()
        steps, losses, accuracies = [], [], []
        last_chart = [0.0]
        redraws = [0]  # each redraw of the placeholder needs its own element key

        def report(progress: Progress) -> None:
            import time

            loss = f" · loss {progress.metrics['loss']:.3f}" if "loss" in progress.metrics else ""  # evaluation reports no loss
            bar.progress(progress.fraction, text=f"{progress.message}{loss} · ETA {progress.metrics.get('eta_seconds', 0):.0f} s")
            if "running_accuracy" in progress.metrics and "test_accuracy" not in progress.metrics:
                steps.append(progress.done)
                losses.append(progress.metrics["loss"])
                accuracies.append(progress.metrics["running_accuracy"])
            if time.perf_counter() - last_chart[0] > 1.0:
                last_chart[0] = time.perf_counter()
                redraws[0] += 1
                chart.plotly_chart(live_training_figure(steps, losses, accuracies, progress.total), width="stretch", key=f"live_training_chart_{redraws[0]}")

        from core.foundation.baseline.trained import TrainingStopped, get_baseline

        try:
            get_baseline(config, workspace(), report, stop=stop, dataset=dataset)
        except TrainingStopped:
            st.rerun()  # with the flag still set, the rerun says so in the sidebar, as after an interrupting press
        except UserError as error:
            stop_button.empty()
            report_error(error)
            return
    st.rerun()


config = sidebar_config()
st.session_state[CONFIG_KEY] = config
apply_presentation_mode()  # larger text, sidebar hidden, a button back (ui/presentation.py); nothing in normal mode
live_area = st.empty()
baseline_status_and_training(config, live_area)
try:
    st.navigation(PAGES).run()
finally:  # also after a page's st.stop()
    start_torch_warmup()  # after the page is drawn: its imports would compete with this run for the GIL
