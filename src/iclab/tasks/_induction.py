"""Discrete-token tasks that need an induction head (Olsson et al. 2022; Musat et al. 2025;
Reddy 2024). Each is a pure sampler ``sample(key)`` of integer token sequences.

- ``RepeatedTokensTask``: [BOS, r_1..r_L, r_1..r_L, ...] with r_i uniform over the
  vocabulary; after the first copy every next token is predictable by copying (the
  standard probe for induction heads and prefix-matching scores).
- ``ItemLabelTask``: the minimal in-context task — N distinct items, each followed by
  its label, then a query item from the context; the target is that item's label, which
  can only be read off the context (labels are drawn afresh per sequence).
- ``BurstyClassificationTask``: Reddy's in-context classification with Zipfian class
  frequencies and bursty contexts (see its docstring).
"""

import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from iclab._errors import ConfigError, check_nonnegative, check_positive_int


def one_hot_tokens(tokens: Int[Array, " t"], vocab_size: int,
                   positions: int = 0) -> Float[Array, "t d"]:
    """One-hot token vectors, with one-hot positions (0..positions−1) appended if
    ``positions`` > 0 — the orthonormal inputs of the minimal induction-head models."""
    x = jax.nn.one_hot(tokens, vocab_size)
    if positions:
        x = jnp.concatenate([x, jax.nn.one_hot(jnp.arange(tokens.shape[0]), positions)], -1)
    return x


class TokenSequence(eqx.Module):
    """Integer tokens (T,) and the target of the last position (the query's answer)."""

    tokens: Int[Array, " t"]
    target: Int[Array, ""]


@dataclass(frozen=True)
class RepeatedTokensTask:
    """A random block of ``length`` tokens repeated ``repeats`` times after a BOS token.

    Token ids 0..vocab−1 are ordinary tokens; id ``vocab`` is BOS. ``target`` is the
    last token (for a next-token loss use ``tokens[1:]`` as targets of ``tokens[:-1]``).
    """

    vocab: int = 64
    length: int = 25
    repeats: int = 2

    def __post_init__(self):
        for key in ("vocab", "length", "repeats"):
            check_positive_int(f"task.{key}", getattr(self, key))

    @property
    def vocab_size(self) -> int:
        return self.vocab + 1

    def sample(self, key: PRNGKeyArray) -> TokenSequence:
        block = jax.random.randint(key, (self.length,), 0, self.vocab)
        tokens = jnp.concatenate([jnp.array([self.vocab]), jnp.tile(block, self.repeats)])
        return TokenSequence(tokens, tokens[-1])

    def sample_batch(self, key: PRNGKeyArray, batch_size: int) -> TokenSequence:
        return jax.vmap(self.sample)(jax.random.split(key, batch_size))


@dataclass(frozen=True)
class ItemLabelTask:
    """N item–label pairs then a query item from the context; the target is its label.

    Items are N distinct ids from 0..items−1, labels are drawn uniformly (with
    replacement) from items..items+labels−1 for every sequence, so the item → label map
    is new in each sequence and only in-context copying solves it. The sequence is
    [x_1, y_1, ..., x_N, y_N, x_q] (length 2N + 1) with x_q = x_j for a uniform j.

    Args:
        n_pairs: N, the number of context pairs.
        items: size of the item vocabulary (≥ N).
        labels: size of the label vocabulary.
    """

    n_pairs: int = 8
    items: int = 32
    labels: int = 32

    def __post_init__(self):
        for key in ("n_pairs", "items", "labels"):
            check_positive_int(f"task.{key}", getattr(self, key))
        if self.items < self.n_pairs:
            raise ConfigError("task.items", self.items, f"an integer >= task.n_pairs = "
                              f"{self.n_pairs} (items in a context are distinct)")

    @property
    def vocab_size(self) -> int:
        return self.items + self.labels

    @property
    def length(self) -> int:
        return 2 * self.n_pairs + 1

    def sample(self, key: PRNGKeyArray) -> TokenSequence:
        k_items, k_labels, k_query = jax.random.split(key, 3)
        items = jax.random.permutation(k_items, self.items)[: self.n_pairs]
        labels = self.items + jax.random.randint(k_labels, (self.n_pairs,), 0, self.labels)
        j = jax.random.randint(k_query, (), 0, self.n_pairs)
        pairs = jnp.stack([items, labels], axis=1).reshape(-1)
        return TokenSequence(jnp.concatenate([pairs, items[j][None]]), labels[j])

    def sample_batch(self, key: PRNGKeyArray, batch_size: int) -> TokenSequence:
        return jax.vmap(self.sample)(jax.random.split(key, batch_size))


class BurstySequence(eqx.Module):
    """Items (2N+1 rows: N item–label pairs as items and one-hot labels, then the query)."""

    items: Float[Array, "n d"]
    labels: Int[Array, " n"]
    query: Float[Array, " d"]
    target: Int[Array, ""]


