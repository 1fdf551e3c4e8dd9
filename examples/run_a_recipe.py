"""Run a recipe from Python, read its run folder as pandas, and rebuild its report.

    python examples/run_a_recipe.py [OUT]

Uses only the public API: ``iclab.run``, ``iclab.load_run``, ``iclab.rebuild_report``.
"""

import sys

import iclab

out = sys.argv[1] if len(sys.argv) > 1 else "runs"

# The headline recipe with a shorter schedule and batch (the quick mode is 1500 steps × 3
# seeds at batch 2048).
run = iclab.run("icl-gd", quick=True, out=out,
                set=["train.steps=400", "train.batch_size=512", "eval.tasks=2000",
                     "eval.ood_tasks=200"])
print(run.claims[["id", "measured", "criterion", "passed"]].to_string(index=False))

# Every table the measurement wrote, and the training history, as pandas.
loaded = iclab.load_run(run.path)
print(sorted(loaded.tables))
seeds = loaded.tables["seeds"]
print(seeds[["seed", "loss_ratio", "sens_cos"]].to_string(index=False))
curve = loaded.metrics.query("metric == 'test_loss'").groupby("step").value.mean()
print(f"test loss: {curve.iloc[0]:.4f} at step 0 -> {curve.iloc[-1]:.4f} at step {curve.index[-1]}")

# Re-evaluate the claims and re-render report.html from the folder alone (no training).
claims, checks = iclab.rebuild_report(run.path)
assert [c["measured"] for c in claims] == run.claims.measured.tolist()
print(f"report: {run.path / 'report.html'}")
