"""The slingshot detector on synthetic norm and loss curves whose bursts and spikes are
placed by hand."""

import numpy as np
import pytest

from iclab.instruments import detect_slingshots, loss_spikes


def _curves(bursts, spikes, n=600, every=10, noise=1e-3, seed=0):
    """Norm: plateaus at 1 joined by exponential bursts (onset step, length, log-growth);
    loss: 1e-4 with spikes ×1000 at the given steps (3 logs each), both with noise."""
    rng = np.random.default_rng(seed)
    steps = np.arange(n) * every
    log_norm = np.zeros(n)
    for onset, length, rise in bursts:
        log_norm += rise * np.clip((steps - onset) / length, 0, 1)
    norm = np.exp(log_norm) * (1 + noise * rng.standard_normal(n))
    loss = 1e-4 * np.exp(0.1 * rng.standard_normal(n))
    for at in spikes:
        loss[(steps >= at) & (steps < at + 3 * every)] *= 1e3
    return steps, norm, loss


def test_bursts_ended_by_spikes_are_slingshots_at_their_onsets():
    bursts = [(1000, 200, 0.5), (2500, 300, 0.4), (4500, 150, 0.6)]
    steps, norm, loss = _curves(bursts, spikes=[1200, 2800, 4650])
    found = detect_slingshots(steps, norm, loss, lag=40)  # the longest burst: 30 logs
    assert found.slingshot.tolist() == [True, True, True]
    for (onset, length, rise), row in zip(bursts, found.itertuples(), strict=True):
        assert abs(row.onset - onset) <= 20 and row.end == row.spike_step == onset + length
        assert row.norm_ratio == pytest.approx(np.exp(rise * (row.end - row.onset) / length),
                                               rel=0.02)
        assert row.spike_ratio > 100


def test_spikes_without_a_burst_are_not_slingshots_and_bursts_need_a_spike():
    steps = np.arange(600) * 10
    rng = np.random.default_rng(1)
    steady = np.exp(1e-4 * steps) * (1 + 1e-4 * rng.standard_normal(600))
    loss = np.full(600, 1e-4)
    loss[[200, 400]] = 1.0
    found = detect_slingshots(steps, steady, loss)
    assert found.spike_step.tolist() == [2000, 4000] and not found.slingshot.any()
    steps, norm, loss = _curves([(2000, 200, 0.5)], spikes=[])
    assert detect_slingshots(steps, norm, loss).empty  # growth alone is no slingshot
    far = _curves([(2000, 200, 0.5)], spikes=[4000])  # a spike far after the burst
    assert detect_slingshots(*far).slingshot.tolist() == [False]


def test_loss_spike_ratio_against_the_running_minimum():
    loss = np.array([4.0, 2.0, 1.0, 30.0, 1.0, 0.5, 0.0, 1e-3])
    np.testing.assert_allclose(loss_spikes(loss, lag=2, floor=1e-6),
                               [1, 0.5, 0.5, 30, 1, 0.5, 0, 1e-3 / 1e-6])
    with pytest.raises(ValueError, match="1-d arrays"):
        detect_slingshots([0, 1], [1.0], [1.0, 2.0])
