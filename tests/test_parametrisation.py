"""Parametrisations: SP at the base shape, the per-role tables, NTK's SP form against the
explicitly parametrised network, forward multipliers that take effect, and bad input."""

import dataclasses
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from iclab.config import ConfigError
from iclab.engine import OptimConfig, make_optimizer
from iclab.models import GPT, ForwardMultipliers, GPTConfig
from iclab.parametrisation import SCHEMES, Parametrisation

BASE = GPTConfig(dim_in=3, width=16, layers=2, heads=2, max_len=8)
WIDE = GPTConfig(dim_in=3, width=64, layers=8, heads=2, max_len=8)  # m = 4, r = 4


def _gpt(config, seed=0):
    return GPT(config, key=jax.random.key(seed))


def _tokens(seed=1, t=6):
    return jax.random.normal(jax.random.key(seed), (t, 3))


def _loss(model, tokens):
    return jnp.mean((model(tokens) - jnp.sin(tokens[:, 0])) ** 2)


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_every_scheme_is_sp_at_the_base_shape(scheme, optimizer):
    model = _gpt(BASE)
    scaling = Parametrisation(scheme, optimizer).scale(model, _gpt(BASE, 5))
    assert scaling.forward == ForwardMultipliers()
    assert all((r.init, r.lr, r.wd, r.eps) == (1.0, 1.0, 1.0, 1.0) for r in scaling.rows)
    scaled = scaling.initialise(model)
    tokens = _tokens()
    assert np.array_equal(scaled(tokens), model(tokens))
    # two steps of the optimiser with the scaling: bit for bit SP's
    config = OptimConfig(name="adamw" if optimizer == "adam" else "sgd", lr=1e-2,
                         weight_decay=0.1 if optimizer == "adam" else 0.0)
    runs = []
    grad = eqx.filter_jit(eqx.filter_grad(lambda p: _loss(eqx.combine(p, model), tokens)))
    for s in (None, scaling):
        params = eqx.filter(model, eqx.is_array)
        opt = make_optimizer(config, 10, scaling=s)
        state = opt.init(params)
        for _ in range(2):
            grads = grad(params)
            updates, state = opt.update(grads, state, params)
            params = optax.apply_updates(params, updates)
        runs.append(params)
    for a, b in zip(jax.tree.leaves(runs[0]), jax.tree.leaves(runs[1]), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-9)


# The tables of dynamics.md §6 (TP-V Table 3 / microsoft/mup for width; the nanoGPT-mup
# ``completep`` code for depth), written out per class for m = 4 (width) and r = 4 (depth):
# (init multiplier for a fan-in-initialised array, lr, wd, eps) per scheme and optimiser.
M, R = 4.0, 4.0


def _expected(scheme, optimizer, cls, in_block, fan_in_init):
    alpha = {"sp": 0, "ntk": 0, "mup": 0, "depth_mup": 0.5, "completep": 1}[scheme]
    if scheme == "sp" or cls == "fixed":
        eps = (1 / M) * R ** -alpha if scheme in ("mup", "depth_mup", "completep") and \
            optimizer == "adam" else 1.0
        return 1.0, 1.0, 1.0, eps
    b = 0.5 if fan_in_init else 0.0
    if scheme == "ntk":
        init = M ** (b - 0.5) if cls in ("hidden", "output") else M ** b
        if cls in ("hidden", "output"):
            lr = M ** -0.5 if optimizer == "adam" else 1 / M
            return init, lr, 1 / lr, (M ** 0.5 if optimizer == "adam" else 1.0)
        return init, 1.0, 1.0, 1.0
    init = M ** (b - 0.5) if cls == "hidden" else M ** b
    if optimizer == "adam":
        width_lr = 1 / M if cls == "hidden" else 1.0
        depth_lr = R ** (alpha - 1) if in_block and cls in ("hidden", "vector") and \
            scheme != "mup" else 1.0
        return init, width_lr * depth_lr, 1 / width_lr, (1 / M) * R ** -alpha
    width_lr = 1.0 if cls == "hidden" else M
    depth_lr = R ** (2 * alpha - 1) if in_block and cls in ("hidden", "vector") and \
        scheme != "mup" else 1.0
    return init, width_lr * depth_lr, 1 / width_lr, 1.0


