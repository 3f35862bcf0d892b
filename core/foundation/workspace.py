"""The workspace folder: cached datasets, trained checkpoints and the run history live here.

Every file is written atomically (temp file in the same folder, then rename), so a crash
never leaves a half-written file under its final name. Models are stored as safetensors plus
a JSON metadata file; nothing here ever unpickles.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from safetensors import SafetensorError

from core.foundation.errors import UserError

if TYPE_CHECKING:  # torch is imported where tensors are read or written: the sidebar and the
    import torch  # Overview open a workspace without it (the first render skips its seconds)

WORKSPACE_ENV = "MEL_HOME"
DATA_DIR_ENV = "MEL_DATA_DIR"
CHECKPOINTS = "checkpoints"


def default_workspace() -> Path:
    if os.environ.get(WORKSPACE_ENV):
        return Path(os.environ[WORKSPACE_ENV]).expanduser()
    cache_root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_root) / "model-efficiency-lab"


@dataclass(frozen=True)
class Workspace:
    root: Path
    data_dir_override: Path | None = None  # --data-dir; else $MEL_DATA_DIR; else ROOT/data

    @classmethod
    def open(cls, root: str | Path | None = None, data_dir: str | Path | None = None) -> Workspace:
        path = Path(root).expanduser() if root else default_workspace()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UserError(f"cannot create workspace folder {path}: {error.strerror}") from error
        return cls(path.resolve(), Path(data_dir).expanduser().resolve() if data_dir else None)

    @property
    def data_dir(self) -> Path:
        if self.data_dir_override:
            return self.data_dir_override
        from_environment = os.environ.get(DATA_DIR_ENV)
        return Path(from_environment).expanduser() if from_environment else self.root / "data"

    @property
    def dataset_cache_dir(self) -> Path:
        return self.root / "dataset-cache"

    @property
    def checkpoint_dir(self) -> Path:
        return self.root / CHECKPOINTS

    @property
    def history_db(self) -> Path:
        return self.root / "runs.sqlite"

    def relative_artifact(self, path: Path) -> str:
        """How the history stores an artifact's path: relative to the workspace when it is inside,
        so a workspace copied or moved elsewhere still finds its models."""
        path = Path(path)
        try:
            return str(path.resolve().relative_to(self.root))
        except ValueError:
            return str(path)

    def resolve_artifact(self, stored: str | Path | None) -> Path | None:
        """The artifact a history row names, wherever this workspace now lives. Rows written before
        paths were relative hold absolute paths into the old location: the part from their last
        `checkpoints` folder on is looked up in this workspace first (a copied workspace uses its
        own files, even while the original still exists), then the old path itself."""
        if not stored:
            return None
        path = Path(stored)
        if not path.is_absolute():
            return self.root / path
        parts = path.parts
        if CHECKPOINTS in parts:
            last = len(parts) - 1 - parts[::-1].index(CHECKPOINTS)
            here = self.root.joinpath(*parts[last:])
            if here.exists():
                return here
        return path


def config_key(config: dict) -> str:
    """A short stable hash of a JSON-able configuration: the cache key of whatever it produces."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as temp_file:
            temp_file.write(data)
            temp_file.flush()
            os.fsync(temp_file.fileno())
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, payload: dict) -> None:
    atomic_write_bytes(path, json.dumps(payload, indent=2, sort_keys=True, default=str).encode())


def atomic_save_tensors(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        from safetensors.torch import save_file

        contiguous = {name: tensor.detach().contiguous().cpu() for name, tensor in tensors.items()}
        save_file(contiguous, temp_name, metadata=metadata)
        os.replace(temp_name, path)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# A checkpoint is two files: model.safetensors, then meta.json written last. meta.json records the
# weights' sha256, so a checkpoint whose weights were cut short or replaced is never loaded.
WEIGHTS_FILE = "model.safetensors"
META_FILE = "meta.json"


def save_checkpoint(folder: Path, state_dict: dict[str, torch.Tensor], meta: dict) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    weights_path = folder / WEIGHTS_FILE
    atomic_save_tensors(weights_path, state_dict)
    atomic_write_json(folder / META_FILE, {**meta, "weights_sha256": file_sha256(weights_path)})
    return weights_path


def load_checkpoint(folder: Path) -> tuple[dict[str, torch.Tensor], dict] | None:
    """The (state_dict, meta) saved in `folder`, or None when it is absent, partial or corrupt."""
    meta_path, weights_path = folder / META_FILE, folder / WEIGHTS_FILE
    if not (meta_path.is_file() and weights_path.is_file()):
        return None
    try:
        meta = json.loads(meta_path.read_text())
        if meta.get("weights_sha256") != file_sha256(weights_path):
            return None
        from safetensors.torch import load_file

        return load_file(weights_path), meta
    except (json.JSONDecodeError, SafetensorError, OSError):
        return None
