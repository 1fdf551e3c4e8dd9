"""Is a run folder readable, and in which state is it?

A store root holds many run folders, written by processes that may have been killed,
by disks that filled up, or by hand. ``diagnose`` says in one line what is wrong with a
folder (None when nothing is); listings and queries skip what it flags, with a warning
naming the folder, and list it as "damaged".
"""

import json
import warnings
from pathlib import Path

from iclab.store._run import STATES, RunDir


class DamagedRunWarning(UserWarning):
    """A run folder was skipped because it cannot be read (the message says why)."""


_MARKERS = ("status.json", "config.json", "metrics")


def run_folders(roots: list[Path]) -> list[Path]:
    """Run folders under each root: the root itself when it is one, else every
    ``<root>/<recipe>/<run_id>/`` holding a status.json, config.json or metrics/ (so a run
    whose status.json is missing is found, and reported as damaged, not hidden)."""
    found = []
    for root in roots:
        if any((root / m).exists() for m in _MARKERS):
            found.append(root)
            continue
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.glob("*/*") if p.is_dir()
                             and not p.name.startswith(".")):  # (.creating-*: being made)
            if any((folder / m).exists() for m in _MARKERS):
                found.append(folder)
    return found


def _read_json(path: Path, kind: type, what: str) -> tuple[object, str | None]:
    try:
        text = path.read_text()
    except OSError as err:
        return None, f"{path.name} unreadable ({err.strerror or err})"
    except UnicodeDecodeError:
        return None, f"{path.name} is not UTF-8 text"
    if not text.strip():
        return None, f"{path.name} is empty"
    try:
        value = json.loads(text)
    except ValueError as err:
        return None, f"{path.name} is not valid JSON ({err.msg} at line {err.lineno})"
    if not isinstance(value, kind):
        return None, f"{path.name} is not {what}"
    return value, None


def _parquet_problem(folder: Path) -> str | None:
    import pyarrow.parquet as pq

    for part in sorted(folder.glob("*.parquet")):
        try:
            pq.read_metadata(part)
        except Exception as err:  # noqa: BLE001 - any unreadable footer is damage
            first = str(err).splitlines()[0] if str(err) else type(err).__name__
            return f"{folder.name}/{part.name} is not a readable Parquet file ({first})"
    return None


def diagnose(path: str | Path, deep: bool = True) -> str | None:
    """What is wrong with the run folder at ``path`` (one line), or None.

    Checked: ``status.json`` (present, a JSON object with a known ``status``),
    ``config.json`` (present, a JSON object), ``claims.json`` / ``checks.json`` (when
    present: lists of rows with ``id`` and ``passed``), checkpoint records, and with
    ``deep`` the footer of every Parquet part under ``metrics/`` and ``tables/``.
    """
    path = Path(path)
    if not (path / "status.json").exists():
        return "status.json is missing"
    status, problem = _read_json(path / "status.json", dict, "a JSON object")
    if problem:
        return problem
    if status.get("status") not in STATES + ("incomplete",):
        return f"status.json has an unknown status {status.get('status')!r}"
    if not (path / "config.json").exists():
        return "config.json is missing"
    _, problem = _read_json(path / "config.json", dict, "a JSON object")
    if problem:
        return problem
    for name in ("claims.json", "checks.json"):
        if (path / name).exists():
            rows, problem = _read_json(path / name, list, "a JSON list of rows")
            if problem:
                return problem
            if not all(isinstance(r, dict) and "id" in r and "passed" in r for r in rows):
                return f"{name} has rows without 'id' and 'passed'"
    for record in sorted(path.glob("checkpoint*.json")):
        value, problem = _read_json(record, dict, "a JSON object")
        if problem:
            return problem
        if not isinstance(value.get("step"), int):
            return f"{record.name} has no integer step"
    if deep:
        for sub in ("metrics", "tables"):
            problem = _parquet_problem(path / sub)
            if problem:
                return problem
    return None


def state(path: str | Path, status: dict | None = None) -> str:
    """One of running, interrupted, failed, complete (``STATES``), or "damaged".

    A "running" status whose lock no live process holds (the process was killed) reads
    as "interrupted".
    """
    if status is None:
        if diagnose(path, deep=False) is not None:
            return "damaged"
        status = json.loads((Path(path) / "status.json").read_text())
    value = status.get("status")
    if value == "incomplete":
        return "interrupted"
    if value == "running" and RunDir(path).lock_holder() is None:
        return "interrupted"
    return value


def warn_damaged(path: Path, problem: str) -> None:
    warnings.warn(f"skipping damaged run {path}: {problem}", DamagedRunWarning, stacklevel=3)
