"""Tracker sinks: every metric row a run writes, also sent to TensorBoard or Weights &
Biases. Logging only: the run folder stays the source of truth, and a sink that fails
logs one warning and is dropped; it never stops a run.

Each row (step, seed, metric, value) is logged as the scalar ``{metric}/seed{seed}`` at
``step``. Several jobs of one run log at their own pace, so W&B's x-axis is a logged
``iclab_step`` (its own step counter must only grow).
"""

import abc
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, final

import tyro

SINKS = ("tensorboard", "wandb")


class SinkWarning(UserWarning):
    """A tracker sink failed and was dropped (the run goes on)."""


class MetricSink(abc.ABC):
    """Where metric rows go besides the run folder."""

    name: str

    @abc.abstractmethod
    def log(self, rows: dict[str, list]) -> None:
        """Log columns step, seed, metric, value (one ``RunDir.write_metrics`` part)."""

    @abc.abstractmethod
    def close(self) -> None:
        """Flush and close."""


@final
class TensorBoardSink(MetricSink):
    """Scalars in TensorBoard event files under ``logdir`` (``tensorboardX``).

    Args:
        logdir: the event files' folder (default: ``RUN/tensorboard``).
    """

    name = "tensorboard"

    def __init__(self, logdir: str | Path):
        from tensorboardX import SummaryWriter

        self.writer = SummaryWriter(logdir=str(logdir))

    def log(self, rows: dict[str, list]) -> None:
        for step, seed, metric, value in zip(rows["step"], rows["seed"], rows["metric"],
                                             rows["value"], strict=True):
            self.writer.add_scalar(f"{metric}/seed{seed}", value, global_step=step)

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()


@final
class WandbSink(MetricSink):
    """One W&B run per iclab run (``wandb``), named by the run id, with the run's config.

    Args:
        run_id: the W&B run's name.
        config: its config (the run's ``config.json``).
        project: the W&B project.
        mode: ``offline`` (default: written under ``directory``, no network; ``wandb sync``
            uploads it later), ``online`` or ``disabled``.
        directory: where W&B keeps its files (default: the run folder).
    """

    name = "wandb"

    def __init__(self, run_id: str, config: dict, project: str = "iclab",
                 mode: str = "offline", directory: str | Path = "."):
        import wandb

        # id = the run id: a resumed iclab run goes on logging into the same W&B run
        self.run = wandb.init(project=project, name=run_id, id=run_id, resume="allow",
                              config=config, mode=mode, dir=str(directory),
                              reinit="create_new")
        self.run.define_metric("iclab_step")
        self.run.define_metric("*", step_metric="iclab_step")

    def log(self, rows: dict[str, list]) -> None:
        by_step: dict[int, dict] = {}
        for step, seed, metric, value in zip(rows["step"], rows["seed"], rows["metric"],
                                             rows["value"], strict=True):
            by_step.setdefault(int(step), {})[f"{metric}/seed{seed}"] = value
        for step, values in sorted(by_step.items()):
            self.run.log({**values, "iclab_step": step})

    def close(self) -> None:
        self.run.finish()


class Sinks:
    """The sinks of one run: ``log`` sends rows to each; one that raises is dropped with a
    ``SinkWarning`` (and the callback ``warn``, e.g. a console line)."""

    def __init__(self, sinks: list[MetricSink], warn=None):
        import threading

        self.sinks = list(sinks)
        self.warn = warn
        self.lock = threading.Lock()  # concurrent jobs write from several threads

    def _drop(self, sink: MetricSink, err: BaseException) -> None:
        message = (f"tracker sink {sink.name} failed and is dropped (the run goes on): "
                   f"{type(err).__name__}: {err}")
        warnings.warn(message, SinkWarning, stacklevel=3)
        if self.warn is not None:
            self.warn(message)
        self.sinks.remove(sink)

    def log(self, rows: dict[str, list]) -> None:
        with self.lock:
            for sink in list(self.sinks):
                try:
                    sink.log(rows)
                except Exception as err:  # noqa: BLE001 - a sink never stops a run
                    self._drop(sink, err)

    def close(self) -> None:
        with self.lock:
            for sink in list(self.sinks):
                try:
                    sink.close()
                except Exception as err:  # noqa: BLE001
                    self._drop(sink, err)
            self.sinks = []


@dataclass(frozen=True)
class Tracking:
    """Tracker sinks for a run's metrics (logging only; the run folder stays the record).

    Args:
        track: the sinks, each of ``tensorboard`` (event files in ``RUN/tensorboard``;
            the ``tensorboard`` extra) and ``wandb`` (the ``wandb`` extra).
        wandb_project: the W&B project.
        wandb_mode: ``offline`` (no network; files in the run folder, ``wandb sync``
            uploads them), ``online`` or ``disabled``.
    """

    track: Annotated[tuple[str, ...], tyro.conf.UseAppendAction] = ()
    wandb_project: str = "iclab"
    wandb_mode: str = "offline"

    def check(self) -> None:
        """A ``ConfigError`` naming a bad option."""
        from iclab._errors import ConfigError

        for name in self.track:
            if name not in SINKS:
                raise ConfigError("--track", name, ", ".join(SINKS))
        if self.wandb_mode not in ("offline", "online", "disabled"):
            raise ConfigError("--wandb-mode", self.wandb_mode, "offline, online, disabled")

    def open(self, run, warn=None) -> "Sinks":
        return open_sinks(self.track, run, self.wandb_project, self.wandb_mode, warn)


def open_sinks(names, run, project: str = "iclab", wandb_mode: str = "offline",
               warn=None) -> Sinks:
    """The sinks ``names`` (each of ``SINKS``) for the run folder ``run``; one that cannot
    start (its package missing, its service refusing) is left out with a warning."""
    opened = []
    for name in dict.fromkeys(names):
        try:
            if name == "tensorboard":
                opened.append(TensorBoardSink(run.path / "tensorboard"))
            elif name == "wandb":
                opened.append(WandbSink(run.run_id, run.config(), project, wandb_mode,
                                        run.path))
            else:
                raise ValueError(f"unknown sink {name!r} (allowed: {', '.join(SINKS)})")
        except Exception as err:  # noqa: BLE001 - logging only: the run goes on
            message = f"tracker sink {name} not started (the run goes on): " \
                      f"{type(err).__name__}: {err}"
            warnings.warn(message, SinkWarning, stacklevel=2)
            if warn is not None:
                warn(message)
    return Sinks(opened, warn)
