"""lr-transfer and rank-collapse: the optimum fit, the transfer exponent, the measurement
on synthetic histories, the propagation instruments against direct computation, the GPT
variants they use, and bad configs."""

import math
from types import SimpleNamespace

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from iclab.config import ConfigError, apply_overrides
from iclab.framework import Results
from iclab.instruments import (
    grid_optimum,
    projection_gradient_norms,
    token_cosine,
    transfer_exponent,
)
from iclab.models import GPT, GPTConfig
from iclab.recipes import lr_transfer, rank_collapse


def test_grid_optimum_finds_a_parabola_vertex_and_flags_the_edges():
    lrs = [2.0 ** -k for k in range(10, 2, -1)]
    losses = [(math.log2(x) + 6.3) ** 2 + 1 for x in lrs]
    opt, inside = grid_optimum(lrs, losses)
    assert inside and math.log2(opt) == pytest.approx(-6.3)
    losses[-1], losses[-2] = float("nan"), float("inf")  # diverged runs
    assert grid_optimum(lrs, losses)[0] == pytest.approx(2 ** -6.3)
    edge, inside = grid_optimum(lrs, list(range(len(lrs))))
    assert not inside and edge == lrs[0]
    assert transfer_exponent([32, 64, 128], [1e-2, 1e-2, 1e-2]) == pytest.approx(0.0)
    with pytest.raises(ValueError, match="increasing"):
        grid_optimum(lrs[::-1], losses)


def _fake_transfer(config, optimum):
    """Jobs whose final loss is (log₂ η − log₂ η*(size))² with a known optimum."""
    train = lr_transfer.dataclasses.replace(config.train, lr_grid=tuple(config.lrs))
    trained = {}
    for axis, schemes, sizes in (("width", config.width_schemes, config.widths),
                                 ("depth", config.depth_schemes, config.depths)):
        for scheme in schemes:
            for size in sizes:
                rows = []
                for k in range(train.members):
                    star = optimum(axis, scheme, size)
                    loss = (math.log2(train.member_lr(k)) - math.log2(star)) ** 2 + 0.5
                    rows.append({"step": config.train.steps, "seed": train.seed + k,
                                 "metric": "loss", "value": loss})
                trained[f"{axis}-{scheme}-{size}"] = SimpleNamespace(
                    info={"axis": axis, "scheme": scheme, "size": size},
                    history=pd.DataFrame(rows))
    return trained


def test_lr_transfer_measurement_recovers_known_optima():
    config = apply_overrides(lr_transfer.quick_config(), ["train.seeds=2"])

    def optimum(axis, scheme, size):  # SP ∝ 1/width, unscaled depth ∝ 1/depth
        base = 2.0 ** -7.3
        if (axis, scheme) == ("width", "sp"):
            return base * 32 / size
        if (axis, scheme) == ("depth", "mup"):
            return base * 2 / size
        return base

    tables = lr_transfer.measure(config, _fake_transfer(config, optimum))
    optima = tables["optima"]
    assert np.allclose(np.log2(optima.lr_star), [math.log2(optimum(a, s, n)) for a, s, n in
                                                 zip(optima.axis, optima.scheme,
                                                     optima["size"], strict=True)])
    r = Results(config, tables, pd.DataFrame(), "quick")
    values = {c.id: c.value(r) for c in lr_transfer.CLAIMS}
    assert values == pytest.approx({"mup_optimum_stays_in_width": 0.0,
                                    "sp_optimum_drifts_in_width": -1.0,
                                    "completep_optimum_stays_in_depth": 0.0,
                                    "unscaled_optimum_drifts_in_depth": 2.0})
    assert len(tables["losses"]) == 2 * len(config.lrs) * (
        len(config.widths) * 2 + len(config.depths) * 2)


@pytest.mark.parametrize("recipe, override, key", [
    (lr_transfer, "lrs=0.1,0.01,0.001", "lrs"),
    (lr_transfer, "optim.schedule=cosine", "optim.schedule"),
    (lr_transfer, "base_width=48", "base_width"),
    (rank_collapse, "variants=pre_ln,mid_ln", "variants"),
    (rank_collapse, "depths=4", "depths"),
])
def test_bad_configs_are_refused(recipe, override, key):
    with pytest.raises(ConfigError, match=key):
        apply_overrides(recipe.quick_config(), [override])


def test_token_cosine_matches_numpy():
    x = np.asarray(jax.random.normal(jax.random.key(0), (7, 5)))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    pairs = [unit[a] @ unit[b] for a in range(7) for b in range(7) if a != b]
    assert float(token_cosine(jnp.asarray(x))) == pytest.approx(np.mean(pairs), rel=1e-5)
    assert float(token_cosine(jnp.ones((4, 3)))) == pytest.approx(1.0)


def test_projection_gradients_are_the_fused_weight_gradient_split():
    config = GPTConfig(dim_in=3, width=8, layers=2, heads=2, max_len=6)
    model = GPT(config, key=jax.random.key(1))
    x = jax.random.normal(jax.random.key(2), (6, 3))
    loss = lambda m: jnp.sum(m(x) ** 2)
    norms = projection_gradient_norms(model, loss)
    grads = eqx.filter_grad(loss)(model)
    for layer in range(2):
        g = np.asarray(grads.blocks[layer].qkv.weight)
        for i, name in enumerate("qkv"):
            assert float(norms[name][layer]) == pytest.approx(
                np.linalg.norm(g[i * 8:(i + 1) * 8]), rel=1e-5)


