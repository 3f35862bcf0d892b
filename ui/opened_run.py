"""A run opened from the Explore page: a small card on its technique's page with the run's recorded
headline (from the history), its sweep settings and a close button.

    st.session_state[OPEN_RUN_KEY] = run_id; st.switch_page("pages/pruning.py")   # the explorer
    show_opened_run()                                                              # the target page
"""

from __future__ import annotations

import streamlit as st

from core.foundation import history
from core.foundation.errors import UserError
from ui.state import format_bytes, report_error, workspace

OPEN_RUN_KEY = "open_run_id"


def close_opened_run() -> None:
    st.session_state.pop(OPEN_RUN_KEY, None)


def _pair(before, after, show) -> str:
    if before is None or after is None:
        return "—" if after is None else show(after)
    return f"{show(before)} → {show(after)}"


def show_opened_run() -> None:
    run_id = st.session_state.get(OPEN_RUN_KEY)
    if run_id is None:
        return
    try:
        run = history.get_run(workspace().history_db, int(run_id))
    except UserError as error:
        report_error(error)
        return
    if run is None:
        close_opened_run()
        return
    metrics = run.metrics
    with st.container(border=True, key="opened_run_card"):
        title, close = st.columns([5, 1])
        title.markdown(f"**Run #{run.id} (from the explorer)** · {run.technique} · {run.model} on {run.dataset}")
        close.button("Close", key="opened_run_close", on_click=close_opened_run, icon=":material/close:")
        change, ratio, speedup = metrics.get("accuracy_change_points"), metrics.get("compression_ratio"), metrics.get("speedup")
        figures = (
            (
                "Accuracy",
                _pair(metrics.get("accuracy_before"), metrics.get("accuracy_after", metrics.get("accuracy")), lambda value: f"{value:.1%}"),
                None if change is None else f"{change:+.2f} points",
            ),
            ("Size", _pair(metrics.get("size_bytes_before"), metrics.get("size_bytes_after"), format_bytes), None if ratio is None else f"{ratio:.1f}× smaller"),
            (
                f"Latency (batch {metrics.get('latency_batch_size', '?')})",
                _pair(metrics.get("latency_ms_before"), metrics.get("latency_ms_after"), lambda value: f"{value:.2f} ms"),
                None if speedup is None else f"{speedup:.2f}× speedup",
            ),
        )
        for column, (label, value, note) in zip(st.columns(3), figures):
            column.markdown(f"{label}  \n**{value}**" + (f"  \n{note}" if note else ""))
        point = run.params.get("sweep", {}).get("point")
        if point:
            settings = ", ".join(f"{name} = {value}" for name, value in point.items())
        else:
            settings = ", ".join(f"{name} = {value}" for name, value in run.params.items() if not isinstance(value, (dict, list)))
        st.caption(f"Settings: {settings}")
