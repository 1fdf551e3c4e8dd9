"""induction-heads: emergence-time helpers, config validation, a smoke run."""

import json
import math

import numpy as np
import pytest

from iclab._errors import ConfigError
from iclab.cli import main
from iclab.config import apply_overrides
from iclab.instruments import first_crossing, loglog_slope
from iclab.recipes.induction_heads import quick_config
from iclab.store import load_run


def test_first_crossing_and_loglog_slope():
    steps = np.array([0, 100, 200, 300])
    assert first_crossing(steps, np.array([0.0, 0.2, 0.6, 0.9]), 0.5) == 200
    assert math.isnan(first_crossing(steps, np.array([0.0, 0.2, 0.3, 0.4]), 0.5))
    n = [4, 8, 16, 32]
    assert loglog_slope(n, [3 * x ** 2 for x in n]) == pytest.approx(2.0)
    assert loglog_slope(n, [5 * x ** 1.5 for x in n]) == pytest.approx(1.5)
    assert math.isnan(loglog_slope(n, [1, 2, math.nan, 4]))


def test_config_validation():
    assert apply_overrides(quick_config(), ["n_values=4,8"]).n_values == (4, 8)
    with pytest.raises(ConfigError, match="n_values"):
        apply_overrides(quick_config(), ["n_values=4"])
    with pytest.raises(ConfigError, match="items"):
        apply_overrides(quick_config(), ["n_values=4,80"])
    with pytest.raises(ConfigError, match="model.layers"):
        apply_overrides(quick_config(), ["model.layers=softmax,linear"])
    with pytest.raises(ConfigError, match="disentangled.subspace_pairs"):
        apply_overrides(quick_config(), ["disentangled.subspace_pairs=2"])
    with pytest.raises(ConfigError, match="disentangled.n_values"):
        apply_overrides(quick_config(), ["disentangled.n_values=8,4,16,32"])
    with pytest.raises(ConfigError, match="disentangled.slope_points"):
        apply_overrides(quick_config(), ["disentangled.slope_points=5"])
    with pytest.raises(ConfigError, match="control_n"):
        apply_overrides(quick_config(), ["control_n=1"])
    with pytest.raises(ConfigError, match="control_n"):
        apply_overrides(quick_config(), ["control_n=400"])


def test_ablating_a_layers_heads_removes_its_contribution():
    """Without layer 2's heads the attention-only model's last residual stream equals the
    one after layer 1 (nothing else writes to it); a layer that does not exist is refused."""
    import jax

    from iclab.models import CausalTransformer
    from iclab.tasks import one_hot_tokens

    config = quick_config()
    model = CausalTransformer(config.model_for(4), key=jax.random.key(0))
    tokens = one_hot_tokens(config.task(4).sample(jax.random.key(1)).tokens,
                            config.task(4).vocab_size)
    stream = model.without_heads(1, range(config.model.heads)).residual_stream(tokens)
    np.testing.assert_array_equal(stream[2], stream[1])
    assert not np.allclose(model.residual_stream(tokens)[2], stream[1])
    with pytest.raises(ValueError, match="layers 0..1"):
        model.without_heads(2, [0])


@pytest.mark.slow  # end to end through the CLI (~45 s); `make slow`
def test_smoke_run_writes_claims_and_emergence(tmp_path):
    code = main(["run", "induction-heads", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "n_values=2,3", "--set", "train.steps=60",
                 "--set", "train.eval_every=20", "--set", "eval_sequences=64",
                 "--set", "items=8", "--set", "labels=4",
                 "--set", "disentangled.slope_points=2", "--set", "disentangled.n_values=2,3",
                 "--set", "disentangled.max_steps=200", "--set", "disentangled.subspace_steps=3"])
    assert code in (0, 1)
    (run,) = (tmp_path / "induction-heads").iterdir()
    claims = json.loads((run / "claims.json").read_text())
    assert [c["id"] for c in claims] == ["induction_head_forms", "drop_coincides",
                                         "quadratic_emergence", "quadratic_emergence_upper",
                                         "ablation_removes_icl", "one_layer_control",
                                         "emergence_order"]
    checks = json.loads((run / "checks.json").read_text())
    assert [c["id"] for c in checks] == ["stays_in_subspace", "reduced_dynamics_exact"]
    assert all(c["passed"] for c in checks)
    tables = load_run(run).tables
    assert sorted(tables["standard"].n) == [2, 3]
    dis = tables["dis_times"]
    assert list(dis.n) == [2, 3] and all(math.isfinite(t) for t in dis.t_icl)
    subspace = tables["subspace"].groupby("population").residual.max()
    assert subspace["haar"] > 1e3 * subspace["symmetric"]
    assert (run / "report.html").read_text().count("<svg") == 7
    ablation = tables["ablation"]
    assert set(ablation.model) == {"trained", "layer 2 ablated", "layer 1 ablated"}
    assert list(tables["control"].n) == [4]