CLASS_OF = {"read_in.weight": "input", "positions": "input", "read_in.bias": "vector",
            "blocks.5.qkv.weight": "hidden", "blocks.5.mlp.layers.1.weight": "hidden",
            "blocks.5.mlp.layers.0.bias": "vector", "blocks.5.ln2.weight": "vector",
            "ln_f.bias": "vector", "read_out.weight": "output", "read_out.bias": "fixed"}
FAN_IN_INIT = {"blocks.5.qkv.weight", "blocks.5.mlp.layers.1.weight",
               "blocks.5.mlp.layers.0.bias", "read_out.weight", "read_out.bias"}


@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_multipliers_match_the_tables(scheme, optimizer):
    scaling = Parametrisation(scheme, optimizer).scale(_gpt(WIDE), _gpt(BASE))
    rows = {r.name: r for r in scaling.rows}
    for name, cls in CLASS_OF.items():
        row = rows[name]
        assert row.cls == cls, name
        want = _expected(scheme, optimizer, cls, name.startswith("blocks."),
                         name in FAN_IN_INIT)
        assert (row.init, row.lr, row.wd, row.eps) == pytest.approx(want), (name, want)
    alpha = scaling.alpha
    mu = scheme in ("mup", "depth_mup", "completep")
    assert scaling.forward.branch == pytest.approx(R ** -alpha)
    # head width 32 against the base's 8: 1/d attention is √(8/32) over 1/√d
    assert scaling.forward.logit == pytest.approx(0.5 if mu else 1.0)
    assert scaling.forward.output == pytest.approx(1 / M if mu else 1.0)


def test_completep_matches_the_nanogpt_mup_code():
    """The CompleteP rules as the nanoGPT-mup ``completep`` branch writes them, for
    α = 0.75: hidden lr m_N⁻¹ m_L^(α−1), in-block vectors m_L^(α−1), embeddings 1, hidden
    wd m_N, ε m_N⁻¹ m_L^(−α), branches m_L^(−α), output 1/m_N."""
    alpha = 0.75
    s = Parametrisation("completep", alpha=alpha).scale(_gpt(WIDE), _gpt(BASE))
    rows = {r.name: r for r in s.rows}
    assert rows["blocks.3.out.weight"].lr == pytest.approx(R ** (alpha - 1) / M)
    assert rows["blocks.3.ln1.bias"].lr == pytest.approx(R ** (alpha - 1))
    assert rows["positions"].lr == rows["read_in.weight"].lr == rows["ln_f.weight"].lr == 1
    assert rows["blocks.3.out.weight"].wd == pytest.approx(M)
    assert rows["blocks.3.out.weight"].eps == pytest.approx(R ** -alpha / M)
    assert s.forward.branch == pytest.approx(R ** -alpha)
    assert s.forward.output == pytest.approx(1 / M)


def test_forward_multipliers_take_effect():
    """Each multiplier equals rescaling the weights it stands for (so none can silently do
    nothing): branch c ≡ c × (attention output and MLP output maps), logits c ≡ c × the
    query rows, read-out c ≡ c × the read-out weight."""
    model, tokens = _gpt(BASE), _tokens()
    c = 0.37
    w = BASE.width

    def scaled(m, where, factor):
        return eqx.tree_at(where, m, replace_fn=lambda a: a * factor)

    branch = model
    for i in range(BASE.layers):
        branch = scaled(branch, lambda m, i=i: (m.blocks[i].out.weight, m.blocks[i].out.bias,
                                                 m.blocks[i].mlp.layers[1].weight,
                                                 m.blocks[i].mlp.layers[1].bias), c)
    np.testing.assert_allclose(model.with_multipliers(ForwardMultipliers(branch=c))(tokens),
                               branch(tokens), rtol=1e-5, atol=1e-6)
    logit = model
    for i in range(BASE.layers):
        logit = eqx.tree_at(lambda m, i=i: (m.blocks[i].qkv.weight, m.blocks[i].qkv.bias),
                            logit, replace_fn=lambda a: a.at[:w].multiply(c))
    np.testing.assert_allclose(model.with_multipliers(ForwardMultipliers(logit=c))(tokens),
                               logit(tokens), rtol=1e-5, atol=1e-6)
    output = scaled(model, lambda m: m.read_out.weight, c)
    np.testing.assert_allclose(model.with_multipliers(ForwardMultipliers(output=c))(tokens),
                               output(tokens), rtol=1e-5, atol=1e-6)
    assert not np.allclose(model.with_multipliers(ForwardMultipliers(output=c))(tokens),
                           model(tokens))


