"""icl-gd-deep: config rules, a fast smoke run of the pipeline, the quick claims (slow)."""

import json

import pytest

from iclab._errors import ConfigError
from iclab.cli import main
from iclab.config import apply_overrides
from iclab.recipes.icl_gd_deep import IclGdDeepConfig, quick_config
from iclab.store import load_run


def test_reference_optimizer_rule_by_depth():
    config = IclGdDeepConfig()
    assert config.optim_for(2).clip_norm == 0.001 and config.optim_for(2).lr == 1e-3
    assert config.optim_for(3).clip_norm == 10.0 and config.optim_for(3).lr == 1e-3
    assert config.optim_for(5).lr == 5e-4
    assert config.model_for(4, True).init_scale == pytest.approx(0.0005)
    assert config.model_for(4, True).dim == 11 and config.model_for(4, True).layers == 4
    assert not config.model_for(4, False).recurrent


def test_weight_sharings_trained_side_by_side():
    """Both sharings by default, each with its own claims; ``recurrence=`` empty falls
    back to ``model.recurrent``; a sharing twice is refused."""
    assert quick_config().families() == (True, False)
    assert apply_overrides(quick_config(), ["recurrence=", "model.recurrent=false"]
                           ).families() == (False,)
    with pytest.raises(ConfigError, match="recurrence"):
        apply_overrides(quick_config(), ["recurrence=true,true"])


def test_depths_override_and_validation():
    assert apply_overrides(quick_config(), ["depths=2,4"]).depths == (2, 4)
    with pytest.raises(ConfigError, match="depths"):
        apply_overrides(quick_config(), ["depths=0,2"])


@pytest.mark.slow  # end to end through the CLI (~20 s); `make slow`
def test_smoke_run_writes_claims_for_every_depth(tmp_path):
    code = main(["run", "icl-gd-deep", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "depths=1,2", "--set", "train.steps=200", "--set", "eval.tasks=1000",
                 "--set", "gdpp.adam_steps=20", "--set", "train.batch_size=256"])
    assert code in (0, 1)
    (run,) = (tmp_path / "icl-gd-deep").iterdir()
    claims = json.loads((run / "claims.json").read_text())
    three = ("beats_gd", "near_gdpp", "closer_to_gdpp")
    assert [c["id"] for c in claims] == (
        [f"{c}_K{k}" for k in (1, 2) for c in three] + ["readouts_follow_gdpp_K2"]
        + [f"{c}_K{k}_nr" for k in (1, 2) for c in three])
    assert (run / "report.html").read_text().count("<svg") == 4
    tables = load_run(run).tables
    layers = tables["layers"]
    gd = layers[layers.learner == "GD"]
    assert gd.groupby(["depth", "recurrent"]).layer.max().to_dict() == {
        (1, False): 1, (1, True): 1, (2, False): 2, (2, True): 2}
    assert set(layers.learner) == {"trained LSA", "GD", "GD++"}
    assert sorted(zip(tables["seeds"].depth, tables["seeds"].recurrent, strict=True)) == [
        (1, False), (1, True), (2, False), (2, True)]


def test_readout_gap_is_the_mean_log_distance_difference():
    """On the reference's K = 3 read-outs the statistic is the recorded reference value."""
    import numpy as np
    import pandas as pd

    from iclab.framework import Results
    from iclab.recipes.analysis.icl_gd_deep import readout_gap
    from iclab.recipes.icl_gd_deep import REF_K3_READOUT_GAP

    curves = {"trained LSA": [1.204, 0.246, 0.0799], "GD++": [1.405, 0.269, 0.0786],
              "GD": [0.2048, 0.1550, 0.1338]}
    rows = [{"depth": 3, "learner": name, "seed": seed, "layer": i + 1,
             "loss": v * (1 + 0.1 * seed if name == "trained LSA" else 1)}
            for name, values in curves.items() for i, v in enumerate(values)
            for seed in ((0, 1) if name == "trained LSA" else (-1,))]
    results = Results(None, {"layers": pd.DataFrame(rows)}, pd.DataFrame())
    tf = np.array(curves["trained LSA"]) * 1.05  # the mean over the two seeds
    expected = (np.mean(np.abs(np.log(tf / curves["GD++"])))
                - np.mean(np.abs(np.log(tf / curves["GD"]))))
    assert readout_gap(results, 3) == pytest.approx(expected)
    assert REF_K3_READOUT_GAP == pytest.approx(-0.83, abs=1e-3)


def test_non_recurrent_models_get_no_recurrent_reference_values():
    """The reference notebook's numbers are for recurrent models; a non-recurrent config
    shows none, and has no read-out trajectory claim."""
    from iclab.config import apply_overrides
    from iclab.recipes.icl_gd_deep import claims, quick_config

    both = {c.id: c for c in claims(quick_config())}
    assert both["near_gdpp_K3"].reference is not None
    assert "readouts_follow_gdpp_K3" in both
    other = {i: c for i, c in both.items() if i.endswith("_nr")}
    assert len(other) == 6 and all(c.reference is None for c in other.values())
    assert not any(i.startswith("readouts_follow") for i in other)
    alone = {c.id for c in claims(apply_overrides(quick_config(),
                                                  ["recurrence=", "model.recurrent=false"]))}
    assert alone == set(other)
