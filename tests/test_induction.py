"""Induction tasks and attention-pattern scores on hand-made patterns with known answers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab._errors import ConfigError
from iclab.instruments import (
    head_scores,
    icl_score,
    induction_mask,
    pattern_score,
    previous_token_mask,
    repeat_icl_score,
    uniform_score,
)
from iclab.tasks import BurstyClassificationTask, ItemLabelTask, RepeatedTokensTask


def test_repeated_tokens_layout(key):
    task = RepeatedTokensTask(vocab=10, length=5, repeats=3)
    seq = task.sample(key)
    tokens = np.asarray(seq.tokens)
    assert tokens.shape == (16,) and tokens[0] == 10 and task.vocab_size == 11
    np.testing.assert_array_equal(tokens[1:6], tokens[6:11])
    np.testing.assert_array_equal(tokens[1:6], tokens[11:16])


def test_repeated_tokens_with_a_varying_period(key):
    task = RepeatedTokensTask(vocab=12, length=9, repeats=2, min_length=3)
    keys = jax.random.split(key, 3000)
    tokens = np.asarray(jax.vmap(lambda k: task.sample(k).tokens)(keys))
    periods = np.asarray(jax.vmap(task.period)(keys))
    assert tokens.shape == (3000, 19) and np.all(tokens[:, 0] == 12)
    assert np.all(tokens[:, 1:] < 12)
    for seq, p in zip(tokens[:, 1:], periods, strict=True):  # x_{t+P} = x_t throughout
        np.testing.assert_array_equal(seq[p:], seq[:-p])
    counts = np.bincount(periods, minlength=10)[3:]  # P uniform on {3 … 9}: 7 values
    assert counts.sum() == 3000 and np.all(np.abs(counts - 3000 / 7) < 5 * np.sqrt(3000 / 7))
    # the block itself is uniform: its first token's frequencies
    first = np.bincount(tokens[:, 1], minlength=12)
    assert np.all(np.abs(first - 250) < 5 * np.sqrt(250))
    fixed = RepeatedTokensTask(vocab=12, length=9, repeats=2)  # unchanged without min_length
    block = np.asarray(jax.random.randint(key, (9,), 0, 12))
    np.testing.assert_array_equal(fixed.sample(key).tokens, np.r_[12, block, block])
    with pytest.raises(ConfigError, match="task.min_length"):
        RepeatedTokensTask(length=5, min_length=6)


def test_repeat_icl_score_against_numpy(key):
    length = 7
    losses = np.asarray(jax.random.uniform(key, (2 * length,)))
    expected = np.mean([losses[length + i] - losses[i] for i in range(1, length)])
    np.testing.assert_allclose(float(repeat_icl_score(jnp.asarray(losses), length)), expected,
                               rtol=1e-6)
    np.testing.assert_allclose(float(icl_score(jnp.asarray(losses), 2, 9)),
                               losses[9] - losses[2], rtol=1e-6)


def test_item_label_task_targets_the_query_label(key):
    task = ItemLabelTask(n_pairs=6, items=10, labels=4)
    batch = task.sample_batch(key, 200)
    tokens, target = np.asarray(batch.tokens), np.asarray(batch.target)
    assert tokens.shape == (200, 13)
    for seq, y in zip(tokens, target, strict=True):
        items, labels, query = seq[0:12:2], seq[1:12:2], seq[-1]
        assert len(set(items)) == 6 and np.all(items < 10) and np.all(labels >= 10)
        assert y == labels[list(items).index(query)]
    with pytest.raises(ConfigError, match="task.items"):
        ItemLabelTask(n_pairs=8, items=4)


def test_bursty_task_modes(key):
    task = BurstyClassificationTask(classes=20, dim=8, labels=5, n_pairs=8, burstiness=4,
                                    within_class_noise=0.0)
    means, class_labels = task.class_table()
    batch = task.sample_batch(key, 64)
    assert batch.items.shape == (64, 8, 8) and batch.query.shape == (64, 8)

    def classes_of(x):  # noise-free items: (μ_k)/1 → identify the class by nearest mean
        return np.argmin(((np.asarray(x)[..., None, :] - np.asarray(means)) ** 2).sum(-1), -1)

    ctx, q = classes_of(batch.items), classes_of(batch.query)
    for c, qq in zip(ctx, q, strict=True):  # bursty: 2 classes × 4, one is the query's
        values, counts = np.unique(c, return_counts=True)
        assert len(values) == 2 and set(counts) == {4} and qq in values
    np.testing.assert_array_equal(batch.target, np.asarray(class_labels)[q])
    iwl = task.sample_batch(key, 64, mode="iwl")
    ctx, q = classes_of(iwl.items), classes_of(iwl.query)
    assert all(qq not in c for c, qq in zip(ctx, q, strict=True))
    icl = task.sample_batch(key, 64, mode="icl")
    for labels, target in zip(np.asarray(icl.labels), np.asarray(icl.target), strict=True):
        assert len(set(labels)) == 2 and target in labels
    zipf = BurstyClassificationTask(classes=4, n_pairs=8, burstiness=4, zipf=1.0)
    np.testing.assert_allclose(zipf.zipf_probabilities(), np.array([1, 1 / 2, 1 / 3, 1 / 4]) /
                               (25 / 12), rtol=1e-6)
    with pytest.raises(ConfigError, match="burstiness"):
        BurstyClassificationTask(n_pairs=8, burstiness=3)


def _repeated(length=6):
    block = jnp.arange(length)
    return jnp.concatenate([jnp.array([99]), block, block])  # BOS + 2 copies


def test_perfect_patterns_score_one_and_others_zero():
    tokens = _repeated()
    t = tokens.shape[0]
    previous = jnp.eye(t, k=-1).at[0, 0].set(1.0)
    induction = jnp.zeros((t, t))
    for q in range(t):  # second copy: attend to the token after the earlier occurrence
        if q >= 7:
            induction = induction.at[q, q - 5].set(1.0)
        else:
            induction = induction.at[q, 0].set(1.0)  # first copy: park on BOS
    patterns = jnp.stack([previous, induction])[None]  # (1 layer, 2 heads, t, t)
    scores = head_scores(patterns, tokens)
    # row 1's "park on BOS" is also its previous token: 1 of the 12 scored rows
    np.testing.assert_allclose(scores["previous_token"][0], [1.0, 1 / 12], atol=1e-6)
    np.testing.assert_allclose(scores["induction"][0], [0.0, 1.0], atol=1e-6)
    # the induction head attends to the token after the duplicate, not the duplicate
    np.testing.assert_allclose(scores["duplicate_token"][0], [0.0, 0.0], atol=1e-6)


def test_uniform_attention_scores_its_analytic_value():
    """BOS + 2 copies of L distinct tokens: rows t = L+1..2L each have one induction
    match, so uniform attention scores mean_{t}(1/(t + 1)) over those rows."""
    length = 6
    tokens = _repeated(length)
    t = tokens.shape[0]
    uniform = jnp.tril(jnp.ones((t, t))) / jnp.arange(1, t + 1)[:, None]
    expected = np.mean([1 / (q + 1) for q in range(length + 1, 2 * length + 1)])
    assert float(pattern_score(uniform, induction_mask(tokens))) == pytest.approx(expected)
    assert float(uniform_score(induction_mask(tokens))) == pytest.approx(expected)
    prev_expected = np.mean([1 / (q + 1) for q in range(1, t)])
    assert float(uniform_score(previous_token_mask(t))) == pytest.approx(prev_expected)


def test_icl_score_is_late_minus_early():
    losses = jnp.linspace(3.0, 1.0, 11)
    assert float(icl_score(losses, early=1, late=9)) == pytest.approx(1.2 - 2.8)


def test_scores_work_on_a_model_pattern(key):
    from iclab.models import CausalTransformer, CausalTransformerConfig

    config = CausalTransformerConfig(layers=("softmax", "softmax"), heads=2, key_size=4, dim=8,
                                     readout="linear", init_std=0.3).resolve(5, 5)
    model = CausalTransformer(config, key=key)
    tokens = jax.random.randint(key, (9,), 0, 5)
    patterns = model.attention_patterns(jax.nn.one_hot(tokens, 5))
    scores = head_scores(patterns, tokens)
    for value in scores.values():
        assert value.shape == (2, 2) and np.all((value >= 0) & (value <= 1 + 1e-6))


def test_one_hot_tokens_and_learned_positions(key):
    from iclab.models import CausalTransformer, CausalTransformerConfig
    from iclab.tasks import one_hot_tokens

    x = np.asarray(one_hot_tokens(jnp.array([2, 0, 2]), 3, positions=4))
    np.testing.assert_array_equal(x, [[0, 0, 1, 1, 0, 0, 0], [1, 0, 0, 0, 1, 0, 0],
                                      [0, 0, 1, 0, 0, 1, 0]])
    with pytest.raises(ConfigError, match="model.max_len"):
        CausalTransformerConfig(max_len=8)
    config = CausalTransformerConfig(layers=("softmax",), heads=1, key_size=4, dim=8,
                                     readout="linear", max_len=6, init_std=0.3).resolve(3, 3)
    model = CausalTransformer(config, key=key)
    same = one_hot_tokens(jnp.array([1, 1, 1]), 3)
    stream = np.asarray(model.residual_stream(same)[0])
    # identical tokens at different positions differ only by the learned positions
    np.testing.assert_allclose(stream[1] - stream[0], model.position_embedding[1] -
                               model.position_embedding[0], atol=1e-6)
