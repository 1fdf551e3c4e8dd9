"""induction-heads: emergence-time helpers, config validation, a smoke run."""

import json
import math

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab._errors import ConfigError
from iclab.cli import main
from iclab.config import apply_overrides
from iclab.engine import next_token_losses
from iclab.instruments import first_crossing, loglog_slope
from iclab.recipes.induction_heads import LanguageEval, language_metrics, quick_config
from iclab.store import load_run
from iclab.tasks import RepeatedTokensTask, one_hot_tokens


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
    with pytest.raises(ConfigError, match="language.probe_length"):
        apply_overrides(quick_config(), ["language.probe_length=33"])
    with pytest.raises(ConfigError, match="language.corpus.min_length"):
        apply_overrides(quick_config(), ["language.corpus.min_length=40"])


class Copier(eqx.Module):
    """An exact induction rule: at t, find the latest s < t with x_s = x_t and predict
    x_{s+1} with logit ``scale`` (uniform logits if there is none); attend to s + 1."""

    scale: float = eqx.field(static=True)

    def _last(self, x):
        tokens, t = jnp.argmax(x, -1), x.shape[0]
        earlier = jnp.arange(t)[None, :] < jnp.arange(t)[:, None]
        same = (tokens[:, None] == tokens[None, :]) & earlier
        return tokens, jnp.max(jnp.where(same, jnp.arange(t)[None, :], -1), axis=1)

    def __call__(self, x):
        tokens, last = self._last(x)
        predicted = jax.nn.one_hot(tokens[jnp.maximum(last, 0) + 1], x.shape[1])
        return jnp.where((last >= 0)[:, None], self.scale * predicted, 0.0)

    def attention_patterns(self, x):
        _, last = self._last(x)
        return jax.nn.one_hot(jnp.where(last >= 0, last + 1, 0), x.shape[0])[None, None]


def test_language_metrics_against_numpy_on_an_exact_copier():
    """The probe bookkeeping (which positions are the two copies, the ICL score, the
    prefix-matching score) against an independent numpy loop over the same sequences."""
    lang = quick_config().language
    vocab, length, scale = lang.corpus.vocab_size, lang.probe_length, 6.0
    probe = lang.probe.sample_batch(jax.random.key(3), 40).tokens
    corpus = lang.corpus.sample_batch(jax.random.key(4), 8).tokens
    out = language_metrics(Copier(scale), LanguageEval(corpus, probe), lang)
    losses = np.zeros((probe.shape[0], 2 * length))
    for b, seq in enumerate(np.asarray(probe)):
        for t in range(2 * length):
            earlier = [s for s in range(t) if seq[s] == seq[t]]
            if not earlier:
                losses[b, t] = np.log(vocab)
                continue
            right = seq[earlier[-1] + 1] == seq[t + 1]
            norm = np.log(np.exp(scale) + vocab - 1)
            losses[b, t] = norm - (scale if right else 0.0)
    icl = np.mean(losses[:, length + 1:] - losses[:, 1:length])
    np.testing.assert_allclose(float(out["icl_score"]), icl, rtol=1e-5)
    np.testing.assert_allclose(float(out["first_copy_loss"]), losses[:, 1:length].mean(),
                               rtol=1e-5)
    np.testing.assert_allclose(float(out["second_copy_loss"]),
                               losses[:, length + 1:].mean(), rtol=1e-5)
    assert float(out["prefix_matching"]) == pytest.approx(1.0)
    assert float(out["icl_score"]) < -0.5 * np.log(vocab)  # the copier does ICL
    # next_token_losses itself: −log softmax of the logits at the next token
    x = one_hot_tokens(probe[0, :-1], vocab)
    logits = np.asarray(Copier(scale)(x), np.float64)
    logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
    np.testing.assert_allclose(np.asarray(next_token_losses(Copier(scale), probe[:1], vocab))[0],
                               -logp[np.arange(2 * length), np.asarray(probe[0, 1:])],
                               rtol=1e-5)
    assert isinstance(lang.probe, RepeatedTokensTask) and lang.probe.min_length is None


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
                 "--set", "disentangled.max_steps=200", "--set", "disentangled.subspace_steps=3",
                 "--set", "language.train.steps=40", "--set", "language.train.eval_every=20",
                 "--set", "language.eval_sequences=16", "--set", "language.train.seeds=1"])
    assert code in (0, 1)
    (run,) = (tmp_path / "induction-heads").iterdir()
    claims = json.loads((run / "claims.json").read_text())
    assert [c["id"] for c in claims] == ["induction_head_forms", "drop_coincides",
                                         "quadratic_emergence", "quadratic_emergence_upper",
                                         "ablation_removes_icl", "one_layer_control",
                                         "emergence_order", "lm_icl_score",
                                         "lm_prefix_matching", "lm_phase_change",
                                         "lm_ablation", "lm_one_layer"]
    checks = json.loads((run / "checks.json").read_text())
    assert [c["id"] for c in checks] == ["stays_in_subspace", "reduced_dynamics_exact"]
    assert all(c["passed"] for c in checks)
    tables = load_run(run).tables
    assert sorted(tables["standard"].n) == [2, 3]
    dis = tables["dis_times"]
    assert list(dis.n) == [2, 3] and all(math.isfinite(t) for t in dis.t_icl)
    subspace = tables["subspace"].groupby("population").residual.max()
    assert subspace["haar"] > 1e3 * subspace["symmetric"]
    assert (run / "report.html").read_text().count("<svg") == 9
    ablation = tables["ablation"]
    assert set(ablation.model) == {"trained", "layer 2 ablated", "layer 1 ablated"}
    assert list(tables["control"].n) == [4]
    language = tables["language"]
    assert list(language.model) == ["2-layer", "1-layer"]
    assert np.all(np.isfinite(language.ablation_rise.iloc[:1]))
    positions = tables["language_positions"]
    assert set(positions.model) == {"2-layer", "2-layer, layer 2 ablated",
                                    "2-layer, layer 1 ablated", "1-layer"}
    assert positions.position.max() == 2 * 25 - 1
