"""One run folder: config, status, metric parts, checkpoint, claims; and the lock held by
the process writing it."""

import contextlib
import datetime as _dt
import json
import math
import os
import secrets
import socket
import tempfile
from pathlib import Path
from typing import Any

import equinox as eqx
import pyarrow as pa
import pyarrow.parquet as pq

METRIC_SCHEMA = pa.schema([("step", pa.int64()), ("seed", pa.int64()),
                           ("metric", pa.string()), ("value", pa.float64())])


_UMASK = os.umask(0)
os.umask(_UMASK)


class MetricRows:
    """Long-format metric rows (step, seed, metric, value) for ``RunDir.write_metrics``."""

    def __init__(self):
        self.columns: dict[str, list] = {"step": [], "seed": [], "metric": [], "value": []}

    def add(self, step: int, seed: int, metric: str, value: float) -> None:
        self.columns["step"].append(int(step))
        self.columns["seed"].append(int(seed))
        self.columns["metric"].append(metric)
        self.columns["value"].append(float(value))


def new_run_id() -> str:
    """``YYYYmmdd-HHMMSS-xxxx``: sortable by start time, unique across processes."""
    return _dt.datetime.now().strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(2)


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp creates 0600; use the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, ±inf) replaced by None, so that it is
    strict JSON (``json.dumps`` would write the non-standard ``NaN`` / ``Infinity``)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json(v) for v in obj]
    if hasattr(obj, "item") and getattr(obj, "shape", None) == ():  # numpy scalars
        return strict_json(obj.item())
    return obj


def _atomic_write_json(path: Path, obj: Any) -> None:
    text = json.dumps(strict_json(obj), indent=2, allow_nan=False)
    _atomic_write_bytes(path, (text + "\n").encode())


STATES = ("running", "interrupted", "failed", "complete")
"""What ``status.json`` says of a run. A "running" run whose lock no process holds was
killed and is listed as interrupted; "incomplete" (written before these states) reads as
interrupted too."""


class RunBusy(RuntimeError):
    """Another live process holds the run folder's lock."""


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


