"""One run folder: config, status, metric parts, checkpoint, claims."""

import datetime as _dt
import json
import os
import secrets
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


def _atomic_write_json(path: Path, obj: Any) -> None:
    _atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode())


class RunDir:
    """Reads and writes one run folder. All writes are atomic (temp file + rename)."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    # -- lifecycle ---------------------------------------------------------------
    @classmethod
    def create(cls, root: str | os.PathLike, recipe: str, config: dict, run_id: str | None = None
               ) -> "RunDir":
        run_id = run_id or new_run_id()
        run = cls(Path(root) / recipe / run_id)
        run.path.mkdir(parents=True, exist_ok=False)
        (run.path / "metrics").mkdir()
        (run.path / "figures").mkdir()
        _atomic_write_json(run.path / "config.json", config)
        run.set_status("incomplete", recipe=recipe, run_id=run_id,
                       started=_dt.datetime.now().isoformat(timespec="seconds"))
        return run

    @property
    def run_id(self) -> str:
        return self.path.name

    def status(self) -> dict:
        return json.loads((self.path / "status.json").read_text())

    def set_status(self, status: str, **extra: Any) -> None:
        current = self.status() if (self.path / "status.json").exists() else {}
        current.update(extra, status=status)
        _atomic_write_json(self.path / "status.json", current)

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