def test_declared_init_exponents_match_the_arrays():
    """GPT's declared b (std ∝ m^(−b)) against the RMS of its arrays at widths 64 and
    256 (the larger arrays, where the RMS is sharp)."""
    small = _gpt(GPTConfig(dim_in=3, width=64, layers=1, heads=2, max_len=64))
    large = _gpt(GPTConfig(dim_in=3, width=256, layers=1, heads=2, max_len=64), 1)
    names = lambda m: {n: (a, b) for n, a, b in zip(
        [r.name for r in Parametrisation().scale(m, m).rows],
        jax.tree.leaves(eqx.filter(m, eqx.is_array)), jax.tree.leaves(m.init_exponents()),
        strict=True)}
    a, b = names(small), names(large)
    checked = 0
    for name, (x, exponent) in a.items():
        y = b[name][0]
        rms = lambda v: float(jnp.sqrt(jnp.mean(v ** 2)))
        if x.size < 64 or rms(x) == 0 or jnp.all(x == 1):
            continue
        assert rms(y) / rms(x) == pytest.approx(4.0 ** -exponent, rel=0.12), name
        checked += 1
    assert checked >= 8


def test_ntk_sp_form_equals_the_explicitly_parametrised_network():
    """NTK parametrisation written explicitly: raw weights w with W = c·w (c = m^(−½) for
    the arrays whose fan-in is the width), trained by Adam with (η, ε) on w. In SP form the
    scheme trains W directly with lr η·c and ε/c: the two runs agree step for step."""
    wide, base = _gpt(WIDE), _gpt(BASE)
    scaling = Parametrisation("ntk", "adam").scale(wide, base)
    c = jax.tree.map(lambda r: r, scaling.lr)  # NTK Adam: lr multiplier = c
    model = scaling.initialise(wide)
    params, static = eqx.partition(model, eqx.is_array)
    tokens = _tokens(3)
    raw = jax.tree.map(lambda p, k: p / k, params, c)
    config = OptimConfig(name="adam", lr=3e-3, eps=1e-3)  # a large ε, so that it matters
    opt_raw = make_optimizer(config, 10)
    opt_sp = make_optimizer(config, 10, scaling=scaling)
    s_raw, s_sp = opt_raw.init(raw), opt_sp.init(params)
    loss_raw = lambda w: _loss(eqx.combine(jax.tree.map(lambda a, k: a * k, w, c), static),
                               tokens)
    loss_sp = lambda p: _loss(eqx.combine(p, static), tokens)
    grad_raw, grad_sp = jax.jit(jax.grad(loss_raw)), jax.jit(jax.grad(loss_sp))
    for _ in range(3):
        u, s_raw = opt_raw.update(grad_raw(raw), s_raw, raw)
        raw = optax.apply_updates(raw, u)
        u, s_sp = opt_sp.update(grad_sp(params), s_sp, params)
        params = optax.apply_updates(params, u)
    hidden = [r.name for r in scaling.rows if r.cls == "hidden"]
    assert math.isclose(scaling.rows[[r.name for r in scaling.rows].index(hidden[0])].eps,
                        2.0)
    for a, k, b in zip(jax.tree.leaves(raw), jax.tree.leaves(c), jax.tree.leaves(params),
                       strict=True):
        np.testing.assert_allclose(a * k, b, rtol=2e-4, atol=1e-7)


