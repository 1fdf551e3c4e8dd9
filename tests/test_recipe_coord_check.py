"""coord-check: the measurement reads slopes exactly from synthetic histories, the claims
read the right rows, bad configs are refused, and (slow) the recipe runs end to end."""

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from iclab.cli import main
from iclab.config import ConfigError, apply_overrides
from iclab.framework import Results
from iclab.recipes import coord_check
from iclab.recipes.coord_check import CHECKS, CLAIMS, measure, quick_config

SLOPES = {("width", "sp"): 1.0, ("width", "mup"): 0.0, ("depth", "mup"): 0.5,
          ("depth", "depth_mup"): 0.0, ("depth", "completep"): -0.1}


def _fake_trained(config):
    """Jobs whose every site has mean |x| = c · size^slope at every step."""
    trained = {}
    for job_axis, schemes, sizes in (("width", config.width_schemes, config.widths),
                                     ("depth", config.depth_schemes, config.depths)):
        for scheme in schemes:
            for size in sizes:
                layers = config.base_layers if job_axis == "width" else size
                sites = ["embedding", "output"] + [f"block{i}" for i in range(1, layers + 1)]
                rows = [{"step": t, "seed": s, "metric": f"probe/coord/{prefix}{site}",
                         "value": 0.3 * size ** SLOPES[job_axis, scheme]}
                        for t in range(config.train.steps + 1) for s in range(2)
                        for site in sites for prefix in ("", "delta_")]
                trained[f"{job_axis}-{scheme}-{size}"] = SimpleNamespace(
                    info={"axis": job_axis, "scheme": scheme, "size": size},
                    history=pd.DataFrame(rows))
    return trained


def test_measurement_reads_the_slopes_and_the_claims_their_rows():
    config = quick_config()
    tables = measure(config, _fake_trained(config))
    slopes = tables["slopes"]
    for (axis, scheme), want in SLOPES.items():
        mine = slopes[(slopes.axis == axis) & (slopes.scheme == scheme)]
        assert np.allclose(mine.slope, want), (axis, scheme)
    assert set(slopes[slopes.axis == "depth"].site) == {
        "embedding", "last", "output", "delta_last", "delta_output"}
    results = Results(config, tables, pd.DataFrame(), "quick")
    values = {c.id: c.value(results) for c in CLAIMS + CHECKS}
    assert values == pytest.approx({
        "mup_flat_in_width": 0.0, "sp_adam_grows_with_width": 1.0,
        "depth_mup_flat_in_depth": 0.0, "completep_flat_in_depth": 0.1,
        "unscaled_grows_with_depth": 0.5,
        # the fake base-width runs of SP and μP differ (SP grows as size^1)
        "schemes_agree_at_the_base": 0.3 * 32 - 0.3})


@pytest.mark.parametrize("override, key", [
    ("widths=64", "widths"), ("base_width=48", "base_width"),
    ("width_schemes=sp,mupp", "width_schemes"), ("depths=2,0", "depths"),
    ("optim.name=sgd", "optim.name"), ("depth_width=66", "depth_width"),
])
def test_bad_configs_are_refused(override, key):
    with pytest.raises(ConfigError, match=key):
        apply_overrides(quick_config(), [override])


def test_the_recipe_is_registered():
    assert coord_check.RECIPE.name == "coord-check"


@pytest.mark.slow  # end to end through the CLI (~90 s); `make slow`
def test_short_run_writes_claims_tables_and_figures(tmp_path):
    code = main(["run", "coord-check", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "widths=32,64", "--set", "depths=2,4", "--set", "train.steps=2"])
    assert code in (0, 1)
    (run,) = (tmp_path / "coord-check").iterdir()
    claims = json.loads((run / "claims.json").read_text())
    assert [c["id"] for c in claims] == [c.id for c in CLAIMS]
    (check,) = json.loads((run / "checks.json").read_text())
    assert check["passed"]
    assert (run / "figures" / "width.svg").exists() and (run / "figures" / "depth.svg").exists()
