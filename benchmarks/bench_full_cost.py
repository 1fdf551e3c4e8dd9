"""Each recipe's full mode against its quick mode in training work: the sum over jobs of
steps × batch × seeds × parameters (the models' parameter counts from their shapes, no
training), and the ratio full / quick. With a quick mode's measured wall time (``--quick-
minutes RECIPE=M``, e.g. from docs/results) the ratio projects the full mode's time on the
same machine: a first-order projection (per-example cost ∝ parameters; attention's T² and
evaluation are not counted).

Usage: python benchmarks/bench_full_cost.py [RECIPE ...] [--quick-minutes icl-gd=0.4 ...]
"""

import argparse
import math

import equinox as eqx
import jax

from _timing import machine_line
from iclab.framework import recipes
from iclab.framework._run import build_jobs


def work(jobs) -> tuple[int, float]:
    """(jobs, Σ steps × batch × seeds × parameters)."""
    total = 0.0
    for job in jobs:
        model = eqx.filter_eval_shape(job.problem.init_model, jax.random.key(0))
        params = sum(math.prod(x.shape) for x in jax.tree.leaves(model)
                     if isinstance(x, jax.ShapeDtypeStruct))
        total += job.train.steps * job.train.batch_size * job.train.members * params
    return len(jobs), total


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("recipes", nargs="*")
    parser.add_argument("--quick-minutes", nargs="*", default=[])
    args = parser.parse_args()
    minutes = dict(item.split("=") for item in args.quick_minutes)
    print(machine_line())
    print(f"{'recipe':>22} {'quick jobs':>10} {'full jobs':>9} {'work ratio':>11} "
          f"{'projected full':>15}")
    for name, recipe in recipes().items():
        if args.recipes and name not in args.recipes:
            continue
        try:
            quick_jobs, quick = work(build_jobs(recipe, recipe.quick()))
            full_jobs, full = work(build_jobs(recipe, recipe.full()))
        except Exception as err:  # noqa: BLE001 - reported in the table
            print(f"{name:>22}  (not measurable here: {type(err).__name__}: "
                  f"{str(err)[:60]})")
            continue
        if not quick:
            print(f"{name:>22} {quick_jobs:>10} {full_jobs:>9}  (trains nothing)")
            continue
        ratio = full / quick
        projected = "–"
        if name in minutes:
            hours = float(minutes[name]) * ratio / 60
            projected = f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.0f} min"
        print(f"{name:>22} {quick_jobs:>10} {full_jobs:>9} {ratio:>11.1f} {projected:>15}")


if __name__ == "__main__":
    main()