def test_overrides_replace_a_multiplier():
    p = Parametrisation("mup", overrides=("read_out.weight:init=0", "blocks.*.qkv.*:lr=0.5"))
    s = p.scale(_gpt(WIDE), _gpt(BASE))
    model = s.initialise(_gpt(WIDE))
    assert not np.any(model.read_out.weight)
    assert all(r.lr == 0.5 for r in s.rows if ".qkv." in r.name)
    assert "read_out.weight" in s.describe() and "hidden" in s.describe()


@pytest.mark.parametrize("kwargs, key", [
    ({"scheme": "mupp"}, "parametrisation.scheme"),
    ({"scheme": "mup", "alpha": 0.5}, "parametrisation.alpha"),
    ({"scheme": "completep", "alpha": 2.0}, "parametrisation.alpha"),
    ({"overrides": ("read_out.weight=0",)}, "parametrisation.overrides"),
    ({"overrides": ("read_out.weight:speed=0",)}, "parametrisation.overrides"),
    ({"weight_decay": "both"}, "parametrisation.weight_decay"),
])
def test_bad_parametrisations_name_the_value(kwargs, key):
    with pytest.raises(ConfigError, match=key):
        Parametrisation(**kwargs)


def test_mismatched_optimizer_and_unmatched_override_are_refused():
    s = Parametrisation("mup", "sgd").scale(_gpt(WIDE), _gpt(BASE))
    with pytest.raises(ConfigError, match="parametrisation.optimizer"):
        make_optimizer(OptimConfig(name="adam"), 10, scaling=s)
    with pytest.raises(ConfigError, match="glob matching"):
        Parametrisation("mup", overrides=("nothing.*:lr=1",)).scale(_gpt(WIDE), _gpt(BASE))
    with pytest.raises(TypeError, match="ScalableModel"):
        Parametrisation().scale(object(), _gpt(BASE))


# -- through the engine -------------------------------------------------------------------
def _language(width, layers=2):
    from iclab.tasks import MarkovLanguageTask

    task = MarkovLanguageTask(vocab=8, length=8)
    config = GPTConfig(dim_in=8, dim_out=8, width=width, layers=layers, heads=2, max_len=8)
    return task, (lambda key: GPT(config, key=key))


@pytest.mark.parametrize("scheme", ["sp", "mup"])
def test_the_trainer_applies_the_parametrisation(scheme):
    """Adam's first step is −η·g/(|g| + ε) per entry, so on one fixed batch every hidden
    weight moves by η·lr_p (μP: η/m) and the read-out by η, to ε's precision."""
    from iclab.engine import Trainer, coordinate_setup, language_problem, parametrised

    task, wide = _language(32)
    _, base = _language(8)
    problem = parametrised(language_problem(task, wide), Parametrisation(scheme), base)
    problem, train, batch = coordinate_setup(problem, steps=1)
    train = dataclasses.replace(train, probes=dataclasses.replace(train.probes, every=0))
    trainer = Trainer(problem, OptimConfig(name="adam", lr=1e-2, eps=1e-12), train)
    before = trainer.init()
    after = trainer.fit(batch)
    m = 32 / 8
    moved = lambda get: np.abs(np.asarray(get(after.params)) - np.asarray(get(before.params)))
    hidden = moved(lambda p: p.blocks[1].mlp.layers[0].weight)
    readout = moved(lambda p: p.read_out.weight)
    want = 1e-2 / m if scheme == "mup" else 1e-2
    assert np.median(hidden) == pytest.approx(want, rel=1e-3)
    assert hidden.max() <= want * (1 + 1e-5)
    assert np.median(readout) == pytest.approx(1e-2, rel=1e-3)
    # and the model was initialised by the scheme: μP's read-out input is 1/m
    model = trainer.models(after)[0]
    assert model.multipliers.output == (1 / m if scheme == "mup" else 1.0)


