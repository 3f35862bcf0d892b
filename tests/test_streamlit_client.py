"""bench/streamlit_client.py against a real Streamlit server: a tiny two-page app on 127.0.0.1, driven
over Streamlit's WebSocket protocol (page switch, slider, button), as the classroom bench drives the app."""

from __future__ import annotations

import asyncio
import concurrent.futures
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

from bench.streamlit_client import StreamlitClient, slider_state, trigger_state
from tests.browser.conftest import free_port

APP = """
import streamlit as st

def first():
    st.write("first page")

def second():
    value = st.slider("Amount", 0.0, 1.0, 0.5, 0.01, key="amount")
    st.write(f"value={value:.2f}")
    if st.button("Press", key="press"):
        st.write("pressed")
    if st.button("Boom", key="boom"):
        raise ValueError("boom")

st.navigation([st.Page(first, title="First", default=True), st.Page(second, title="Second")]).run()
"""


@pytest.fixture()
def tiny_server(tmp_path):
    (tmp_path / "tiny_app.py").write_text(textwrap.dedent(APP))
    port = free_port()
    log = open(tmp_path / "streamlit.log", "w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            "tiny_app.py",
            "--server.port",
            str(port),
            "--server.address",
            "127.0.0.1",
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
        ],
        cwd=tmp_path,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.time() + 60
        while True:
            assert process.poll() is None, (tmp_path / "streamlit.log").read_text()
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2):
                    break
            except OSError:
                assert time.time() < deadline, "the tiny app's server did not become healthy"
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


def test_client_switches_page_moves_slider_and_presses_button(tiny_server):
    async def scenario():
        client = StreamlitClient(tiny_server, timeout_s=30)
        await client.connect()
        first = await client.rerun()
        assert first.status == "FINISHED_SUCCESSFULLY"
        assert "first page" in client.texts()
        assert {"First", "Second"} <= set(client.pages)

        await client.rerun(page="Second")
        slider = client.widget(key="amount")
        assert slider is not None and slider.label == "Amount" and client.widget(label="Amount") is not None
        assert "value=0.50" in client.texts()

        moved = await client.rerun(widget_states=[slider_state(slider.id, 0.7)])
        assert moved.status == "FINISHED_SUCCESSFULLY" and not moved.exceptions
        assert "value=0.70" in client.texts()

        # A press is sent once; the slider keeps the value the client set.
        await client.rerun(widget_states=[trigger_state(client.widget(key="press").id)])
        assert "pressed" in client.texts() and "value=0.70" in client.texts()
        await client.rerun()
        assert "pressed" not in client.texts() and "value=0.70" in client.texts()

        # An exception in the script arrives as an exception element.
        boom = await client.rerun(widget_states=[trigger_state(client.widget(key="boom").id)])
        assert boom.exceptions and "boom" in boom.exceptions[0]
        await client.close()

    # Its own thread and event loop: in the full run, Playwright's sync API (the browser tests'
    # session fixture) keeps an event loop running on the main thread, where asyncio.run() refuses.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        pool.submit(asyncio.run, scenario()).result()