def test_shaped_attention_is_identity_plus_centred_softmax_and_no_residual_drops_skips():
    from iclab.models import causal_softmax_pattern

    t, w = 5, 8
    base = GPTConfig(dim_in=3, width=w, layers=1, heads=2, max_len=t)
    x = jax.random.normal(jax.random.key(3), (t, 3))
    key = jax.random.key(4)
    soft = GPT(base, key=key)
    shaped = GPT(lr_transfer.dataclasses.replace(base, attention="shaped", shaped_tau=0.5),
                 key=key)
    a = np.asarray(shaped.attention_patterns(x))[0]
    np.testing.assert_allclose(a.sum(-1), 1.0, rtol=1e-5)
    # rebuild head 0 by hand: I + softmax(q·k / (√d_k · τ₀√W)) − causal uniform
    block = soft.blocks[0]
    h = jax.vmap(soft.read_in)(x) + soft.positions[:t]
    qkv = jax.vmap(block.qkv)(jax.vmap(block.ln1)(h))
    q, k = qkv[:, :w // 2], qkv[:, w:w + w // 2]
    s = np.asarray(causal_softmax_pattern(q / (0.5 * math.sqrt(w)), k))
    uniform = np.tril(np.ones((t, t))) / np.arange(1, t + 1)[:, None]
    np.testing.assert_allclose(a[0], np.eye(t) + s - uniform, rtol=1e-5, atol=1e-6)
    # without residuals the block's output is f(h) alone
    plain = GPT(lr_transfer.dataclasses.replace(base, residual=False), key=key)
    stream = np.asarray(plain.residual_stream(x))
    blk = plain.blocks[0]
    h0 = stream[0]
    attn_pattern = np.asarray(plain.attention_patterns(x))[0]
    xq = jax.vmap(blk.qkv)(jax.vmap(blk.ln1)(h0))
    v = np.asarray(xq[:, 2 * w:]).reshape(t, 2, w // 2).transpose(1, 0, 2)
    mixed = np.einsum("hqk,hkc->qhc", attn_pattern, v).reshape(t, w)
    h1 = np.asarray(jax.vmap(blk.out)(jnp.asarray(mixed)))
    h2 = np.asarray(jax.vmap(blk.mlp)(jax.vmap(blk.ln2)(jnp.asarray(h1))))
    np.testing.assert_allclose(stream[1], h2, rtol=1e-4, atol=1e-5)


def test_rank_collapse_measures_every_variant_and_depth_at_initialisation():
    config = apply_overrides(rank_collapse.quick_config(), [
        "depths=1,2", "variants=no_residual,pre_ln_sqrt_depth", "inits=2", "sequences=4",
        "model.width=16"])
    tables = rank_collapse.measure(config, {})
    summary = tables["summary"]
    assert len(summary) == 4 and set(summary.variant) == {"no_residual",
                                                          "pre_ln_sqrt_depth"}
    assert ((summary.rho > -1) & (summary.rho <= 1)).all()
    assert (summary[["grad_q", "grad_k", "grad_v"]] > 0).all().all()
    assert sorted(tables["layers"].layer.unique()) == [0, 1, 2]


def _fake_super(config, sharp, kernel):
    """Jobs whose probes follow sharp(scheme, width, step) and kernel(scheme, width)."""
    from iclab.recipes import super_consistency

    trained = {}
    steps = range(0, config.train.steps + 1, config.train.probes.every)
    for scheme in config.schemes:
        for width in config.widths:
            frames = {
                "probe/scaled_sharpness": [sharp(scheme, width, t) for t in steps],
                "probe/ntk/distance": [kernel(scheme, width) * t / config.train.steps
                                       for t in steps],
                "excess_loss": [1.0 / (1 + t) for t in steps]}
            tables = {k: pd.DataFrame({0: v}, index=list(steps)) for k, v in frames.items()}
            trained[f"{scheme}-{width}"] = SimpleNamespace(
                info={"scheme": scheme, "width": width},
                curves=lambda metric, tables=tables: tables[metric])
    return super_consistency.measure(config, trained)


def test_super_consistency_measurement_reads_spreads_edges_and_exponents():
    from iclab.recipes import super_consistency

    config = super_consistency.quick_config()  # widths 32, 64, 128; η = 0.3
    edge = 2 / config.optim.lr
    sharp = lambda s, w, t: edge * t / config.train.steps * (1.0 if s == "mup" else 32 / w)
    kernel = lambda s, w: 0.5 if s == "mup" else 0.5 * (32 / w) ** 0.5
    tables = _fake_super(config, sharp, kernel)
    r = Results(config, tables, pd.DataFrame(), "quick")
    values = {c.id: c.value(r) for c in super_consistency.CLAIMS}
    assert values == pytest.approx({"mup_sharpness_consistent": 1.0,
                                    "mup_approaches_edge": 1.0,
                                    "ntk_sharpness_separates": 4.0,
                                    "ntk_kernel_freezes_with_width": -0.5,
                                    "mup_kernel_keeps_moving": 0.0})
    with pytest.raises(ConfigError, match="optim.name"):
        apply_overrides(config, ["optim.name=adam"])
    with pytest.raises(ConfigError, match="widths"):
        apply_overrides(config, ["widths=30,60"])
