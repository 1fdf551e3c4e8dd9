"""depth-linearisation (and the shaped transformer's SDE): the measurement on a tiny config,
its calibration and base-depth identity, and bad input."""

import numpy as np
import pytest

from iclab.config import ConfigError, apply_overrides
from iclab.recipes import depth_linearisation


def test_depth_linearisation_measures_every_cell_and_calibrates_the_step():
    config = apply_overrides(depth_linearisation.quick_config(), [
        "depths=2,4", "inits=3", "model.width=16", "model.dim_in=8", "batch=4",
        "optimizers=sgd"])
    tables = depth_linearisation.measure(config, {})
    d, s = tables["distances"], tables["slopes"]
    assert len(d) == 2 * 2 * 3 and len(s) == 2 * 3
    assert (d.distance > 0).all() and np.isfinite(d.distance).all()
    base = d[d.depth == 2]
    # the learning rate is calibrated so that the base-depth step moves the map's
    # pre-activations by 0.5 (relative RMS, mean over initialisations)
    for _, rows in base.groupby("alpha"):
        assert rows.preactivation_change.mean() == pytest.approx(0.5, rel=1e-4)
    # at the base depth α = ½ and α = 1 are one parametrisation
    half, one = base[base.alpha == 0.5], base[base.alpha == 1.0]
    np.testing.assert_allclose(half.distance.to_numpy(), one.distance.to_numpy(), rtol=1e-6)
    # the fitted slope is the least-squares slope of log₂ Δ on log₂ L
    row = d[(d.alpha == 0.5) & (d.init == 1)].sort_values("depth")
    fit = np.polyfit(np.log2(row.depth), np.log2(row.distance), 1)[0]
    got = s[(s.alpha == 0.5) & (s.init == 1)].slope.iloc[0]
    assert got == pytest.approx(fit, rel=1e-6)


@pytest.mark.parametrize("override, key", [
    ("alphas=0.25,1", "alphas"), ("optimizers=adam,lion", "optimizers"),
    ("block=2", "block"), ("layer=2", "layer"), ("depths=4", "depths")])
def test_bad_depth_linearisation_configs_are_refused(override, key):
    with pytest.raises(ConfigError, match=key):
        apply_overrides(depth_linearisation.quick_config(), [override])


def test_shaped_transformer_measures_ks_quantiles_and_its_checks():
    from iclab.recipes import shaped_transformer

    config = apply_overrides(shaped_transformer.quick_config(), [
        "tokens=3", "widths=8,16", "tau0s=1.0", "networks=300", "paths=300",
        "sde_steps=64", "snapshots=4", "moment_draws=400", "moment_width=64",
        "explicit_networks=300"])
    tables = shaped_transformer.measure(config, {})
    ks = tables["ks"]
    assert list(ks.width) == [8, 16] and list(ks.depth) == [8, 16]
    assert ((ks.ks > 0) & (ks.ks <= 1)).all() and (ks.sde_undefined < 0.05).all()
    assert ks.critical_5pct.iloc[0] == pytest.approx(1.358 * np.sqrt(2 / 300))
    q = tables["quantiles"]
    assert sorted(q.kind.unique()) == ["network", "sde", "softmax"]
    for _, rows in q.groupby("kind"):
        assert np.allclose(sorted(rows.t), np.linspace(0, 1, 5))
        start = rows[rows.t == 0].iloc[0]
        assert start.q10 == pytest.approx(0.5) and start.q90 == pytest.approx(0.5)
    assert len(tables["samples"]) == 300 * 3
    assert (tables["moments"].drift_error < 1).all()
    assert 0 <= tables["explicit"].p_value.iloc[0] <= 1


@pytest.mark.parametrize("override, key", [
    ("widths=8,64", "widths"), ("rho0=-0.5", "rho0"), ("time=0.3", "time"),
    ("tau0s=0,1", "tau0s"), ("gamma=1.2", "gamma")])
def test_bad_shaped_transformer_configs_are_refused(override, key):
    from iclab.recipes import shaped_transformer

    with pytest.raises(ConfigError, match=key):
        apply_overrides(shaped_transformer.quick_config(), [override])
