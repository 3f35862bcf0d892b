"""The README's and the docs' `python -m core ...` examples, run as written, and their links and paths.

The convention: a command is a line in a ```bash block that starts with `.venv/bin/python -m core`
or `python -m core`. Every such block runs, in document order, in one fresh workspace per document
(MEL_HOME and the working directory are temporary folders, so `--out report.html` lands there),
unless the nearest line above its fence is `<!-- not run by tests: REASON -->`. A marked block is
still parsed by the CLI's own parser, so a flag that no longer exists fails here too. A trailing
`# run N` comment is checked against the run id the command prints: the docs' run ids are those of
that fresh workspace.

A document's commands run one after another in one Python process, through core.cli.main.main,
which is all `python -m core` does (core/__main__.py): torch's import (3.8 s here) is paid once per
document instead of once per command, and the commands share a process as they share a dashboard.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

DOCUMENTS = [REPO_ROOT / "README.md", REPO_ROOT / "CONTRIBUTING.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]
PREFIXES = (".venv/bin/python -m core ", "python -m core ")
SKIP_MARKER = re.compile(r"^<!--\s*not run by tests:\s*(?P<reason>\S.*?)\s*-->$")
RUN_ID_COMMENT = re.compile(r"^#\s*run (\d+)(?=$|:| \()")  # "# run 3", "# run 3: ...", "# run 3 (...)"
# How many commands each document runs; the test fails if fewer ran, so it cannot pass by running nothing.
EXPECTED_RUNS = {"README.md": 2, "docs/cli.md": 18, "docs/classroom.md": 1}


@dataclass(frozen=True)
class Command:
    document: str
    line: int
    text: str
    argv: tuple[str, ...]  # after `python -m core`
    run_id: int | None  # from a trailing `# run N` comment
    skip_reason: str | None

    def __str__(self) -> str:
        return f"{self.document}:{self.line}: {self.text}"


def documented_commands(path: Path) -> list[Command]:
    name = path.relative_to(REPO_ROOT).as_posix()
    commands: list[Command] = []
    in_bash, in_other, skip_reason, last_text = False, False, None, ""
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.strip()
        if in_bash or in_other:
            if line.startswith("```"):
                in_bash = in_other = False
            elif in_bash and line.startswith(PREFIXES):
                assert not line.endswith("\\"), f"{name}:{number}: write the command on one line (the test reads line by line)"
                words = shlex.split(line, comments=True)
                start = 3 if words[0].endswith("python") and words[1:3] == ["-m", "core"] else None
                assert start is not None, f"{name}:{number}: cannot read {line!r}"
                comment = line.partition("#")[2].strip() if "#" in line else ""
                match = RUN_ID_COMMENT.match("#" + comment) if comment else None
                commands.append(Command(name, number, line, tuple(words[start:]), int(match.group(1)) if match else None, skip_reason))
            continue
        if line.startswith("```"):
            in_bash = line in ("```bash", "```sh", "```shell")
            in_other = not in_bash
            marker = SKIP_MARKER.match(last_text)
            skip_reason = marker.group("reason") if marker else None
            assert in_other or marker is not None or not last_text.startswith("<!--"), f"{name}:{number}: a comment above a block that is not the skip marker: {last_text!r}"
            continue
        if line:
            last_text = line
    return commands


ALL_COMMANDS = [command for path in DOCUMENTS if path.exists() for command in documented_commands(path)]


def test_the_documents_hold_the_commands_the_test_expects():
    ran = {document: sum(1 for c in ALL_COMMANDS if c.document == document and c.skip_reason is None) for document in EXPECTED_RUNS}
    assert all(ran[document] >= expected for document, expected in EXPECTED_RUNS.items()), f"commands that run, by document: {ran}; expected at least {EXPECTED_RUNS}"


def test_every_documented_command_parses():
    """Run or not, every command's flags are the CLI's own (its parser refuses in one line)."""
    from core.cli.main import build_parser
    from core.foundation.errors import UserError

    parser = build_parser()
    refused = []
    for command in ALL_COMMANDS:
        try:
            parser.parse_args(list(command.argv))
        except (UserError, SystemExit) as error:
            refused.append(f"{command}\n    {error}")
    assert not refused, "documented commands the CLI refuses:\n" + "\n".join(refused)


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces as dashes."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    return {slug(line.lstrip("#")) for line in path.read_text().splitlines() if re.match(r"^#{1,6} ", line)}


def test_every_link_in_the_documents_resolves():
    broken = []
    for path in DOCUMENTS:
        if not path.exists():
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", path.read_text()):
            if re.match(r"^[a-z]+://|^mailto:", target):
                continue
            file_part, _, anchor = target.partition("#")
            resolved = (path.parent / file_part).resolve() if file_part else path
            if not resolved.exists():
                broken.append(f"{path.name}: {target} (no such file)")
            elif anchor and resolved.suffix == ".md" and anchor not in anchors(resolved):
                broken.append(f"{path.name}: {target} (no such heading)")
    assert not broken, "broken links:\n" + "\n".join(broken)


REPO_PATH = re.compile(r"(?<![\w/.<-])((?:core|ui|pages|bench|tests|docs)/[\w./*<>-]*|app\.py)")


def test_every_repository_path_in_the_documents_exists():
    """A module path in the docs that no longer exists (a file moved or renamed) fails here."""
    missing = []
    for path in DOCUMENTS:
        if not path.exists():
            continue
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            for found in REPO_PATH.findall(line):
                candidate = found.rstrip(".,;:)")
                if "<" in candidate:  # a placeholder such as core/<technique>/config.py
                    continue
                exists = any(REPO_ROOT.glob(candidate)) if "*" in candidate else (REPO_ROOT / candidate).exists()
                if not exists:
                    missing.append(f"{path.relative_to(REPO_ROOT)}:{number}: {candidate}")
    assert not missing, "paths the docs name that do not exist:\n" + "\n".join(missing)


# Runs a document's commands in one process and writes what each one did to a JSON file as it goes
# (so a command that kills the process still leaves the earlier ones' results).
COMMAND_RUNNER = """
import contextlib, io, json, sys, time
from core.cli.main import main

