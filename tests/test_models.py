import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab.models import LSATransformer, LSATransformerConfig


def numpy_layer(h, attn):
    """Independent float64 LSA layer: H + Σ_h φ(H W_Q (C W_K)ᵀ) (C W_V) W_P, C = H[:-1]."""
    h = np.asarray(h, np.float64)
    c = h[:-1]
    out = h.copy()
    for head in range(attn.w_q.shape[0]):
        wq, wk, wv, wp = (np.asarray(w[head], np.float64) for w in
                          (attn.w_q, attn.w_k, attn.w_v, attn.w_p))
        scores = (h @ wq) @ (c @ wk).T
        if attn.softmax:
            scores = scores / np.sqrt(wq.shape[1])
            scores = np.exp(scores - scores.max(-1, keepdims=True))
            scores = scores / scores.sum(-1, keepdims=True)
        out = out + scores @ (c @ wv) @ wp
    return out


@pytest.mark.parametrize("softmax", [False, True])
@pytest.mark.parametrize("heads, key_size", [(1, 11), (3, 4)])
def test_layer_matches_numpy(key, softmax, heads, key_size):
    config = LSATransformerConfig(dim=6, heads=heads, key_size=key_size, softmax=softmax,
                                  init_scale=1.0)
    model = LSATransformer(config, key=key)
    h = jax.random.normal(jax.random.key(3), (8, 6))
    attn = model.blocks[0].attn
    np.testing.assert_allclose(attn(h) + h, numpy_layer(h, attn), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("softmax", [False, True])
def test_query_only_readout_equals_full_forward(key, softmax):
    config = LSATransformerConfig(dim=5, layers=3, heads=2, key_size=3, softmax=softmax,
                                  recurrent=False, init_scale=1.0, mlp_width=8, layer_norm=True)
    model = LSATransformer(config, key=key)
    h = jax.random.normal(jax.random.key(4), (7, 5))
    full = model.residual_stream(h)
    assert full.shape == (4, 7, 5)
    assert float(model(h)) == pytest.approx(-float(full[-1, -1, -1]), rel=1e-5, abs=1e-6)
    np.testing.assert_allclose(model.layer_predictions(h), -full[1:, -1, -1], rtol=1e-6)


def test_stack_applies_numpy_layers_in_sequence(key):
    config = LSATransformerConfig(dim=4, layers=3, recurrent=False, init_scale=1.0)
    model = LSATransformer(config, key=key)
    h = jax.random.normal(jax.random.key(5), (6, 4))
    expected = np.asarray(h, np.float64)
    for block in model.blocks:
        expected = numpy_layer(expected, block.attn)
    np.testing.assert_allclose(model.residual_stream(h)[-1], expected, rtol=1e-4, atol=1e-5)


def test_query_token_is_never_a_key(key):
    model = LSATransformer(LSATransformerConfig(dim=4, init_scale=1.0), key=key)
    h = jax.random.normal(jax.random.key(6), (5, 4))
    grad = jax.grad(lambda t: model.blocks[0].attn(t)[0].sum())(h)
    assert np.all(np.asarray(grad[-1]) == 0)  # context rows never see the query


def test_recurrent_shares_weights(key):
    shared = LSATransformer(LSATransformerConfig(dim=4, layers=3, recurrent=True), key=key)
    separate = LSATransformer(LSATransformerConfig(dim=4, layers=3, recurrent=False), key=key)
    assert len(shared.blocks) == 1 and len(separate.blocks) == 3


def test_reference_initialisation_scale(key):
    """VarianceScaling(0.002) with fan-in 11: std √(0.002/11) ≈ 0.0135, truncated at 2σ."""
    model = LSATransformer(LSATransformerConfig(dim=11, heads=64), key=key)
    w = np.asarray(model.blocks[0].attn.w_q)
    assert w.std() == pytest.approx(np.sqrt(0.002 / 11), rel=0.03)
    assert np.abs(w).max() <= 2 * np.sqrt(0.002 / 11) / 0.87962566 + 1e-6


def test_unresolved_config_is_refused(key):
    with pytest.raises(ValueError, match="resolve"):
        LSATransformer(LSATransformerConfig(), key=key)
    assert LSATransformerConfig().resolve(11).key_size == 11


def test_models_implement_the_interfaces_instruments_read(key):
    """Instruments read models through abstract interfaces: each model implements the ones
    it can, a linear-attention stack's forward pass equals its last read-out, and an
    instrument refuses a model without the interface it needs, naming it."""
    from iclab.instruments import layer_implicit_weights
    from iclab.models import (
        GPT,
        AttentionPatternModel,
        CausalTransformer,
        CausalTransformerConfig,
        DiagonalLSA,
        FullLSA,
        GPTConfig,
        LinearAttentionStack,
        QueryReadoutModel,
        ResidualStreamModel,
    )
    from iclab.tasks import LinearRegressionTask, to_tokens

    stacks = [DiagonalLSA.gd(0.5, 6, 3), FullLSA.random(4, 2, 0.3, key=key)]
    lsa = LSATransformer(LSATransformerConfig(dim=4, layers=2, init_scale=0.3), key=key)
    gpt = GPT(GPTConfig(width=16, layers=1, heads=2).resolve(3), key=key)
    causal = CausalTransformer(CausalTransformerConfig(layers=("softmax",)).resolve(4, 2),
                               key=key)
    assert all(isinstance(m, LinearAttentionStack) for m in stacks)
    assert isinstance(lsa, QueryReadoutModel) and not isinstance(lsa, LinearAttentionStack)
    for m in (gpt, causal):
        assert isinstance(m, ResidualStreamModel) and isinstance(m, AttentionPatternModel)
    batch = LinearRegressionTask(d=3, n_context=6).sample_batch(key, 5)
    tokens = to_tokens(jax.tree.map(lambda a: a[0], batch))
    for m in [*stacks, lsa]:
        readouts = m.layer_predictions(tokens)
        np.testing.assert_allclose(float(m(tokens)), float(readouts[-1]), rtol=1e-5, atol=1e-7)
        assert layer_implicit_weights(m, batch, 3).shape == (5, readouts.shape[0], 3)
    assert gpt.residual_stream(jnp.ones((5, gpt.read_in.in_features))).shape == (2, 5, 16)
    with pytest.raises(TypeError, match="LayerReadoutModel"):
        layer_implicit_weights(gpt, batch, 3)


@pytest.mark.parametrize("position", ["pre", "post"])
def test_pre_and_post_layernorm_blocks_follow_their_definitions(position):
    """Pre-LN: h ← h + f(LN(h)) and a final LN before the read-out; post-LN (the original
    Transformer): h ← LN(h + f(h)), no final LN. Re-computed here from the model's own
    sub-modules."""
    from iclab.models import CausalTransformer, CausalTransformerConfig

    config = CausalTransformerConfig(layers=("softmax",) * 2, heads=2, key_size=4, dim_in=3,
                                     dim=8, dim_out=2, readout="linear", mlp=True,
                                     layer_norm=True, norm_position=position, init_std=0.3)
    model = CausalTransformer(config, key=jax.random.key(0))
    tokens = jax.random.normal(jax.random.key(1), (5, 3))
    ln = lambda i, x: jax.vmap(model.norms[i])(x)
    h = jax.vmap(model.embed)(tokens)
    for i, layer in enumerate(model.layers):
        mlp = jax.vmap(model.mlps[i])
        if position == "pre":
            h = h + layer(ln(2 * i, h))
            h = h + mlp(ln(2 * i + 1, h))
        else:
            h = ln(2 * i, h + layer(h))
            h = ln(2 * i + 1, h + mlp(h))
            np.testing.assert_allclose(h.mean(-1), 0.0, atol=1e-5)
            np.testing.assert_allclose(h.std(-1), 1.0, rtol=1e-3)
        np.testing.assert_allclose(model.residual_stream(tokens)[i + 1], h, rtol=1e-5,
                                   atol=1e-6)
    final = ln(4, h) if position == "pre" else h
    np.testing.assert_allclose(model(tokens), jax.vmap(model.read_out)(final), rtol=1e-5,
                               atol=1e-6)
    assert len(model.norms) == (5 if position == "pre" else 4)
    stream = model.residual_stream(tokens)
    x1 = stream[1] if position == "post" else ln(2, stream[1])
    np.testing.assert_allclose(model.attention_patterns(tokens)[1], model.layers[1].pattern(x1),
                               rtol=1e-5, atol=1e-6)


def test_diagonal_softmax_head_matches_numpy_and_its_products(key):
    """The diagonal head against an independent numpy forward pass, and its products as
    the spectral instruments read them: W_Kᵀ W_Q = diag(w_Q ⊙ w_K), W_O W_V = diag(w_V ⊙ w_O)."""
    from iclab.instruments import head_products
    from iclab.models import DiagonalSoftmaxHead, HeadWeightsModel

    head = DiagonalSoftmaxHead.initialise(5, 0.7, key=key)
    x = np.asarray(jax.random.normal(jax.random.fold_in(key, 1), (6, 5)))
    wq, wk, wv, wo = (np.asarray(w, np.float64) for w in (head.wq, head.wk, head.wv, head.wo))
    logits = x @ np.diag(wq * wk) @ x.T / np.sqrt(5)
    attn = np.exp(logits - logits.max(1, keepdims=True))
    attn /= attn.sum(1, keepdims=True)
    np.testing.assert_allclose(np.asarray(head(jnp.asarray(x))), attn @ x @ np.diag(wv * wo),
                               rtol=1e-5, atol=1e-6)
    assert isinstance(head, HeadWeightsModel)
    (layer,) = head_products(head)
    np.testing.assert_allclose(np.asarray(layer["qk"][0]), np.diag(wq * wk), rtol=1e-6)
    np.testing.assert_allclose(np.asarray(layer["ov"][0]), np.diag(wv * wo), rtol=1e-6)
    teacher = DiagonalSoftmaxHead.from_products(jnp.array([2.0, 0, 0]), jnp.array([0, 1.0, 0]))
    assert np.asarray(teacher.attention_product).tolist() == [2.0, 0, 0]
    assert np.asarray(teacher.value_product).tolist() == [0, 1.0, 0]


def test_token_mlp_matches_numpy_and_labels_its_roles(key):
    """The token MLP against a numpy forward pass (embed, concatenate, ReLU layers,
    read-out), its roles, and ``role_norms`` against the norms of those arrays."""
    from iclab.instruments import role_norms
    from iclab.models import ParameterRolesModel, TokenMLP, TokenMLPConfig

    config = TokenMLPConfig(tokens=2, vocab=7, embed=3, hidden=(5, 4), out=7)
    model = TokenMLP(config, key=key)
    assert isinstance(model, ParameterRolesModel)
    tokens = np.array([2, 6])
    e = np.asarray(model.embedding, np.float64)
    h = np.concatenate([e[2], e[6]])
    for w, b in zip(model.weights, model.biases, strict=True):
        h = np.maximum(np.asarray(w, np.float64) @ h + np.asarray(b, np.float64), 0)
    expected = np.asarray(model.read_out, np.float64) @ h
    out = model(jax.nn.one_hot(jnp.asarray(tokens), 7))
    np.testing.assert_allclose(np.asarray(out), expected, rtol=1e-5, atol=1e-6)
    norms = {k: float(v) for k, v in role_norms(model).items()}
    assert norms["readout"] == pytest.approx(np.linalg.norm(np.asarray(model.read_out)),
                                             rel=1e-6)
    assert norms["mlp"] == pytest.approx(np.sqrt(sum(float(np.sum(np.asarray(w) ** 2))
                                                     for w in model.weights)), rel=1e-6)
    bound = 1 / np.sqrt(config.input_width)  # nn.Linear's U(±1/√fan_in)
    assert np.abs(np.asarray(model.weights[0])).max() <= bound
    features = TokenMLP(TokenMLPConfig(tokens=6, hidden=(8,), out=1), key=key)
    assert features.embedding is None and features(jnp.ones(6)).shape == (1,)


def _sigma_config(**kw):
    from iclab.models import CausalTransformerConfig

    return CausalTransformerConfig(layers=("softmax", "softmax"), heads=2, key_size=4, dim=8,
                                   readout="linear", mlp=True, layer_norm=True,
                                   init_std=0.3, **kw).resolve(5, 3)


def test_sigma_reparam_starts_at_the_plain_model_and_tracks_the_spectral_norm(key):
    """With γ₀ = σ(W₀) the σReparam model is the plain model at initialisation; after
    power-iteration steps each estimate σ = vᵀ W u is the top singular value of the map it
    stands for (numpy SVD), and the output projection's map is the one the layer applies:
    Δe = M [o_1; …; o_H] with M[d, (h, j)] = w_p[h, d, j]."""
    import equinox as eqx

    from iclab.models import CausalTransformer, StatefulModel

    plain = CausalTransformer(_sigma_config(), key=key)
    model = CausalTransformer(_sigma_config(sigma_reparam="sigma0"), key=key)
    assert isinstance(model, StatefulModel)
    tokens = jax.random.normal(jax.random.fold_in(key, 3), (6, 5))
    np.testing.assert_allclose(np.asarray(model(tokens)), np.asarray(plain(tokens)),
                               rtol=1e-4, atol=1e-5)
    # move W away from W₀ (σ no longer σ₀), then let the power iteration catch up
    bumped = eqx.tree_at(lambda m: m.layers[0].w_p, model,
                         model.layers[0].w_p + 0.5 * jax.random.normal(key, (2, 8, 4)))
    for _ in range(300):
        bumped = bumped.refreshed()
    layer = bumped.layers[0]
    w_p = np.asarray(layer.w_p, np.float64)
    m = np.transpose(w_p, (1, 0, 2)).reshape(8, 8)
    heads = np.asarray(layer.heads_out(tokens @ np.zeros((5, 8)) + 1.0))  # (H, T, k)
    np.testing.assert_allclose(np.einsum("hdk,htk->td", w_p, heads),
                               (m @ np.transpose(heads, (0, 2, 1)).reshape(8, -1)).T,
                               rtol=1e-5)
    matrices = [np.asarray(layer.w_q).reshape(8, 8), np.asarray(layer.w_k).reshape(8, 8),
                np.asarray(layer.w_v).reshape(8, 8), m]
    for scale, matrix in zip(layer.spectral, matrices, strict=True):
        top = np.linalg.svd(matrix, compute_uv=False)[0]
        assert float(scale.sigma(jnp.asarray(matrix, jnp.float32))) == pytest.approx(top,
                                                                                  rel=1e-4)
        assert float(jnp.linalg.norm(scale.u)) == pytest.approx(1.0, rel=1e-5)
    read_out = bumped.spectral[2]
    assert float(read_out.sigma(bumped.read_out.weight)) == pytest.approx(
        np.linalg.svd(np.asarray(bumped.read_out.weight), compute_uv=False)[0], rel=1e-4)


def test_sigma_reparam_gamma_one_gives_unit_spectral_norms_and_training_keeps_u(key):
    """γ₀ = 1: every effective map has spectral norm 1. In training the optimiser never
    moves u (role "state"), the engine's refresh keeps it a unit vector tracking W, and
    AdamW's decay does not touch it."""
    from iclab.engine import OptimConfig, Problem, TrainConfig, Trainer

    config = _sigma_config(sigma_reparam="one")
    from iclab.models import CausalTransformer

    model = CausalTransformer(config, key=key)
    w_q, w_k, w_v, w_p = (np.asarray(w) for w in model.layers[0].weights())
    maps = [w.reshape(-1, w.shape[-1]) for w in (w_q, w_k, w_v)]
    maps.append(np.transpose(w_p, (1, 0, 2)).reshape(w_p.shape[1], -1))
    for matrix in maps:
        assert np.linalg.svd(matrix, compute_uv=False)[0] == pytest.approx(1.0, rel=1e-4)
    roles = jax.tree.leaves(model.parameter_roles())
    assert roles.count("state") == 4 * 2 + 2 * 2 + 2  # q, k, v, o per layer; MLPs; in, out
    problem = Problem(init_model=lambda k: CausalTransformer(config, key=k),
                      sample_batch=lambda k, b: jax.random.normal(k, (b, 6, 5)),
                      loss=lambda m, x: jnp.mean(jax.vmap(m)(x) ** 2),
                      evaluate=lambda m, x: {})
    trainer = Trainer(problem, OptimConfig(name="adamw", lr=1e-2, weight_decay=0.5),
                      TrainConfig(steps=60, batch_size=4, eval_every=30))
    state = trainer.fit(None)
    trained = trainer.models(state)[0]
    for scale, matrix in zip(trained.layers[1].spectral, trained.layers[1]._matrices(),
                             strict=True):
        assert float(jnp.linalg.norm(scale.u)) == pytest.approx(1.0, rel=1e-5)
        top = np.linalg.svd(np.asarray(matrix), compute_uv=False)[0]
        assert float(scale.sigma(matrix)) == pytest.approx(top, rel=2e-2)
    assert float(trained.layers[1].spectral[0].gamma) != 1.0  # γ is trained


@pytest.mark.parametrize("position", ["post", "none"])
def test_gpt_post_ln_and_no_ln_blocks_follow_their_definitions(position):
    """GPT's Post-LN block is h ← LN₁(h + Attn(h)), h ← LN₂(h + MLP(h)) with no final LN;
    its no-LN block h ← h + Attn(h), h ← h + MLP(h). Re-computed from the model's own
    sub-modules (the attention update is the model's: Δh = block output − MLP part)."""
    from iclab.models import GPT, GPTConfig

    model = GPT(GPTConfig(width=8, layers=2, heads=2, norm_position=position).resolve(3),
                key=jax.random.key(0))
    tokens = jax.random.normal(jax.random.key(1), (5, 3))
    h = jax.vmap(model.read_in)(tokens) + model.positions[:5]
    for i, block in enumerate(model.blocks):
        t, w = h.shape
        q, k, v = jnp.split(jax.vmap(block.qkv)(h), 3, axis=-1)
        split = lambda a, t=t, w=w: a.reshape(t, 2, w // 2).transpose(1, 0, 2)
        pattern = jax.nn.softmax(jnp.where(jnp.tril(jnp.ones((t, t), bool)), jnp.einsum(
            "hqc,hkc->hqk", split(q), split(k)) / np.sqrt(w // 2), -jnp.inf), axis=-1)
        attn = jax.vmap(block.out)(jnp.einsum("hqk,hkc->qhc", pattern, split(v)).reshape(t, w))
        if position == "post":
            h = jax.vmap(block.ln1)(h + attn)
            h = jax.vmap(block.ln2)(h + jax.vmap(block.mlp)(h))
        else:
            h = h + attn
            h = h + jax.vmap(block.mlp)(h)
        np.testing.assert_allclose(model.residual_stream(tokens)[i + 1], h, rtol=1e-5,
                                   atol=1e-5)
    np.testing.assert_allclose(model(tokens), jax.vmap(model.read_out)(h)[:, 0], rtol=1e-5,
                               atol=1e-5)


def test_gpt_sigma_reparam_starts_at_the_plain_model_and_tracks_the_spectral_norm():
    from iclab.models import GPT, GPTConfig, StatefulModel

    config = GPTConfig(width=8, layers=2, heads=2).resolve(3)
    plain = GPT(config, key=jax.random.key(0))
    model = GPT(dataclasses.replace(config, sigma_reparam="sigma0"), key=jax.random.key(0))
    assert isinstance(model, StatefulModel)
    tokens = jax.random.normal(jax.random.key(1), (5, 3))
    np.testing.assert_allclose(model(tokens), plain(tokens), rtol=1e-4, atol=1e-5)
    roles = jax.tree.leaves(model.parameter_roles())
    assert roles.count("state") == 2 * 4 + 2  # qkv, out and two MLP maps per block; in, out
    bumped = eqx.tree_at(lambda m: m.blocks[0].qkv.weight, model,
                         model.blocks[0].qkv.weight + 0.5)
    for _ in range(300):
        bumped = bumped.refreshed()
    scale = bumped.blocks[0].spectral[0]
    weight = bumped.blocks[0].qkv.weight
    assert float(scale.sigma(weight)) == pytest.approx(
        np.linalg.svd(np.asarray(weight), compute_uv=False)[0], rel=1e-4)
    # the instruments read the effective (reparametrised) weights
    qkv, _, _ = bumped.blocks[0].effective()
    np.testing.assert_allclose(bumped.head_weights()[0]["q"].reshape(8, 8),
                               qkv.weight[:8], rtol=1e-6)


def test_standard_token_layout_and_the_first_layer_softmax_stack(key):
    """``StandardTokenLSA`` lays (x_j, y_j) out as x_j, (0, …, 0, y_j), x_q; its stack
    concatenates the sinusoidal encodings, uses softmax in layer 1 only, and reads
    ŷ = −H[−1, −1] of the (D + P)-wide stream."""
    from iclab._errors import ConfigError
    from iclab.models import StandardTokenLSA, sinusoidal_positions

    x = np.arange(6.0).reshape(2, 3)
    tokens = jnp.array(np.vstack([np.c_[x, [7.0, 8.0]], [[9.0, 9.5, 10.0, 0.0]]]))
    np.testing.assert_array_equal(StandardTokenLSA.layout(tokens),
                                  [[0, 1, 2], [0, 0, 7], [3, 4, 5], [0, 0, 8], [9, 9.5, 10]])
    config = LSATransformerConfig(layers=2, recurrent=False, first_layer_softmax=True,
                                  positions=4)
    model = StandardTokenLSA(config, 3, key=key)
    assert [b.attn.softmax for b in model.stack.blocks] == [True, False]
    stream = model.residual_stream(tokens)
    assert stream.shape == (3, 5, 7)
    np.testing.assert_allclose(stream[0, :, 3:], sinusoidal_positions(5, 4), rtol=1e-6)
    assert float(model(tokens)) == pytest.approx(-float(stream[-1, -1, -1]), rel=1e-5)
    with pytest.raises(ConfigError, match="first_layer_softmax"):
        LSATransformerConfig(layers=2, first_layer_softmax=True)
    with pytest.raises(ConfigError, match="positions"):
        LSATransformerConfig(positions=3)


def test_token_sensitivities_of_a_copy_and_of_the_identity():
    """f(X)_j = X_j + X_{j+1} copies from the next token: next = own = √d, other = 0;
    the identity has next = 0."""
    from iclab.instruments import token_sensitivities

    tokens = jnp.ones((7, 3))
    shift = lambda t: t + jnp.concatenate([t[1:], jnp.zeros((1, 3))])
    out = token_sensitivities(shift, tokens)
    assert float(out["next"]) == pytest.approx(np.sqrt(3))
    assert float(out["own"]) == pytest.approx(np.sqrt(3))
    assert float(out["other"]) == pytest.approx(0.0)
    assert float(token_sensitivities(lambda t: t, tokens)["next"]) == pytest.approx(0.0)
    mixed = lambda t: t + jnp.mean(t[:-1], axis=0, keepdims=True)  # every token reads all
    assert float(token_sensitivities(mixed, tokens)["other"]) == pytest.approx(np.sqrt(3) / 6)


def test_on_rows_is_the_layer_on_every_row_against_numpy(key):
    """``on_rows`` (the models' row-major Linear/MLP) against float64 numpy and ``vmap``."""
    from iclab.models import on_rows

    k1, k2, k3, k4 = jax.random.split(key, 4)
    x = jax.random.normal(k1, (3, 5, 4))
    gelu = lambda z: 0.5 * z * (1 + np.tanh(np.sqrt(2 / np.pi) * (z + 0.044715 * z ** 3)))
    as64 = lambda a: np.asarray(a, np.float64)
    mlp = eqx.nn.MLP(4, 6, 16, depth=2, activation=jax.nn.gelu, key=k2)
    h = as64(x)
    for layer in mlp.layers[:-1]:
        h = gelu(h @ as64(layer.weight).T + as64(layer.bias))
    expected = h @ as64(mlp.layers[-1].weight).T + as64(mlp.layers[-1].bias)
    np.testing.assert_allclose(on_rows(mlp, x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(on_rows(mlp, x), jax.vmap(jax.vmap(mlp))(x), rtol=1e-5,
                               atol=1e-6)
    plain = eqx.nn.Linear(4, 7, use_bias=False, key=k3)
    np.testing.assert_allclose(on_rows(plain, x), as64(x) @ as64(plain.weight).T,
                               rtol=1e-5, atol=1e-5)
    # layers with a "scalar" end fall back to vmap, the leading axes kept
    scalar_in = eqx.nn.Linear("scalar", 3, key=k4)
    assert on_rows(scalar_in, x[..., 0]).shape == (3, 5, 3)
    np.testing.assert_allclose(on_rows(scalar_in, x[..., 0]),
                               jax.vmap(jax.vmap(scalar_in))(x[..., 0]), rtol=1e-6)
    scalar_out = eqx.nn.MLP(4, "scalar", 8, depth=1, key=k4)
    np.testing.assert_allclose(on_rows(scalar_out, x), jax.vmap(jax.vmap(scalar_out))(x),
                               rtol=1e-5, atol=1e-6)
    with pytest.raises(TypeError, match="eqx.nn.Linear or eqx.nn.MLP"):
        on_rows(eqx.nn.LayerNorm(4), x)
