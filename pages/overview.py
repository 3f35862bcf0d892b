"""Overview: why efficiency matters, and the baseline every technique starts from.

Drawn from the baseline's card (its checkpoint's recorded figures), so this page needs no torch:
on a fresh server it is up while torch still loads in the background.
"""

import time

import streamlit as st

from core.charts.training import confusion_matrix_figure, learning_curve_figure
from ui.latency import protocol_text
from ui.plain_text import literal
from ui.state import format_bytes, require_baseline_card, show_figure

st.title("Model Efficiency Lab")
st.markdown(
    """
A trained network is a file of numbers and a pile of arithmetic. Making it **smaller** lets it fit
on a phone or a microcontroller and download faster; making it **faster** cuts waiting time and the
**energy** each prediction costs; both decide whether a model can be **deployed** at all. This lab
trains a small CNN live and shows, technique by technique, what **pruning**, **quantization** and
**knowledge distillation** really buy, measured on this machine, not promised.
"""
)

card = require_baseline_card()
metrics = card.metrics
summary = card.dataset_summary
config = card.config
st.subheader(f"Baseline: your {config.model} on {summary['dataset']}" if config.brought else f"Baseline: {config.model} on {summary['dataset']}")
if config.brought:  # which file, exactly: what a presenter names when they say "our model"
    st.caption(literal(f"From your file {config.brought_weights_name} · SHA-256 {config.brought_weights_sha256}", 200))
columns = st.columns(5)
columns[0].metric("Test accuracy", f"{metrics.accuracy:.1%}")
columns[1].metric("Size on disk (fp32)", format_bytes(metrics.size_bytes))
columns[2].metric("Parameters", f"{metrics.params:,}")
columns[3].metric("MACs per image", f"{metrics.macs / 1e6:.2f} M")
if metrics.latency_ms_single is not None:  # the one latency protocol: one image, and a batch of 256
    columns[4].metric(
        "Latency (1 image)",
        f"{metrics.latency_ms_single:.3f} ms",
        help=f"batch {metrics.latency_batch_size}: {metrics.latency_ms:.2f} ms; measured at {protocol_text(metrics.latency_runtime, metrics.latency_threads, metrics.latency_batch_size)} on {metrics.latency_device}",
    )
else:  # a checkpoint written before the protocol
    columns[4].metric(f"Latency (batch {metrics.latency_batch_size})", f"{metrics.latency_ms:.2f} ms", help=f"median of repeated runs on {metrics.latency_device}, {metrics.latency_threads} threads")
saved = time.strftime("%Y-%m-%d %H:%M", time.localtime(card.saved_at))
st.caption(
    f"{summary['train_images']:,} training / {summary['test_images']:,} test images, {summary['classes']} classes, "
    f"{summary['channels']}×{summary['image_size']}×{summary['image_size']} pixels · {card.recipe.epochs} epochs in "
    f"{card.train_seconds:.1f} s · saved {saved} · checkpoint {card.checkpoint.name}"
)

left, right = st.columns(2)
with left:
    if card.history:
        show_figure(learning_curve_figure(card.history), key="overview_learning_curve")
    else:
        st.info("Recorded as it was brought: no epochs were trained here, so there is no learning curve. Epochs in the sidebar fine-tunes it first.")
with right:
    show_figure(confusion_matrix_figure(card.evaluation.confusion, card.class_names), key="overview_confusion")
