"""What Ray reads from the environment once, when `import ray` runs, set before any of the lab's
modules imports Ray: `core/__init__.py` calls `prepare_ray_environment()`, so every process of the
lab (the CLI, the dashboard, a Ray worker that unpickles a trial, the tests) has these defaults
before Ray reads them. Ray caches both at import (its RayConfig and `ray._private.ray_constants`),
so setting them at connect time, after `import ray`, is too late.

- `RAY_AUTH_MODE=token`: token authentication, asked for explicitly. Ray 2.60 turns it on by itself
  only for a cluster `ray.init()` starts (and `ray start` when a token exists); a driver that
  connects by address sends its token only when the variable says so at import.
- `RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0`: Ray's switch for a single-machine Ray (off by default on
  Windows and macOS). With it off, Ray keeps 127.0.0.1 as the node's address instead of replacing
  it with the machine's network address (`get_node_ip_address` and `resolve_ip_for_localhost` in
  `ray/_private/services.py`); its gRPC servers (the GCS, the raylet's node and object managers,
  each worker's core worker) then listen on 127.0.0.1 only, not on `*` (measured with `ss -ltnp`,
  Ray 2.60). On Linux its only other effect is that `ray start` without `--head` refuses to join a
  cluster, which the lab never runs.

Both are defaults: a value already in the environment wins, and `core/sweep/engine.py` refuses to
start a local cluster whose authentication is not `token`. Nothing here imports Ray.
"""

from __future__ import annotations

import os
from pathlib import Path

AUTH_MODE_ENV = "RAY_AUTH_MODE"
TOKEN_ENV = "RAY_AUTH_TOKEN"
TOKEN_PATH_ENV = "RAY_AUTH_TOKEN_PATH"
SINGLE_MACHINE_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK = "127.0.0.1"


def prepare_ray_environment() -> None:
    os.environ.setdefault(AUTH_MODE_ENV, "token")
    os.environ.setdefault(SINGLE_MACHINE_ENV, "0")


def auth_mode() -> str:
    return os.environ.get(AUTH_MODE_ENV, "token").strip().lower() or "token"


def default_token_file() -> Path:
    """Where Ray writes the token it makes (`ray.init()`, `ray get-auth-token --generate`)."""
    return Path.home() / ".ray" / "auth_token"


def token_file() -> Path | None:
    """The file Ray reads the token from, in Ray's order: $RAY_AUTH_TOKEN (no file) first, then
    $RAY_AUTH_TOKEN_PATH, then ~/.ray/auth_token."""
    if os.environ.get(TOKEN_ENV, "").strip():
        return None
    custom = os.environ.get(TOKEN_PATH_ENV, "").strip()
    return Path(custom).expanduser() if custom else default_token_file()


def token_source() -> str:
    """Where this process's token comes from, for a message: `$RAY_AUTH_TOKEN` or a file."""
    path = token_file()
    return f"${TOKEN_ENV}" if path is None else str(path)


def has_token() -> bool:
    path = token_file()
    if path is None:
        return True
    try:
        return bool(path.read_text().strip())
    except OSError:
        return False
