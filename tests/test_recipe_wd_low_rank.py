"""wd-low-rank: the toy's closed form in a short run, and a smoke run of the whole recipe
(tables, claims evaluated, figures drawn)."""

import json

import numpy as np
import pytest

from iclab.cli import main
from iclab.store import load_run


@pytest.mark.slow  # an end-to-end run; test_quick_claims[wd-low-rank] checks the toy's claims
def test_short_run_reaches_the_toy_closed_form_and_writes_every_table(tmp_path):
    """5,000 GD steps already put the toy's singular values on max(d_i − λ, 0) (λ = 0.5
    converges fastest); the transformer part is a 40-step smoke run."""
    code = main(["run", "wd-low-rank", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "toy.lambdas=0,0.5", "--set", "toy.steps=5000",
                 "--set", "attention_decays=0,1", "--set", "train.steps=40",
                 "--set", "train.eval_every=20", "--set", "eval_tasks=64",
                 "--set", "train.batch_size=16"])
    assert code in (0, 1)
    (path,) = (tmp_path / "wd-low-rank").iterdir()
    run = load_run(path)
    toy = run.tables["toy"].set_index("lam")
    np.testing.assert_allclose(toy.loc[0.5, ["s1", "s2", "s3", "s4", "s5"]].to_numpy(float),
                               [0.5, 0.3, 0.1, 0.0, 0.0], atol=1e-3)
    np.testing.assert_allclose(toy.loc[0.5, "decay_rate"], 2 * 0.05 * 0.5, rtol=0.1)
    assert toy.loc[0.0, "nuclear_over_l2"] < 0.99  # no decay: unbalanced
    attention = run.tables["attention"]
    assert sorted(attention.lam_attn) == [0.0, 1.0]
    assert (attention.qk_rank <= 16).all()  # rank ≤ head size
    claims = json.loads((path / "claims.json").read_text())
    assert {c["id"] for c in claims} >= {"toy_singular_values", "qk_rank_falls"}
    assert len(list((path / "figures").glob("*.svg"))) == 3
