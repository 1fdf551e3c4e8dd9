"""Tracker sinks: TensorBoard event files and W&B's offline run hold exactly the rows the
run folder holds; a sink that fails is dropped with a warning and the run goes on."""

import struct
from pathlib import Path

import numpy as np
import pytest

import iclab
from executor_recipe import RECIPE
from iclab.cli import main
from iclab.store import MetricRows, MetricSink, RunDir, Sinks, SinkWarning, Tracking


def _records(data: bytes, offset: int, block: int | None):
    """Payloads of a TFRecord file (block None) or of LevelDB's log format (W&B's
    ``.wandb`` files: 32 KiB blocks of chunks with a 7-byte header)."""
    out, pos, partial = [], offset, b""
    while pos < len(data):
        if block is None:
            (length,) = struct.unpack("<Q", data[pos:pos + 8])
            out.append(data[pos + 12:pos + 12 + length])
            pos += 12 + length + 4
            continue
        if block - pos % block < 7:
            pos += block - pos % block
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        if length == 0 and kind == 0:
            pos += block - pos % block
            continue
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind == 1:
            out.append(chunk)
        elif kind == 2:
            partial = chunk
        elif kind == 3:
            partial += chunk
        elif kind == 4:
            out.append(partial + chunk)
    return out


def _expected(run) -> dict[tuple[str, int], float]:
    return {(f"{m}/seed{s}", int(step)): v for step, s, m, v in
            run.metrics[["step", "seed", "metric", "value"]].itertuples(index=False)}


def test_tensorboard_and_wandb_offline_get_every_row(tmp_path):
    from tensorboardX.proto import event_pb2
    from wandb.proto import wandb_internal_pb2

    run = iclab.run(RECIPE, out=tmp_path, set=["train.steps=20", "train.eval_every=10"],
                    tracking=Tracking(track=("tensorboard", "wandb")))
    expected = _expected(run)
    assert len(expected) == 2 * 2 * (3 + 2)  # jobs × seeds × (test loss at 0, 10, 20 and
    #                                          train loss at 10, 20)
    (events,) = list((run.path / "tensorboard").glob("events.out.tfevents.*"))
    logged = {}
    for payload in _records(events.read_bytes(), 0, None):
        event = event_pb2.Event.FromString(payload)
        for value in event.summary.value:
            logged[(value.tag, event.step)] = value.simple_value
    assert logged.keys() == expected.keys()
    np.testing.assert_allclose([logged[k] for k in expected], list(expected.values()),
                               rtol=1e-6)

    (offline,) = list((run.path / "wandb").glob("offline-run-*/run-*.wandb"))
    history = []
    for payload in _records(offline.read_bytes(), 7, 32768):
        record = wandb_internal_pb2.Record.FromString(payload)
        if record.WhichOneof("record_type") == "history":
            items = {"/".join(i.nested_key) or i.key: i.value_json
                     for i in record.history.item}
            step = int(float(items.pop("iclab_step")))
            history += [((k, step), float(v)) for k, v in items.items()
                        if not k.startswith("_")]
    assert dict(history).keys() == expected.keys()
    np.testing.assert_allclose([dict(history)[k] for k in expected], list(expected.values()),
                               rtol=1e-12)


class _Broken(MetricSink):
    name = "broken"

    def log(self, rows):
        raise ConnectionError("the tracker is unreachable")

    def close(self):
        pass


def test_a_failing_sink_is_dropped_with_a_warning_and_the_rows_are_kept(tmp_path):
    run = RunDir.create(tmp_path, "r", {"config": {}})
    said = []
    run.sinks = Sinks([_Broken()], warn=said.append)
    rows = MetricRows()
    rows.add(1, 0, "loss", 0.5)
    with pytest.warns(SinkWarning, match="unreachable"):
        run.write_metrics("train-1", rows)
    run.write_metrics("train-2", rows)  # dropped: no second warning
    assert len(said) == 1 and "the run goes on" in said[0]
    assert len(run.metrics()) == 2


def test_bad_tracking_options_are_one_line_errors(tmp_path, capsys):
    for argv, says in [(["--track", "mlflow"], "tensorboard, wandb"),
                       (["--wandb-mode", "sometimes"], "offline, online, disabled")]:
        assert main(["run", "executor_recipe:RECIPE", "--out", str(tmp_path), *argv]) == 2
        assert says in capsys.readouterr().err
    assert not any(Path(tmp_path).iterdir())
