"""A model the user brought: their weights file, kept in the workspace under the SHA-256 of its bytes.

The CLI's `--weights FILE` and the sidebar's upload both end here. The file is read and checked
first (core.foundation.models.weights_file: safetensors, or a `.pt`/`.pth` through PyTorch's restricted
loader only), then kept as `WORKSPACE/brought/<sha256><suffix>`, so the baseline it becomes can be
loaded again after the upload is gone, and two uploads of the same bytes are one file. Its
configuration (core.foundation.baseline.config.BaselineConfig) names the file and its hash; the history
records both, so a presenter can say exactly which model was compressed.
"""

from __future__ import annotations

from pathlib import Path, PurePath

from core.foundation.baseline.config import BaselineConfig
from core.foundation.errors import UserError
from core.foundation.workspace import Workspace, atomic_write_bytes

BROUGHT_DIR = "brought"
RECORDED_NAME_CHARACTERS = 100  # a file's name as the history records it: any longer is cut before the suffix


def brought_dir(workspace: Workspace) -> Path:
    return workspace.root / BROUGHT_DIR


def bring_weights(workspace: Workspace, name: str, data: bytes):
    """Read and check `data` (a weights file called `name`), keep it in the workspace and return its
    core.foundation.models.weights_file.WeightsFile. Bad input: one UserError line, nothing kept."""
    from core.foundation.models.weights_file import read_weights_bytes

    name = recorded_name(name)
    weights = read_weights_bytes(name, data)
    path = brought_dir(workspace) / f"{weights.sha256}{PurePath(name).suffix.lower()}"
    if not path.is_file():
        atomic_write_bytes(path, data)
    return weights


def recorded_name(name: str) -> str:
    """A brought file's name as the history keeps it: its last path part (a browser's or a crafted
    request's `../../x` is `x`), control characters as '?', at most RECORDED_NAME_CHARACTERS with its
    suffix kept (the suffix says how the file is read)."""
    last = PurePath(str(name).replace("\\", "/")).name or "weights"
    last = "".join(character if character.isprintable() else "?" for character in last)
    if len(last) <= RECORDED_NAME_CHARACTERS:
        return last
    suffix = PurePath(last).suffix[:16]
    return last[: RECORDED_NAME_CHARACTERS - len(suffix) - 1] + "…" + suffix


def bring_weights_file(workspace: Workspace, path: str | Path):
    """bring_weights for a file on disk (the CLI's --weights FILE)."""
    path = Path(path).expanduser()
    try:
        data = path.read_bytes()
    except OSError as error:
        raise UserError(f"cannot read the weights file {path}: {error.strerror or error}") from error
    return bring_weights(workspace, path.name, data)


def brought_path(workspace: Workspace, config: BaselineConfig) -> Path:
    """The kept copy of the configuration's brought file; one line when it is gone."""
    matches = sorted(brought_dir(workspace).glob(f"{config.brought_weights_sha256}.*"))
    if not matches:
        raise UserError(f"the brought weights {config.brought_weights_name} (sha256 {config.brought_weights_sha256[:12]}…) are no longer in {brought_dir(workspace)}; bring the file again")
    return matches[0]


def load_brought_weights(workspace: Workspace, config: BaselineConfig):
    """The configuration's brought file, read and checked again (its hash must still match)."""
    from core.foundation.models.weights_file import read_weights

    weights = read_weights(brought_path(workspace, config))
    if weights.sha256 != config.brought_weights_sha256:
        raise UserError(f"the kept copy of {config.brought_weights_name} has changed since it was brought (its SHA-256 differs); bring the file again")
    return weights
