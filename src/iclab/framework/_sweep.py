"""Sweeps: a recipe run at many points of its config, each point a run folder keyed by a
stable hash of its resolved config.

A sweep is a base (mode, seeds, ``--set``) and axes: ``grid`` axes (every combination),
``zip`` axes (varied together, one value of each at a time), and with ``random=N`` a
sample of N points of that product (without replacement) or of ``ranges`` (uniform,
log-uniform or integer draws). Every point is checked before anything is written.

The point's folder is ``ROOT/RECIPE/cfg-HASH`` where HASH is the first 12 hex digits of the
SHA-256 of its recipe, mode and resolved config: the same point in two sweeps is one run,
and a finished point is reused (mode ``cached``). The sweep itself is recorded in
``ROOT/_sweeps/ID.json`` (its id is a hash of its points), read by ``iclab runs --sweep
ID`` and by the sweep report ``ROOT/_sweeps/ID.html``.

Modes:
    cached: reuse complete and failed points; resume interrupted ones; run missing ones.
    retry: as cached, but rerun failed (and damaged) points.
    force: rerun every point from scratch.
    dry-run: print the plan (points, their state, jobs and shapes); write nothing.
"""

import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from iclab._errors import ConfigError

MODES = ("cached", "retry", "force", "dry-run")


@dataclass(frozen=True)
class Sweep:
    """What a sweep varies.

    Args:
        recipe: the recipe's name (or ``module:ATTR``).
        quick: the quick mode as base.
        seeds: seeds per point (default: the mode's).
        base: ``key=value`` overrides every point gets.
        grid: ``key=v1,v2,...`` axes, all combinations (``;`` separates values of a
            tuple-valued key: ``model.layers=softmax;softmax,linear``).
        zip: ``key=v1,v2,...`` axes varied together (equal lengths).
        random: sample this many points (of the product of grid and zip axes, without
            replacement; with ``ranges``, a product point and a draw of every range).
        ranges: ``key=low:high`` (uniform), ``key=low:high:log`` (log-uniform) or
            ``key=low:high:int`` (integers, both ends included); needs ``random``.
        seed: the random draws' seed.
    """

    recipe: str
    quick: bool = False
    seeds: int | None = None
    base: tuple[str, ...] = ()
    grid: tuple[str, ...] = ()
    zip: tuple[str, ...] = ()
    random: int | None = None
    ranges: tuple[str, ...] = ()
    seed: int = 0

    def axes(self) -> list[str]:
        """The swept keys, in the order given (grid, zip, ranges)."""
        return [_split_axis(a, "--grid")[0] for a in self.grid] + \
            [_split_axis(a, "--zip")[0] for a in self.zip] + \
            [_split_range(r)[0] for r in self.ranges]

    def points(self) -> list[dict[str, str]]:
        """Every point as {key: value text}, in grid order (or draw order)."""
        import numpy as np

        grid = [_split_axis(a, "--grid") for a in self.grid]
        zipped = [_split_axis(a, "--zip") for a in self.zip]
        if zipped and len({len(values) for _, values in zipped}) != 1:
            lengths = ", ".join(f"{k}: {len(v)}" for k, v in zipped)
            raise ConfigError("--zip", lengths, "axes of equal length")
        keys = [k for k, _ in grid] + [k for k, _ in zipped]
        if len(set(keys + [_split_range(r)[0] for r in self.ranges])) != \
                len(keys) + len(self.ranges):
            raise ConfigError("--grid/--zip/--range", keys, "each key on one axis only")
        factors = [[((k, v),) for v in values] for k, values in grid]
        if zipped:
            factors.append([tuple((k, values[i]) for k, values in zipped)
                            for i in range(len(zipped[0][1]))])
        product = [dict(item for part in combo for item in part)
                   for combo in itertools.product(*factors)]
        if self.ranges and self.random is None:
            raise ConfigError("--range", self.ranges[0], "--random N with it (N draws)")
        if self.random is None:
            return product
        if isinstance(self.random, bool) or not isinstance(self.random, int) \
                or self.random < 1:
            raise ConfigError("--random", self.random, "an integer > 0")
        rng = np.random.default_rng(self.seed)
        if not self.ranges:
            if self.random > len(product):
                raise ConfigError("--random", self.random,
                                  f"at most the {len(product)} points of the grid")
            return [product[i] for i in sorted(rng.choice(len(product), self.random,
                                                          replace=False))]
        out = []
        for _ in range(self.random):
            point = dict(product[int(rng.integers(len(product)))])
            for text in self.ranges:
                key, low, high, kind = _split_range(text)
                if kind == "int":
                    point[key] = str(int(rng.integers(int(low), int(high) + 1)))
                elif kind == "log":
                    point[key] = repr(float(math.exp(rng.uniform(math.log(low),
                                                                 math.log(high)))))
                else:
                    point[key] = repr(float(rng.uniform(low, high)))
            out.append(point)
        return out


