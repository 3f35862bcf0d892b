"""How long the README's test command takes on a fresh clone: `make test` in a new clone of HEAD,
with CI=true as .ci/run sets it, timed whole and as pytest counts it, with the test count and the
slowest tests pytest printed.

    python bench/bench_suite.py                       # a fresh clone, its own venv (as CI)
    python bench/bench_suite.py --venv .venv          # reuse this venv: only the tests are timed

The clone is made beside a link to ../shared (the CIFAR-10 archive the tests read), in a
temporary folder that is removed afterwards. Results: bench/results/suite.json, with the machine's
facts and its load averages at the start and the end (whether it was quiet).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import REPO_ROOT, write_results  # noqa: E402 (after the path)

SUMMARY = re.compile(r"^=+ (?P<counts>.*?) in (?P<seconds>[\d.]+)s(?: \([\d:]+\))? =+$")
DURATION = re.compile(r"^(?P<seconds>[\d.]+)s (?P<phase>call|setup|teardown)\s+(?P<test>\S+)$")
FAILURE = re.compile(r"^(?P<kind>FAILED|ERROR) (?P<test>\S+)(?: - (?P<reason>.*))?$")


def parse_pytest_output(text: str) -> dict:
    """The counts and seconds of pytest's closing line, its --durations rows and the tests that
    failed (pytest's short summary, so a red run names what to look at)."""
    summary = next((SUMMARY.match(line.strip()) for line in reversed(text.splitlines()) if SUMMARY.match(line.strip())), None)
    counts = {}
    if summary:
        for part in summary.group("counts").split(","):
            number, _, word = part.strip().partition(" ")
            if number.isdigit():
                counts[word] = int(number)
    slowest = [{"seconds": float(m.group("seconds")), "phase": m.group("phase"), "test": m.group("test")} for m in map(DURATION.match, text.splitlines()) if m]
    failures = [{"kind": m.group("kind"), "test": m.group("test"), "reason": (m.group("reason") or "")[:300]} for m in map(FAILURE.match, text.splitlines()) if m]
    return {"counts": counts, "pytest_seconds": float(summary.group("seconds")) if summary else None, "slowest": slowest, "failures": failures}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo", default=str(REPO_ROOT), help="the repository to clone (default: this one; HEAD is cloned, not the working tree)")
    parser.add_argument("--venv", help="link this virtual environment into the clone instead of making a new one")
    parser.add_argument("--out", default="suite", help="results name: bench/results/NAME.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="mel-suite-") as folder:
        root = Path(folder)
        shared = REPO_ROOT.parent / "shared"
        if shared.exists():
            (root / "shared").symlink_to(shared)
        clone = root / "main"
        subprocess.run(["git", "clone", "--quiet", args.repo, str(clone)], check=True)
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=clone, capture_output=True, text=True, check=True).stdout.strip()
        if args.venv:
            (clone / ".venv").symlink_to(Path(args.venv).resolve())
        # A reused venv's install markers are older than the fresh clone's requirements files, so make
        # would rebuild it in place through the link: -o takes them as up to date.
        command = ["make", "-o", ".venv/.installed", "-o", ".venv/.installed-dev", "test"] if args.venv else ["make", "test"]
        started = time.perf_counter()
        completed = subprocess.run(command, cwd=clone, env={**os.environ, "CI": "true"}, capture_output=True, text=True)
        wall_seconds = time.perf_counter() - started
    output = completed.stdout + completed.stderr
    parsed = parse_pytest_output(output)
    results = {
        "commit": commit,
        "command": "make test",
        "exit_code": completed.returncode,
        "reused_venv": bool(args.venv),
        "wall_seconds": round(wall_seconds, 1),
        **parsed,
    }
    write_results(args.out, results)
    counts = ", ".join(f"{n} {word}" for word, n in parsed["counts"].items())
    print(f"{commit}: make test exit {completed.returncode}, {counts}; pytest {parsed['pytest_seconds']} s, whole command {wall_seconds:.0f} s")
    for failure in parsed["failures"]:
        print(f"  {failure['kind']} {failure['test']} - {failure['reason']}")
    for row in parsed["slowest"][:10]:
        print(f"  {row['seconds']:7.2f} s {row['phase']:8} {row['test']}")
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())