def test_coordinate_sizes_are_mean_absolute_activations():
    from iclab.instruments import coordinate_sizes

    model, other = _gpt(BASE), _gpt(BASE, 3)
    inputs = jax.random.normal(jax.random.key(4), (3, 5, 3))
    sizes = coordinate_sizes(model, inputs, initial=other)
    stream = np.stack([np.asarray(model.residual_stream(x)) for x in inputs])
    start = np.stack([np.asarray(other.residual_stream(x)) for x in inputs])
    assert float(sizes["embedding"]) == pytest.approx(np.abs(stream[:, 0]).mean(), rel=1e-5)
    assert float(sizes["block2"]) == pytest.approx(np.abs(stream[:, 2]).mean(), rel=1e-5)
    assert float(sizes["delta_block1"]) == pytest.approx(
        np.abs(stream[:, 1] - start[:, 1]).mean(), rel=1e-5)
    outputs = np.stack([np.asarray(model(x)) for x in inputs])
    assert float(sizes["output"]) == pytest.approx(np.abs(outputs).mean(), rel=1e-5)


@pytest.mark.parametrize("module", ["iclab.parametrisation._scheme",
                                    "iclab.parametrisation._transforms",
                                    "iclab.instruments._coordinates",
                                    pytest.param("iclab.engine._coordinates",
                                                 marks=pytest.mark.slow),  # trains: 24 s
                                    "iclab.parametrisation._sweep",
                                    "iclab.instruments._transfer",
                                    "iclab.instruments._propagation"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module))
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.slow  # four compilations of the probe program: 44 s
def test_scaled_sharpness_and_ntk_follow_the_learning_rate_multipliers():
    """Under a parametrisation the probes read D^{1/2} H D^{1/2} and J D Jᵀ with D the
    per-array learning-rate multipliers: uniform D = c·I scales both by exactly c, and a
    per-array D matches the operator built by hand."""
    from iclab.engine import ProbeConfig, language_problem, parametrised, probe_metrics
    from iclab.instruments import hessian_operator, power_iteration

    task, small = _language(8, layers=1)
    plain = language_problem(task, small)
    config = ProbeConfig(every=1, batch_size=4, norms=False, entropy=False, sharpness=40,
                         ntk=3)
    model = small(jax.random.key(0))
    batch = task.sample_batch(jax.random.key(1), 4)
    opt = make_optimizer(OptimConfig(name="sgd", lr=0.1), 10)
    state = opt.init(eqx.filter(model, eqx.is_array))

    def probes(problem, config=config):
        run = eqx.filter_jit(lambda m, s, b: probe_metrics(problem, opt, config, m, s, b,
                                                          initial=m))
        return run(model, state, batch)

    base = probes(plain)
    uniform = probes(parametrised(plain, Parametrisation("sp", "sgd",
                                                         overrides=("*:lr=0.25",)), small))
    assert float(uniform["probe/scaled_sharpness"]) == pytest.approx(
        0.25 * float(base["probe/sharpness"]), rel=1e-4)
    assert float(uniform["probe/ntk/top"]) == pytest.approx(
        0.25 * float(base["probe/ntk/top"]), rel=1e-4)
    assert float(uniform["probe/ntk/distance"]) == pytest.approx(0.0, abs=1e-6)
    readout = parametrised(plain, Parametrisation("sp", "sgd",
                                                  overrides=("read_out.*:lr=4",)), small)
    got = float(probes(readout, dataclasses.replace(config, ntk=0))[
        "probe/scaled_sharpness"])
    params, static = eqx.partition(model, eqx.is_array)
    manual = eqx.tree_at(lambda p: (p.read_out.weight, p.read_out.bias),
                         jax.tree.map(jnp.ones_like, params),
                         replace_fn=lambda a: 4.0 * a)
    loss = lambda p: readout.loss(eqx.combine(p, static), batch)
    matvec, flat = hessian_operator(loss, params, manual)
    start = jnp.ones_like(flat) + 0.1 * jnp.cos(jnp.arange(flat.size, dtype=flat.dtype))
    top = eqx.filter_jit(lambda v: power_iteration(matvec, v, 40)[0])(start)
    assert got == pytest.approx(float(top), rel=1e-4)
    assert got != pytest.approx(float(base["probe/sharpness"]), rel=1e-2)