commands, results_path, results = json.loads(sys.argv[1]), sys.argv[2], []
for argv in commands:
    stdout, stderr, started = io.StringIO(), io.StringIO(), time.perf_counter()
    with contextlib.redirect_stdout(stdout), contextlib.redirect_stderr(stderr):
        try:
            code = main(argv)
        except SystemExit as stop:
            code = stop.code if isinstance(stop.code, int) else 1
    results.append({"code": code, "stdout": stdout.getvalue(), "stderr": stderr.getvalue(), "seconds": time.perf_counter() - started})
    with open(results_path, "w") as file:
        json.dump(results, file)
    if code != 0:
        break
"""


@pytest.mark.slow
@pytest.mark.parametrize("document", sorted(EXPECTED_RUNS))
def test_documented_commands_run_as_written(document, tmp_path):
    runnable = [command for command in ALL_COMMANDS if command.document == document and command.skip_reason is None]
    assert len(runnable) >= EXPECTED_RUNS[document]
    workspace, cwd, results_path = tmp_path / "mel-home", tmp_path / "cwd", tmp_path / "results.json"
    cwd.mkdir()
    env = {key: value for key, value in os.environ.items() if key not in ("RAY_ADDRESS", "MEL_CLASSROOM", "MEL_DATA_DIR")}
    env["MEL_HOME"] = str(workspace)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")]))
    process = subprocess.run(
        [sys.executable, "-c", COMMAND_RUNNER, json.dumps([list(command.argv) for command in runnable]), str(results_path)], cwd=cwd, env=env, capture_output=True, text=True, timeout=1200
    )
    results = json.loads(results_path.read_text()) if results_path.exists() else []
    for command, result in zip(runnable, results, strict=False):
        assert result["code"] == 0, f"{command}\nexited {result['code']}:\n{result['stderr'][-3000:]}"
        payload = json.loads(result["stdout"].strip().splitlines()[-1])
        if command.run_id is not None:
            assert payload.get("run_id") == command.run_id, f"{command}\nprinted run_id {payload.get('run_id')}, the doc says run {command.run_id}"
    assert process.returncode == 0 and len(results) == len(runnable), f"the runner stopped after {len(results)} of {len(runnable)} commands (exit {process.returncode}):\n{process.stderr[-3000:]}"
    print("\n".join(f"{result['seconds']:6.1f} s  {command.text}" for command, result in zip(runnable, results, strict=True)))
