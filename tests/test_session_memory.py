"""A closed session frees what it held: the models a student's runs made live in that session's
state only, so once the session is gone nothing keeps them (no module-level registry, no cache
keyed by session). Shared caches (st.cache_resource: previews, bounded) are the server's, not the
session's, and are left out on purpose: the runs checked here are never cached."""

from __future__ import annotations

import gc
import weakref

import pytest

from tests.conftest import open_app_page

pytestmark = pytest.mark.slow  # each case trains (one epoch of fine-tuning, one dynamic int8 run)


@pytest.mark.parametrize(
    "page_path, prepare, state_key",
    [
        ("pages/pruning.py", lambda at: at.number_input(key="prune_finetune_epochs").set_value(1), "prune_last_result"),
        ("pages/quantization.py", lambda at: at.radio(key="quant_mode").set_value("dynamic"), "quant_runs"),
    ],
)
def test_a_run_s_model_is_freed_with_the_session_that_made_it(digits_baseline, page_path, prepare, state_key):
    at = open_app_page(page_path)
    prepare(at)
    at.run()
    key = "prune_run" if "pruning" in page_path else "quant_run"
    at.button(key=key).click().run()
    assert not at.exception
    held = at.session_state[state_key]
    results = [held] if state_key == "prune_last_result" else [result for by_mode in held.values() for result in by_mode.values()]
    assert results and all(result.model is not None for result in results)
    models = [weakref.ref(result.model) for result in results]
    del held, results
    del at  # the server drops a closed session (and its state) once its reconnect time is over
    gc.collect()
    assert [model() is None for model in models] == [True] * len(models), "a closed session's model is still referenced"
