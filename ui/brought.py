"""The sidebar's "Your own weights": an uploaded weights file becomes the baseline.

The upload is read and checked by core.foundation.baseline.brought (safetensors, or `.pt`/`.pth`
through PyTorch's restricted loader only) and kept in the workspace under its SHA-256, once per
upload: a rerun reuses what the first read found. A bad file gets one line and the sidebar goes
on with the model trained here.
"""

from __future__ import annotations

import streamlit as st

from core.foundation.errors import UserError
from core.foundation.models.names import WEIGHTS_SUFFIXES
from ui.state import workspace
from ui.uploads import too_large, upload_label, upload_message

BROUGHT_KEY = "sidebar_brought"  # what the current upload was found to be: name, sha256, upload id
UPLOAD_KEY = "sidebar_weights_upload"
WEIGHTS_TYPES = [suffix.lstrip(".") for suffix in WEIGHTS_SUFFIXES]


def brought_weights_from_sidebar(model: str) -> dict[str, str]:
    """The BaselineConfig fields for an uploaded weights file (empty without one, or when it was refused)."""
    with st.sidebar.expander("Your own weights", expanded=UPLOAD_KEY in st.session_state and st.session_state[UPLOAD_KEY] is not None):
        upload = st.file_uploader(
            upload_label(f"Trained weights for {model}"),
            type=WEIGHTS_TYPES,
            key=UPLOAD_KEY,
            help="A state_dict saved with torch.save (.pt, .pth: read by PyTorch's restricted loader, never unpickled beyond tensors) or a .safetensors file. "
            "It becomes the baseline, recorded with its name and SHA-256; Epochs fine-tunes it first.",
        )
        if upload is None:
            st.session_state.pop(BROUGHT_KEY, None)
            return {}
        kept = st.session_state.get(BROUGHT_KEY)
        if kept is None or kept["upload_id"] != upload.file_id:
            kept = _read_upload(upload)
            if kept is None:
                return {}
            st.session_state[BROUGHT_KEY] = kept
        st.caption(upload_message(f"{kept['name']} · SHA-256 {kept['sha256'][:12]}…: the baseline is this file's {model}."))
        return {"brought_weights_name": kept["name"], "brought_weights_sha256": kept["sha256"]}


def _read_upload(upload) -> dict | None:
    problem = too_large(upload.size)
    if problem:
        st.error(problem, icon="⚠️")
        return None
    from core.foundation.baseline.brought import bring_weights

    try:
        with st.spinner("Reading the weights…"):
            weights = bring_weights(workspace(), upload.name, upload.getvalue())
    except UserError as error:
        st.error(upload_message(str(error)), icon="⚠️")
        return None
    return {"name": weights.name, "sha256": weights.sha256, "upload_id": upload.file_id}