def _split_axis(text: str, flag: str) -> tuple[str, list[str]]:
    if "=" not in text:
        raise ConfigError(flag, text, "KEY=V1,V2,... e.g. optim.lr=0.01,0.03")
    key, values = text.split("=", 1)
    separator = ";" if ";" in values else ","
    values = [v.strip() for v in values.split(separator)]
    if not key.strip() or not all(values):
        raise ConfigError(flag, text, "KEY=V1,V2,... with no empty value")
    return key.strip(), values


def _split_range(text: str) -> tuple[str, float, float, str]:
    allowed = "KEY=LOW:HIGH, KEY=LOW:HIGH:log (LOW > 0) or KEY=LOW:HIGH:int"
    if "=" not in text:
        raise ConfigError("--range", text, allowed)
    key, spec = text.split("=", 1)
    parts = spec.split(":")
    kind = parts[2] if len(parts) == 3 else "uniform"
    try:
        low, high = float(parts[0]), float(parts[1])
    except (ValueError, IndexError):
        raise ConfigError("--range", text, allowed) from None
    if len(parts) not in (2, 3) or kind not in ("uniform", "log", "int") or \
            not (math.isfinite(low) and math.isfinite(high) and low < high) or \
            (kind == "log" and low <= 0) or \
            (kind == "int" and not (low.is_integer() and high.is_integer())):
        raise ConfigError("--range", text, allowed)
    return key.strip(), low, high, kind


