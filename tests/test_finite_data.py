"""Finite datasets: the modular-arithmetic tables against Python's own arithmetic, and the
epoch / full-batch / with-replacement samplers."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab._errors import ConfigError
from iclab.engine import finite_sampler
from iclab.tasks import MODULAR_OPERATIONS, ModularArithmetic

REFERENCE = {"x+y": lambda x, y, p: (x + y) % p, "x-y": lambda x, y, p: (x - y) % p,
             "x*y": lambda x, y, p: (x * y) % p, "x/y": lambda x, y, p: x * pow(y, -1, p) % p,
             "x^2+y^2": lambda x, y, p: (x * x + y * y) % p,
             "x^2+xy+y^2": lambda x, y, p: (x * x + x * y + y * y) % p,
             "x^3+xy": lambda x, y, p: (x**3 + x * y) % p}


@pytest.mark.parametrize("operation", MODULAR_OPERATIONS)
def test_every_equation_is_right_and_appears_once(operation):
    p = 11
    task = ModularArithmetic(p=p, operation=operation)
    every = task.equations()
    tokens, target = np.asarray(every.tokens), np.asarray(every.target)
    expected = p * (p - 1) if operation == "x/y" else p * p
    assert tokens.shape == (expected, 4) and target.shape == (expected,)
    assert (tokens[:, 1] == p).all() and (tokens[:, 3] == p + 1).all()
    assert len({(a, b) for a, _, b, _ in tokens}) == expected  # each (x, y) once
    for (x, _, y, _), z in zip(tokens, target, strict=True):
        assert z == REFERENCE[operation](int(x), int(y), p)
    assert task.vocab_size == p + 2


def test_split_is_seeded_disjoint_and_sized():
    task = ModularArithmetic(p=13, operation="x+y", train_fraction=0.3, split_seed=4)
    train, test = task.split()
    n = 13 * 13
    assert train.target.shape[0] == int(np.ceil(0.3 * n))
    assert train.target.shape[0] + test.target.shape[0] == n
    key = lambda e: {tuple(t) for t in np.asarray(e.tokens).tolist()}
    assert not key(train) & key(test)
    again, _ = task.split()
    np.testing.assert_array_equal(again.tokens, train.tokens)
    other, _ = ModularArithmetic(p=13, operation="x+y", train_fraction=0.3,
                                 split_seed=5).split()
    assert not np.array_equal(other.tokens, train.tokens)


@pytest.mark.parametrize("kwargs, key", [
    ({"p": 12, "operation": "x/y"}, "task.p"), ({"p": 1}, "task.p"),
    ({"operation": "x%y"}, "task.operation"), ({"train_fraction": 0.0}, "task.train_fraction"),
    ({"train_fraction": float("nan")}, "task.train_fraction"),
    ({"train_fraction": 1.5}, "task.train_fraction")])
def test_bad_modular_settings_are_refused(kwargs, key):
    with pytest.raises(ConfigError) as err:
        ModularArithmetic(**kwargs)
    assert err.value.key == key


def test_epochs_visit_every_example_once_inside_jit():
    data = {"x": jnp.arange(10), "y": jnp.arange(10) * 2}
    sample = jax.jit(finite_sampler(data, 3, seed=7), static_argnums=1)
    per_epoch = 10 // 3
    for epoch in range(3):
        seen = np.concatenate([np.asarray(sample(None, 3, jnp.int32(epoch * per_epoch + i))["x"])
                               for i in range(per_epoch)])
        assert len(set(seen.tolist())) == 9  # 3 batches of 3, no repeats; one left out
        batch = sample(None, 3, jnp.int32(epoch * per_epoch))
        np.testing.assert_array_equal(batch["y"], 2 * batch["x"])  # rows stay together
    first = [np.asarray(sample(None, 3, jnp.int32(i))["x"]) for i in range(per_epoch)]
    second = [np.asarray(sample(None, 3, jnp.int32(per_epoch + i))["x"])
              for i in range(per_epoch)]
    assert not all(np.array_equal(a, b) for a, b in zip(first, second, strict=True))


def test_full_batch_and_with_replacement():
    data = jnp.arange(8)
    full = finite_sampler(data, 8, mode="full")
    np.testing.assert_array_equal(full(None, 8, 0), data)
    draws = finite_sampler(data, 4, mode="replacement")(jax.random.key(0), 4000, 0)
    counts = np.bincount(np.asarray(draws), minlength=8)
    assert counts.min() > 400 and counts.max() < 600  # uniform: 500 ± ~5σ
    with pytest.raises(ConfigError, match="train.batch_size"):
        finite_sampler(data, 4, mode="full")
    with pytest.raises(ConfigError, match="train.batch_size"):
        finite_sampler(data, 9)


def test_sparse_parity_labels_are_the_product_over_a_fixed_support():
    from iclab.tasks import SparseParityTask

    task = SparseParityTask(n=12, k=3, support_seed=5)
    support = task.support
    assert len(support) == 3 and len(set(support)) == 3 and max(support) < 12
    assert SparseParityTask(n=12, k=3, support_seed=5).support == support
    assert SparseParityTask(n=12, k=3, support_seed=6).support != support
    batch = task.sample_batch(jax.random.key(0), 4000)
    x, y = np.asarray(batch.x), np.asarray(batch.y)
    assert set(np.unique(x)) == {-1.0, 1.0}
    np.testing.assert_array_equal(y, np.prod(x[:, list(support)], axis=1))
    assert abs(x.mean()) < 0.05 and abs(y.mean()) < 0.1  # balanced bits and labels
    # no single coordinate, and no pair inside the support, predicts the label
    assert np.abs(x.T @ y / len(y)).max() < 0.1
    with pytest.raises(ConfigError, match="task.k"):
        SparseParityTask(n=3, k=4)


# -- the synthetic Markov language --------------------------------------------------------
def test_markov_language_matches_its_chain_by_monte_carlo():
    """Sampled sequences against the closed forms: the bigram frequencies are π_i P_ij at
    every position (the chain starts stationary), and the mean of −log P(x_{t+1} | x_t)
    over the samples is the entropy rate, which an independent numpy computation gives."""
    from iclab.tasks import MarkovLanguageTask

    task = MarkovLanguageTask(vocab=6, length=12, branching=3, concentration=1.0)
    p, pi = task.transitions, task.stationary
    assert np.allclose(p.sum(1), 1) and np.allclose(pi @ p, pi) and (pi > 0).all()
    assert ((p > 0).sum(1) == 3).all()
    tokens = np.asarray(task.sample_batch(jax.random.key(0), 40_000).tokens)
    assert tokens.shape == (40_000, 13)
    pairs = np.zeros((6, 6))
    np.add.at(pairs, (tokens[:, :-1].ravel(), tokens[:, 1:].ravel()), 1)
    expected = pi[:, None] * p
    se = np.sqrt(expected * (1 - expected) / pairs.sum())
    assert np.all(np.abs(pairs / pairs.sum() - expected) <= 5 * se + 1e-12)
    for t in (0, 6, 12):  # the marginal is π at every position
        freq = np.bincount(tokens[:, t], minlength=6) / tokens.shape[0]
        assert np.abs(freq - pi).max() < 5 * np.sqrt(0.25 / tokens.shape[0])
    nll = -np.log(p[tokens[:, :-1], tokens[:, 1:]])
    rate = -sum(pi[i] * sum(p[i, j] * np.log(p[i, j]) for j in range(6) if p[i, j] > 0)
                for i in range(6))
    assert task.entropy_rate == pytest.approx(rate, rel=1e-12)
    per_sequence = nll.mean(axis=1)  # independent across sequences
    assert nll.mean() == pytest.approx(rate, abs=5 * per_sequence.std()
                                       / np.sqrt(per_sequence.size))


def test_markov_language_extremes_and_bad_input():
    from iclab.tasks import MarkovLanguageTask

    cycle = MarkovLanguageTask(vocab=5, length=7, branching=1)
    tokens = np.asarray(cycle.sample(jax.random.key(3)).tokens)
    assert (np.diff(tokens) % 5 == 1).all() and cycle.entropy_rate == pytest.approx(0.0)
    assert np.allclose(cycle.stationary, 0.2)
    with pytest.raises(ConfigError, match="task.branching"):
        MarkovLanguageTask(vocab=4, branching=5)
    with pytest.raises(ConfigError, match="task.concentration"):
        MarkovLanguageTask(concentration=float("nan"))
