"""entropy-collapse: the bound check's tables against an independent numpy computation,
and a smoke run of the whole recipe (tables, claims and checks evaluated, figures drawn)."""

import json

import numpy as np
import pytest

from iclab.cli import main
from iclab.recipes.entropy_collapse import BoundConfig, bound_tables
from iclab.store import load_run


def test_bound_tables_hold_the_bound_and_its_extremal_case():
    """Every random draw's lowest row entropy is above the bound at its β (recomputed in
    numpy from the formula), the extremal vectors sit on it, and the draws span β from
    near 0 (entropy ≈ log T) to past where the bound is ≈ 0."""
    config = BoundConfig(tokens=8, dim=16, draws=300)
    tables = bound_tables(config)
    draws, extremal = tables["bound"], tables["extremal"]
    t = config.tokens
    tail = (t - 1) * np.exp(-draws.beta.to_numpy())
    formula = np.log1p(tail) + draws.beta.to_numpy() * tail / (1 + tail)
    np.testing.assert_allclose(draws.bound, formula, rtol=1e-5, atol=1e-6)
    assert (draws.slack >= -1e-5).all()
    assert draws.lowest_entropy.max() == pytest.approx(np.log(t), rel=0.02)
    assert draws.bound.min() < 0.05
    assert extremal.gap.abs().max() < 1e-5
    assert extremal.entropy.iloc[0] == pytest.approx(np.log(t))  # β = 0: uniform


@pytest.mark.slow  # end to end through the CLI (~15–60 s); `make slow`
def test_short_run_writes_every_table_and_figure(tmp_path):
    code = main(["run", "entropy-collapse", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "train.steps=50", "--set", "bound.draws=100",
                 "--set", "model.layers=softmax", "--set", "model.dim=8",
                 "--set", "model.heads=2", "--set", "model.key_size=4",
                 "--set", "eval_sequences=16", "--set", "train.batch_size=8",
                 "--set", "train.probes.batch_size=8", "--set", "task.length=8",
                 "--set", "model.max_len=8"])
    assert code in (0, 1)
    (path,) = (tmp_path / "entropy-collapse").iterdir()
    run = load_run(path)
    runs = run.tables["runs"]
    assert sorted(set(zip(runs.variant, runs.lr, strict=True))) == [("off", 0.01), ("off", 0.1),
                                                       ("sigma", 0.01), ("sigma", 0.1)]
    assert ((runs.min_entropy >= 0) & (runs.min_entropy <= 1 + 1e-6)).all()
    claims = json.loads((path / "claims.json").read_text())
    assert len(claims) == 4
    checks = json.loads((path / "checks.json").read_text())
    assert {c["id"]: c["passed"] for c in checks} == {"bound_holds": True,
                                                      "bound_tight": True}
    assert len(list((path / "figures").glob("*.svg"))) == 3