def config_hash(recipe_ref: str, mode: str, config_dict: dict) -> str:
    """12 hex digits of the SHA-256 of a point's recipe, mode and resolved config."""
    text = json.dumps({"recipe": recipe_ref, "mode": mode, "config": config_dict},
                      sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Point:
    """One resolved point: its swept values, its overrides (base and point), its config
    and its run folder."""

    values: dict[str, str]
    overrides: tuple[str, ...]
    recipe: Any
    config: Any
    mode: str
    hash: str
    path: Path

    @property
    def run_id(self) -> str:
        return self.path.name


def resolve(sweep: Sweep, root: str | Path) -> tuple[str, list[Point]]:
    """The sweep's id and its points, each config resolved and checked (a ``ConfigError``
    names the first bad point; nothing is written)."""
    from iclab.config import to_dict
    from iclab.framework._recipe import recipe_reference
    from iclab.framework._run import make_config

    points, seen = [], set()
    for values in sweep.points():
        overrides = tuple(sweep.base) + tuple(f"{k}={v}" for k, v in values.items())
        try:
            recipe, config, mode = make_config(sweep.recipe, sweep.quick, sweep.seeds,
                                               overrides)
        except ConfigError as err:
            where = " ".join(f"{k}={v}" for k, v in values.items())
            raise ConfigError(err.key, err.value, err.allowed, message=(
                f"sweep point {where}: {err}")) from None
        ref = recipe_reference(recipe) if ":" in sweep.recipe else recipe.name
        digest = config_hash(ref, mode, to_dict(config))
        if digest in seen:
            continue  # two spellings of one config: one point
        seen.add(digest)
        points.append(Point(values, overrides, recipe, config, mode, digest,
                            Path(root) / recipe.name / f"cfg-{digest}"))
    if not points:
        raise ConfigError("sweep", sweep.recipe, "at least one point (--grid, --zip or "
                          "--random with --range)")
    sweep_id = "s-" + hashlib.sha256(" ".join(p.hash for p in points).encode()
                                     ).hexdigest()[:10]
    return sweep_id, points


def point_state(point: Point) -> str:
    """missing, complete, failed, interrupted, running or damaged."""
    from iclab.store import state

    if not point.path.exists():
        return "missing"
    return state(point.path)


def action(state: str, mode: str) -> str:
    """What a sweep does with a point in ``state``: run, resume, rerun, reuse or skip."""
    if mode == "force":
        return "skip" if state == "running" else ("run" if state == "missing" else "rerun")
    return {"missing": "run", "interrupted": "resume", "complete": "reuse",
            "running": "skip", "failed": "rerun" if mode == "retry" else "reuse",
            "damaged": "rerun" if mode == "retry" else "skip"}[state]


def record(sweep: Sweep, sweep_id: str, points: list[Point], root: Path, argv=None) -> Path:
    """Write ``ROOT/_sweeps/ID.json`` (atomically): the sweep, its axes and points."""
    import datetime as dt
    import sys

    from iclab.store._run import _atomic_write_json

    folder = Path(root) / "_sweeps"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{sweep_id}.json"
    _atomic_write_json(path, {
        "id": sweep_id, "recipe": points[0].recipe.name, "mode": points[0].mode,
        "base": list(sweep.base), "axes": sweep.axes(), "seeds": sweep.seeds,
        "random": sweep.random, "seed": sweep.seed,
        "created": dt.datetime.now().isoformat(timespec="seconds"),
        "command": list(sys.argv if argv is None else argv),
        "points": [{"values": p.values, "overrides": list(p.overrides), "hash": p.hash,
                    "run": str(p.path.relative_to(root))} for p in points]})
    return path


def _open_point(point: Point, todo: str, root: Path, seeds, executor, argv):
    """The point's run folder (created for "run" and "rerun") and its jobs, or the
    "refused: …" of its preflight (nothing written)."""
    import shutil

    from iclab.framework._run import preflight, provenance, run_record
    from iclab.store import RunDir

    try:
        jobs = preflight(point.recipe, point.config, point.overrides, out=str(root))
    except ConfigError as err:
        return f"refused: {err}", None
    if todo == "rerun":
        shutil.rmtree(point.path)
    if todo in ("run", "rerun"):
        run = RunDir.create(root, point.recipe.name,
                            run_record(point.recipe, point.config, point.mode,
                                       point.overrides, seeds, executor=executor),
                            run_id=point.run_id, provenance=provenance(argv))
    else:
        run = RunDir(point.path)
    return run, jobs


def run_point(point: Point, todo: str, root: Path, seeds: int | None = None, executor=None,
              console=None, argv=None) -> str:
    """Run, resume or rerun one point; return its state afterwards ("refused: …" when its
    preflight refuses it: nothing is written). A point's failure is recorded in its folder
    (state "failed") and does not stop the sweep; Ctrl-C does."""

    run, jobs = _open_point(point, todo, root, seeds, executor, argv)
    if jobs is None:
        return run
    return _execute_point(point, run, jobs, console, executor=executor)


def _execute_point(point: Point, run, jobs, console, **options) -> str:
    """``execute`` one point; its state afterwards. A failure is recorded in its folder
    (state "failed", the error and traceback) and does not stop the sweep; Ctrl-C does."""
    from iclab.framework._run import execute

    try:
        outcome = execute(point.recipe, point.config, run, console=console, jobs=jobs,
                          **options)
    except KeyboardInterrupt:
        raise
    except Exception:  # noqa: BLE001 - recorded in the point's folder
        return "failed"
    return "complete" if outcome is not None else "interrupted"


def _run_points_together(points, todo, indices, root, sweep, executor, console, argv,
                         out: list[str]) -> None:
    """Every point's unfinished jobs at once on ``executor`` (one process pool, one SLURM
    array, one set of Ray tasks), then each point measured here (its jobs restore their
    final checkpoints). A point whose shard failed is recorded as failed with the error."""
    from iclab.framework._executors import ShardFailed, dispatch_many

    opened = []
    for i in indices:
        run, jobs = _open_point(points[i], todo[i], root, sweep.seeds, executor, argv)
        if jobs is None:
            out[i] = run
        else:
            opened.append((i, run, jobs))
    failed: dict[str, str] = {}
    try:
        records = dispatch_many(executor, [(run, jobs) for _, run, jobs in opened], console)
    except ShardFailed as err:
        records, failed = None, err.by_run
    if records is not None:  # submitted without waiting
        for i, run, _ in opened:
            run.set_status("interrupted", submitted=records.get(str(run.path), []),
                           executor=executor.kind, note="jobs submitted; the same sweep "
                           "command measures the points once they finished")
            out[i] = "interrupted"
        return
    for i, run, jobs in opened:
        if run.run_id in failed:
            run.set_status("failed", error=failed[run.run_id])
            out[i] = "failed"
            continue
        if console is not None:
            console.print(f"measuring point {i + 1}/{len(points)} ({run.path})",
                          highlight=False)
        out[i] = _execute_point(points[i], run, jobs, console)


def _run_packed(points, todo, indices, root, sweep, console, argv, out: list[str]) -> set:
    """Train the points to run that pack (see ``iclab.framework._pack``) group by group;
    return the indices handled here."""
    from iclab.framework._pack import jobs_pack, pack_key, train_packed

    groups: dict[str, list[int]] = {}
    for i in indices:
        if todo[i] in ("run", "rerun"):
            groups.setdefault(pack_key(points[i]), []).append(i)
    handled = set()
    for members in groups.values():
        if len(members) < 2:
            continue
        opened = []
        for i in members:
            run, jobs = _open_point(points[i], todo[i], root, sweep.seeds, None, argv)
            handled.add(i)
            if jobs is None:
                out[i] = run
            else:
                opened.append((i, run, jobs))
        together = len(opened) > 1 and jobs_pack([jobs for _, _, jobs in opened])
        trained = train_packed([(points[i], run, jobs) for i, run, jobs in opened], console) \
            if together else [None] * len(opened)
        ids = [run.run_id for _, run, _ in opened]
        for (i, run, jobs), done in zip(opened, trained, strict=True):
            if together:
                run.set_status("running", packed_with=[r for r in ids if r != run.run_id])
            out[i] = _execute_point(points[i], run, jobs, console, trained=done)
    return handled


def job_shape(job) -> tuple:
    """A job's static shape: its model's array shapes, its optimiser's name, and its
    steps, batch and seeds. Jobs of one shape compile to one program."""
    import equinox as eqx
    import jax

    model = eqx.filter_eval_shape(job.problem.init_model, jax.random.key(0))
    leaves = tuple((tuple(x.shape), str(x.dtype)) for x in jax.tree.leaves(model)
                   if isinstance(x, jax.ShapeDtypeStruct))
    return (leaves, job.optim.name, job.train.steps, job.train.batch_size, job.train.seeds)


def plan(points: list["Point"], mode: str) -> "tuple[list[str], list[str]]":
    """Each point's state and what the sweep does with it."""
    states = [point_state(p) for p in points]
    return states, [action(s, mode) for s in states]


def run_sweep(sweep: Sweep, root: str | Path = "runs", mode: str = "cached", executor=None,
              console=None, argv=None, pack: bool = False) -> tuple[str, list[str]]:
    """Run every point of ``sweep`` under the store root ``root`` (see the module's
    docstring for the modes); write the sweep record and report.

    With ``pack`` (local executor) the points to run that differ only in learning rates
    train as one vmapped program per job (``iclab.framework._pack``).

    Returns:
        The sweep id and each point's state afterwards (a point refused by its preflight
        reads "refused: …"; with mode "dry-run", what would be done).

    Raises:
        ConfigError: a bad mode, executor option or point (nothing is written).
    """
    from iclab.framework._preflight import check_store_root

    if mode not in MODES:
        raise ConfigError("--mode", mode, ", ".join(MODES))
    if pack and executor is not None and executor.kind != "local":
        raise ConfigError("--pack", executor.kind, "--executor local (packed points "
                          "train in this process)")
    if executor is not None:
        executor.check()
    root = Path(root)
    check_store_root(str(root))
    sweep_id, points = resolve(sweep, root)
    states, todo = plan(points, mode)
    if mode == "dry-run":
        return sweep_id, todo
    record(sweep, sweep_id, points, root, argv)
    out = list(states)
    indices = [i for i, what in enumerate(todo) if what not in ("reuse", "skip")]
    if executor is not None and executor.kind != "local" and indices:
        _run_points_together(points, todo, indices, root, sweep, executor, console, argv,
                             out)
        write_report(root, sweep_id)
        return sweep_id, out
    done = _run_packed(points, todo, indices, root, sweep, console, argv, out) if pack \
        else set()
    for i, (point, what) in enumerate(zip(points, todo, strict=True)):
        if what in ("reuse", "skip") or i in done:
            continue
        if console is not None:
            where = " ".join(f"{k}={v}" for k, v in point.values.items())
            console.print(f"[bold]point {i + 1}/{len(points)}[/bold] {where}: {what} "
                          f"({point.path})", highlight=False)
        out[i] = run_point(point, what, root, sweep.seeds, executor, console, argv)
    write_report(root, sweep_id)
    return sweep_id, out


def write_report(root: str | Path, sweep_id: str) -> Path:
    """``ROOT/_sweeps/ID.html``: the points' table and, for each claim and final metric,
    its value over the grid (a heatmap over two axes, curves over one)."""
    from importlib import resources

    import jinja2

    from iclab.framework._report import _fmt, _svg, inline_svg
    from iclab.store._sweeps import load_sweep

    record, table = load_sweep(sweep_id, root)
    axes = [a for a in record["axes"] if a in table.columns]
    quantities = [c for c in table.columns if c.startswith(("claim:", "metric:"))]
    figures = []
    for name in quantities[:24]:
        fig = sweep_figure(table, axes, name)
        if fig is not None:
            figures.append({"name": name, "svg": inline_svg(_svg(fig), f"f{len(figures)}")})
    columns = [*axes, "run_id", "state", "claims", *quantities]
    rows = [[_fmt(v) if not isinstance(v, str) else v for v in row]
            for row in table[columns].astype(object).values.tolist()]
    template = resources.files("iclab.report").joinpath("templates/sweep.html.j2").read_text()
    env = jinja2.Environment(autoescape=jinja2.select_autoescape(default=True))
    html = env.from_string(template).render(
        record=record, columns=columns, rows=rows, figures=figures,
        states=table.state.value_counts().to_dict())
    path = Path(root) / "_sweeps" / f"{sweep_id}.html"
    from iclab.store._run import _atomic_write_bytes

    _atomic_write_bytes(path, html.encode())
    return path


def _numeric(values) -> "list[float] | None":
    try:
        return [float(v) for v in values]
    except (TypeError, ValueError):
        return None


def sweep_figure(table, axes: list[str], quantity: str):
    """One quantity over the sweep's axes: a heatmap over the first two axes (the mean over
    any others), or curves against the first axis (one per value of the second), or for one
    axis a single curve; a log axis where the values are positive and span a factor > 20.
    None when the quantity is nowhere finite."""
    import numpy as np

    from iclab.report import figure, style

    data = table[[*axes, quantity]].copy()
    data[quantity] = data[quantity].astype(float)
    if not np.isfinite(data[quantity]).any() or not axes:
        return None
    fig, (ax,) = figure(1, width=5.0, height=3.6)
    first = axes[0]
    xs = _numeric(data[first])
    if len(axes) >= 2 and (data[axes[1]].nunique() > 6 or xs is None):
        grid = data.pivot_table(index=axes[1], columns=first, values=quantity,
                                aggfunc="mean")
        image = ax.imshow(grid.to_numpy(float), aspect="auto", cmap="viridis",
                          origin="lower")
        ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns], fontsize=7,
                      rotation=45)
        ax.set_yticks(range(grid.shape[0]), [str(i) for i in grid.index], fontsize=7)
        fig.colorbar(image, ax=ax, shrink=0.85, label=quantity.split(":", 1)[1])
        style(ax, first, axes[1], quantity)
        return fig
    groups = [(None, data)] if len(axes) == 1 else list(data.groupby(axes[1], sort=True))
    for label, part in groups:
        part = part.groupby(first, sort=False)[quantity].mean().reset_index()
        x = _numeric(part[first]) or list(range(len(part)))
        order = np.argsort(x)
        ax.plot(np.asarray(x)[order], part[quantity].to_numpy(float)[order], "o-",
                label=None if label is None else f"{axes[1]}={label}")
    values = data[quantity].to_numpy(float)
    finite = values[np.isfinite(values)]
    xscale = "log" if xs is not None and min(xs) > 0 and max(xs) / min(xs) > 20 else None
    yscale = "log" if finite.size and finite.min() > 0 and finite.max() / finite.min() > 20 \
        else None
    style(ax, first + (" (log scale)" if xscale else ""),
          quantity.split(":", 1)[1] + (" (log scale)" if yscale else ""), quantity,
          xscale=xscale, yscale=yscale, legend=7 if len(groups) > 1 else None)
    return fig