@dataclass(frozen=True)
class BurstyClassificationTask:
    """In-context classification with bursty, Zipfian data (Reddy 2024, after Chan et al. 2022).

    K classes with means μ_k ~ N(0, I_D/D) and labels ℓ(k) ∈ {0..L−1} drawn once (seed
    ``class_seed``). An item of class k is x = (μ_k + ε η)/√(1 + ε²), η ~ N(0, I_D/D).
    A sequence has N item–label pairs and a query item; the target is the query's label.

    - bursty sequence (probability ``p_bursty``): the context holds N/B classes, each B
      times (B = ``burstiness``), one of them the query's class;
    - otherwise the N context classes and the query class are i.i.d. from the Zipf law
      p(k) ∝ k^−α (α = ``zipf``).

    ``mode`` selects evaluation sequences: "train" as above; "iwl" (in-weights) —
    contexts drawn i.i.d. from the other classes, so the label must come from the
    weights; "icl" (in-context) — fresh class means not seen in training and labels
    re-assigned at random within the sequence (two classes, N/2 exemplars each), so the
    label can only be read off the context.
    """

    classes: int = 128
    dim: int = 63
    labels: int = 32
    n_pairs: int = 8
    burstiness: int = 4
    zipf: float = 0.0
    within_class_noise: float = 0.1
    p_bursty: float = 1.0
    class_seed: int = 0

    def __post_init__(self):
        for key in ("classes", "dim", "labels", "n_pairs", "burstiness"):
            check_positive_int(f"task.{key}", getattr(self, key))
        if self.n_pairs % self.burstiness:
            raise ConfigError("task.burstiness", self.burstiness,
                              f"a divisor of task.n_pairs = {self.n_pairs}")
        if self.n_pairs % 2:
            raise ConfigError("task.n_pairs", self.n_pairs, "an even integer (ICL evaluation "
                              "uses two classes with N/2 exemplars each)")
        if self.n_pairs // self.burstiness > self.classes:
            raise ConfigError("task.classes", self.classes, "at least n_pairs / burstiness")
        check_nonnegative("task.zipf", self.zipf)
        check_nonnegative("task.within_class_noise", self.within_class_noise)
        if not 0 <= self.p_bursty <= 1:
            raise ConfigError("task.p_bursty", self.p_bursty, "a number in [0, 1]")

    def class_table(self) -> tuple[Array, Array]:
        """The fixed class means (K, D) and class labels (K,)."""
        k_mu, k_lab = jax.random.split(jax.random.key(self.class_seed))
        means = jax.random.normal(k_mu, (self.classes, self.dim)) / math.sqrt(self.dim)
        return means, jax.random.randint(k_lab, (self.classes,), 0, self.labels)

    def zipf_probabilities(self) -> Array:
        p = jnp.arange(1, self.classes + 1, dtype=float) ** (-self.zipf)
        return p / p.sum()

    def _items(self, key, means):
        eps = self.within_class_noise
        noise = jax.random.normal(key, means.shape) / math.sqrt(self.dim)
        return (means + eps * noise) / math.sqrt(1 + eps * eps)

    def sample(self, key: PRNGKeyArray, mode: str = "train") -> BurstySequence:
        means, class_labels = self.class_table()
        k_mode, k_classes, k_query, k_noise, k_perm = jax.random.split(key, 5)
        n = self.n_pairs
        if mode == "icl":
            k_mu, k_lab = jax.random.split(k_classes)
            fresh = jax.random.normal(k_mu, (2, self.dim)) / math.sqrt(self.dim)
            fresh_labels = jax.random.choice(k_lab, self.labels, (2,), replace=False)
            context_classes = jnp.repeat(jnp.arange(2), n // 2)
            context_classes = jax.random.permutation(k_perm, context_classes)
            q = jax.random.randint(k_query, (), 0, 2)
            all_classes = jnp.concatenate([context_classes, q[None]])
            x = self._items(k_noise, fresh[all_classes])
            labels = fresh_labels[all_classes]
            return BurstySequence(x[:n], labels[:n], x[n], labels[n])
        probs = self.zipf_probabilities()
        q = jax.random.choice(k_query, self.classes, (), p=probs)
        if mode == "iwl":
            others = probs.at[q].set(0.0)
            context_classes = jax.random.choice(k_classes, self.classes, (n,),
                                                p=others / others.sum())
        else:
            k_bursty, k_rest, k_iid = jax.random.split(k_classes, 3)
            groups = n // self.burstiness
            rest = jax.random.choice(k_rest, self.classes, (groups - 1,), replace=False,
                                     p=probs.at[q].set(0.0) / (1 - probs[q]))
            bursty = jax.random.permutation(k_perm, jnp.repeat(
                jnp.concatenate([q[None], rest]), self.burstiness))
            iid = jax.random.choice(k_iid, self.classes, (n,), p=probs)
            use_bursty = jax.random.uniform(k_bursty) < self.p_bursty
            context_classes = jnp.where(use_bursty, bursty, iid)
        all_classes = jnp.concatenate([context_classes, q[None]])
        x = self._items(k_noise, means[all_classes])
        labels = class_labels[all_classes]
        return BurstySequence(x[:n], labels[:n], x[n], labels[n])

    def sample_batch(self, key: PRNGKeyArray, batch_size: int,
                     mode: str = "train") -> BurstySequence:
        if mode not in ("train", "iwl", "icl"):
            raise ConfigError("mode", mode, "one of train, iwl, icl")
        return jax.vmap(lambda k: self.sample(k, mode))(jax.random.split(key, batch_size))