class RunDir:
    """Reads and writes one run folder. All writes are atomic (temp file + rename)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.sinks = None  # optional tracker sinks (``iclab.store.Sinks``) for metric rows

    # -- lifecycle ---------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike, recipe: str, config: dict, run_id: str | None = None,
               provenance: dict | None = None) -> "RunDir":
        """A new run folder in state "running" (``hold`` it while writing).

        Args:
            root: the store root.
            recipe: the recipe's name (the folder under ``root``).
            config: written as ``config.json``.
            run_id: default ``new_run_id()``.
            provenance: written as ``provenance.json`` (versions, command line, device).
        """
        import shutil

        given = run_id is not None
        parent = Path(root) / recipe
        parent.mkdir(parents=True, exist_ok=True)
        for _ in range(8):  # a generated id taken by another process: draw again
            run_id = run_id if given else new_run_id()
            final = parent / run_id
            # written in a hidden folder, then renamed: a listing never sees half a run
            draft = cls(parent / f".creating-{run_id}-{os.getpid()}-{secrets.token_hex(2)}")
            draft.path.mkdir()
            try:
                (draft.path / "metrics").mkdir()
                (draft.path / "figures").mkdir()
                _atomic_write_json(draft.path / "config.json", config)
                if provenance is not None:
                    _atomic_write_json(draft.path / "provenance.json", provenance)
                draft.set_status("running", recipe=recipe, run_id=run_id, started=_now())
                if final.exists():
                    raise FileExistsError(str(final))
                os.rename(draft.path, final)  # fails if another process made it meanwhile
            except OSError:
                shutil.rmtree(draft.path, ignore_errors=True)
                if given or not final.exists():
                    raise
                continue
            return cls(final)
        raise FileExistsError(f"no free run id under {parent}")

    # -- the writer's lock -------------------------------------------------------
    @contextlib.contextmanager
    def hold(self, name: str = "lock"):
        """Hold the run's lock (``lock``: an ``flock`` on a file in the folder) while
        writing it. The kernel drops the lock when the process dies, so a lock left by a
        killed process is simply taken over.

        A process that trains one of the run's jobs for an executor holds that job's own
        lock (``name="lock-job-{tag}"``) instead, beside the driver's.

        Raises:
            RunBusy: a live process holds it (the message names its pid, host and start).
        """
        import fcntl

        fd = os.open(self.path / name, os.O_RDWR | os.O_CREAT, 0o666 & ~_UMASK)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise RunBusy(self.busy(name) or f"run {self.run_id} is being written"
                              ) from None
            record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                                 "since": _now()}).encode()
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)
            yield self
        finally:
            os.close(fd)  # releases the flock

    def busy(self, name: str = "lock") -> str | None:
        """"run … is being written by pid P on H (since T)" when a live process holds the
        lock ``name``, else None."""
        holder = self.lock_holder(name)
        if holder is None:
            return None
        what = "" if name == "lock" else f" ({name.removeprefix('lock-')})"
        return (f"run {self.run_id}{what} is being written by pid {holder.get('pid', '?')} on "
                f"{holder.get('host', '?')} (since {holder.get('since', '?')})")

    def lock_holder(self, name: str = "lock") -> dict | None:
        """Who holds the lock ``name`` ({pid, host, since}), or None when no live process
        does."""
        import fcntl

        path = self.path / name
        if not path.exists():
            return None
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                try:
                    return json.loads(path.read_text() or "{}")
                except (OSError, ValueError):
                    return {}
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    @property
    def run_id(self) -> str:
        return self.path.name

    def status(self) -> dict:
        return json.loads((self.path / "status.json").read_text())

    def set_status(self, status: str, **extra: Any) -> None:
        """Set ``status.json``'s state (one of ``STATES``) and any extra fields; a final
        state ("interrupted", "failed", "complete") also records ``ended``."""
        if status not in STATES:
            raise ValueError(f"run status {status!r} is not one of {STATES}")
        try:
            current = self.status()
            current = current if isinstance(current, dict) else {}
        except (OSError, ValueError):
            current = {}
        if status != "running":
            extra.setdefault("ended", _now())
        else:
            current.pop("ended", None)
            current.pop("error", None)
        current.update(extra, status=status)
        _atomic_write_json(self.path / "status.json", current)

    def provenance(self) -> dict:
        path = self.path / "provenance.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def config(self) -> dict:
        return json.loads((self.path / "config.json").read_text())

    # -- metrics -----------------------------------------------------------------
    def write_metrics(self, part: str, rows: "dict[str, list] | MetricRows") -> None:
        """Write one Parquet part of long-format rows (columns step, seed, metric, value).

        Writing the same ``part`` again replaces it, so a chunk redone after a
        resume does not duplicate rows.
        """
        if isinstance(rows, MetricRows):
            rows = rows.columns
        table = pa.Table.from_pydict(rows, schema=METRIC_SCHEMA)
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink)
        _atomic_write_bytes(self.path / "metrics" / f"{part}.parquet", sink.getvalue().to_pybytes())
        if self.sinks is not None:
            self.sinks.log(rows)

    def metric_parts(self) -> list[Path]:
        return sorted((self.path / "metrics").glob("*.parquet"))

    def metrics(self):
        """All metric rows of this run as a pandas DataFrame (step, seed, metric, value)."""
        from iclab.store._query import load_metrics

        return load_metrics(self.path)

    # -- checkpoint --------------------------------------------------------------
    def save_checkpoint(self, state: Any, step: int, name: str = "checkpoint") -> None:
        """Serialise the training state (Equinox leaves) atomically, then record its step.

        ``name`` tells apart the checkpoints of several models trained in one run.
        """
        import io

        buffer = io.BytesIO()
        eqx.tree_serialise_leaves(buffer, state)
        _atomic_write_bytes(self.path / f"{name}.eqx", buffer.getvalue())
        _atomic_write_json(self.path / f"{name}.json", {"step": int(step)})

    def checkpoint_step(self, name: str = "checkpoint") -> int | None:
        path = self.path / f"{name}.json"
        return json.loads(path.read_text())["step"] if path.exists() else None

    def checkpoint_steps(self) -> dict[str, int]:
        """The step of every checkpoint in the run: {"checkpoint": step} for a single
        model, {"checkpoint-{tag}": step, ...} for a run that trains several."""
        return {path.stem: json.loads(path.read_text())["step"]
                for path in sorted(self.path.glob("checkpoint*.json"))}

    def mark_stopped(self, step: int, name: str = "checkpoint") -> None:
        """Record that the checkpoint ``name`` (at ``step``) is final: its training stopped
        early by its rule, so no executor sends it to train again."""
        _atomic_write_json(self.path / f"{name}.json", {"step": int(step), "stopped": True})

    def finished_checkpoints(self, steps: dict[str, int]) -> set[str]:
        """The checkpoints that reached their step in ``steps`` ({name: last step}) or were
        marked stopped."""
        done = set()
        for name, last in steps.items():
            path = self.path / f"{name}.json"
            try:
                record = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            if record.get("step", -1) >= last or record.get("stopped"):
                done.add(name)
        return done

    def load_checkpoint(self, like: Any, name: str = "checkpoint") -> Any:
        return eqx.tree_deserialise_leaves(self.path / f"{name}.eqx", like)

    # -- claims and artefacts ----------------------------------------------------
    def write_claims(self, claims: list[dict]) -> None:
        _atomic_write_json(self.path / "claims.json", claims)

    def claims(self) -> list[dict]:
        path = self.path / "claims.json"
        return json.loads(path.read_text()) if path.exists() else []

    def write_json(self, name: str, obj: Any) -> None:
        _atomic_write_json(self.path / name, obj)

    def write_text(self, name: str, text: str) -> None:
        self.write_bytes(name, text.encode())

    def write_bytes(self, name: str, data: bytes) -> None:
        """Write ``name`` (a path inside the run folder; parents are created) atomically."""
        path = self.path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        _atomic_write_bytes(path, data)

    def checks(self) -> list[dict]:
        path = self.path / "checks.json"
        return json.loads(path.read_text()) if path.exists() else []
