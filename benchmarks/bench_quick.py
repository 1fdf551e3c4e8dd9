"""The in-context recipes' quick modes, one after the other, and where each run's time
went (issue "Performance": all eight together in at most 20 minutes on 2 cores).

Each recipe runs as ``iclab run RECIPE --quick`` in its own process (a fresh compilation
cache, so nothing is loaded from an earlier run) and the table is read from its
``timing.json``: the process's wall time; preparing (the config checked, the jobs and
their evaluation data and baselines built); training (the jobs side by side), and summed
over the jobs the seconds compiling their chunks, running their steps and the rest of
their fit (evaluations, probes, checkpoints); measuring and the report; the rest
(importing iclab, the run folder) is what is left of the wall time.

Usage:
    python benchmarks/bench_quick.py [RECIPE ...]       run them (about 25–45 minutes)
    python benchmarks/bench_quick.py --read ROOT        the table of finished runs in ROOT
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _timing import machine_line

RECIPES = ("icl-gd", "icl-gd-deep", "nonlinear-regression", "mesa", "versatile-lt",
           "function-classes", "induction-heads", "bursty-icl")


def run_one(recipe: str, root: Path) -> float:
    """Run ``recipe``'s quick mode into ``root``; its wall seconds."""
    env = {**os.environ, "ICLAB_COMPILE_CACHE": "off"}
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "iclab.cli", "run", recipe, "--quick",
                           "--out", str(root)], env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):  # 1: a claim fails, still a finished run
        print(f"{recipe}: exit {done.returncode}\n{done.stderr[-2000:]}", file=sys.stderr)
    return wall


def row(recipe: str, folder: Path, wall: float | None) -> dict:
    timing = json.loads((folder / "timing.json").read_text())
    status = json.loads((folder / "status.json").read_text())
    phases, jobs = timing["phases"], timing["jobs"].values()
    out = {"recipe": recipe, "wall": wall, "prepare": phases.get("prepare_s", 0.0),
           "train": phases.get("train_s", 0.0),
           "compile": sum(j["compile_s"] for j in jobs),
           "steps": sum(j["steps_s"] for j in jobs),
           "eval": sum(j["other_s"] for j in jobs),
           "measure": phases["measure_s"], "report": phases["report_s"],
           "claims": f"{status.get('claims_passed')}/{status.get('claims_total')}"}
    if wall is None:  # preparing, then the status timestamps (whole seconds; no import)
        import datetime as dt

        begun = dt.datetime.fromisoformat(status["started"])
        ended = dt.datetime.fromisoformat(status.get("ended") or status["finished"])
        out["wall"] = out["prepare"] + (ended - begun).total_seconds()
    return out


def table(rows: list[dict]) -> str:
    head = ("| recipe | wall | preparing | training | jobs: compiling | jobs: steps | "
            "jobs: evaluation | measuring | report | rest | claims |\n"
            "|---|---|---|---|---|---|---|---|---|---|---|")
    lines = [head]
    for r in rows:
        rest = r["wall"] - r["prepare"] - r["train"] - r["measure"] - r["report"]
        lines.append(f"| {r['recipe']} | {r['wall']:.0f} s | {r['prepare']:.0f} s | "
                     f"{r['train']:.0f} s | "
                     f"{r['compile']:.1f} s | {r['steps']:.0f} s | {r['eval']:.0f} s | "
                     f"{r['measure']:.0f} s | {r['report']:.0f} s | {rest:.0f} s | "
                     f"{r['claims']} |")
    keys = ("wall", "prepare", "train", "compile", "steps", "eval", "measure", "report")
    total = {k: sum(r[k] for r in rows) for k in keys}
    lines.append(f"| **all** | **{total['wall'] / 60:.1f} min** | {total['prepare']:.0f} s | "
                 f"{total['train']:.0f} s | {total['compile']:.0f} s | {total['steps']:.0f} s"
                 f" | {total['eval']:.0f} s | {total['measure']:.0f} s | "
                 f"{total['report']:.0f} s | | |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("recipes", nargs="*", default=list(RECIPES))
    parser.add_argument("--read", type=Path, default=None,
                        help="summarise the finished runs under this root instead")
    args = parser.parse_args()
    print(machine_line())
    rows = []
    if args.read is not None:
        for recipe in args.recipes:
            folders = sorted((args.read / recipe).glob("*/timing.json"))
            if folders:
                rows.append(row(recipe, folders[-1].parent, None))
    else:
        with tempfile.TemporaryDirectory() as tmp:
            for recipe in args.recipes:
                wall = run_one(recipe, Path(tmp))
                (folder,) = [p.parent for p in (Path(tmp) / recipe).glob("*/timing.json")]
                rows.append(row(recipe, folder, wall))
                print(f"{recipe}: {wall:.0f} s", flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
