"""Discrete-token tasks that need an induction head (Olsson et al. 2022; Musat et al. 2025;
Reddy 2024). Each is a pure sampler ``sample(key)`` of integer token sequences.

- ``RepeatedTokensTask``: [BOS, r_1..r_L, r_1..r_L, ...] with r_i uniform over the
  vocabulary; after the first copy every next token is predictable by copying (the
  standard probe for induction heads and prefix-matching scores); with a block length
  that varies per sequence, a corpus on which next-token training needs one.
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
from iclab.tasks._orthogonal import haar_orthogonal
from iclab.tasks._protocol import VmappedTask


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
class RepeatedTokensTask(VmappedTask):
    """A random block of tokens repeated after a BOS token.

    With ``min_length`` unset the block has ``length`` tokens and is repeated ``repeats``
    times: [BOS, r_1 … r_L, r_1 … r_L, …], Olsson et al.'s repeated random tokens. With
    ``min_length`` < ``length`` the block's length P is uniform on {min_length … length}
    per sequence and the block is tiled to fill the same length × repeats tokens, so
    x_{t+P} = x_t with a period that varies: no fixed positional offset predicts the
    repeat, and only a circuit that finds the previous occurrence of the current token and
    copies what followed (an induction head) does — a corpus for next-token training.

    Token ids 0..vocab−1 are ordinary tokens; id ``vocab`` is BOS. ``target`` is the
    last token (for a next-token loss use ``tokens[1:]`` as targets of ``tokens[:-1]``).

    Args:
        vocab: ordinary tokens (BOS is one more).
        length: the block's length (its largest with ``min_length``).
        repeats: copies of the block (the tokens after BOS: length × repeats).
        min_length: the block's shortest length if it varies (None: always ``length``).

    Examples:
        >>> import jax
        >>> task = RepeatedTokensTask(vocab=16, length=6, repeats=2, min_length=3)
        >>> task.sample(jax.random.key(0)).tokens.shape
        (13,)
    """

    vocab: int = 64
    length: int = 25
    repeats: int = 2
    min_length: int | None = None

    def __post_init__(self):
        for key in ("vocab", "length", "repeats"):
            check_positive_int(f"task.{key}", getattr(self, key))
        if self.min_length is not None:
            check_positive_int("task.min_length", self.min_length)
            if self.min_length > self.length:
                raise ConfigError("task.min_length", self.min_length,
                                  f"an integer in [1, task.length = {self.length}]")

    @property
    def vocab_size(self) -> int:
        return self.vocab + 1

    def period(self, key: PRNGKeyArray) -> Array:
        """The block length P of the sample drawn from ``key``."""
        if self.min_length is None:
            return jnp.asarray(self.length)
        return jax.random.randint(jax.random.fold_in(key, 1), (), self.min_length,
                                  self.length + 1)

    def sample(self, key: PRNGKeyArray) -> TokenSequence:
        block = jax.random.randint(key, (self.length,), 0, self.vocab)
        if self.min_length is None:
            body = jnp.tile(block, self.repeats)
        else:
            body = block[jnp.arange(self.length * self.repeats) % self.period(key)]
        tokens = jnp.concatenate([jnp.array([self.vocab]), body])
        return TokenSequence(tokens, tokens[-1])


@dataclass(frozen=True)
class ItemLabelTask(VmappedTask):
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


class BurstySequence(eqx.Module):
    """Items (2N+1 rows: N item–label pairs as items and one-hot labels, then the query)."""

    items: Float[Array, "n d"]
    labels: Int[Array, " n"]
    query: Float[Array, " d"]
    target: Int[Array, ""]


@dataclass(frozen=True)
class BurstyClassificationTask(VmappedTask):
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

    Args:
        classes: K, the number of classes.
        dim: D, the item dimension.
        labels: L, the number of labels (classes share labels when K > L).
        n_pairs: N, item–label pairs in the context.
        burstiness: B, copies of each class in a bursty context.
        zipf: α of the Zipf law over classes (0 = uniform).
        within_class_noise: ε, the spread of items around their class mean.
        p_bursty: probability that a training sequence is bursty.
        class_seed: key of the class means and labels (fixed for a run).

    ``zipf`` and ``within_class_noise`` are array fields: tasks that differ only in them
    can train as one packed program.
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

    ARRAY_FIELDS = ("zipf", "within_class_noise")

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
        norm = (math.sqrt if isinstance(eps, int | float) else jnp.sqrt)(1 + eps * eps)
        return (means + eps * noise) / norm

    OPTIONS = {"mode": ("train", "iwl", "icl")}

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


def complex_structure(dim: int) -> Float[Array, "d d"]:
    """J on R^dim (dim even): J e_{2i} = e_{2i+1}, J e_{2i+1} = −e_{2i}, the rotation by π/2
    in every coordinate plane; Jᵀ = −J, J² = −I. It pairs an item's position a with its
    label's position J a."""
    block = jnp.array([[0.0, -1.0], [1.0, 0.0]])
    return jnp.kron(jnp.eye(dim // 2), block)


class PairsSequence(eqx.Module):
    """Real-valued tokens [c_t; p_t] (T, 2D) of the orthonormal item–label task and the
    target label's content vector (D,)."""

    tokens: Float[Array, "t c"]
    target: Float[Array, " d"]


def haar_unitary_real(key: PRNGKeyArray, dim: int) -> Float[Array, "d d"]:
    """A Haar-random U ∈ U(dim/2) as a real (dim, dim) matrix acting on coordinate pairs
    (2i, 2i+1) = (Re z_i, Im z_i); it is orthogonal and commutes with ``complex_structure``."""
    k_re, k_im = jax.random.split(key)
    n = dim // 2
    z = (jax.random.normal(k_re, (n, n)) + 1j * jax.random.normal(k_im, (n, n))) / jnp.sqrt(2)
    q, r = jnp.linalg.qr(z)
    d = jnp.diag(r)
    u = q * (d / jnp.abs(d))[None, :]
    real = jnp.stack([jnp.stack([u.real, -u.imag], -1), jnp.stack([u.imag, u.real], -1)], -2)
    return real.transpose(0, 2, 1, 3).reshape(dim, dim)


@dataclass(frozen=True)
class OrthonormalPairsTask(VmappedTask):
    """The minimal item–label task with orthonormal embeddings (Musat et al. 2025).

    [x_1, y_1, ..., x_N, y_N, x_q]: N items and N labels are 2N orthonormal content
    vectors c ∈ R^D; the query repeats item k* (uniform) and the target is label k*'s
    content. Positions are orthonormal too, and the rotation J (``complex_structure``)
    pairs each item with its label: item k sits at a_k, its label at J a_k, the query at
    a_N, with {a_k, J a_k} orthonormal. A sample is the canonical sequence (one-hot
    contents, a_k = e_{2k}) rotated by a Haar-random O ∈ O(D) on contents and target and a
    Haar-random S ∈ U(D/2) on positions, so the task is invariant under both groups —
    the symmetry behind the 19-dimensional subspace of ``DisentangledTransformer``. On
    that subspace every sample has the same loss as the canonical sequence with the same
    k*, so the population loss is the mean over k* of the canonical losses
    (``canonical_batch``).

    Args:
        n_pairs: N.
        dim: content and position width D; 0 = the smallest valid, 2N + 2 (even, ≥ 2N + 1).
    """

    n_pairs: int = 4
    dim: int = 0

    def __post_init__(self):
        check_positive_int("task.n_pairs", self.n_pairs)
        check_nonnegative("task.dim", self.dim)
        if self.dim and (self.dim % 2 or self.dim < 2 * self.n_pairs + 2):
            raise ConfigError("task.dim", self.dim, f"0 or an even integer >= 2 N + 2 = "
                              f"{2 * self.n_pairs + 2}")

    @property
    def width(self) -> int:
        return self.dim or 2 * self.n_pairs + 2

    @property
    def length(self) -> int:
        return 2 * self.n_pairs + 1

    def canonical_batch(self) -> tuple[Array, Array, Array]:
        """The shared context (2N, 2D), the N queries (N, 2D) — query k* repeats item k* —
        and their targets (N, D), with one-hot contents and positions."""
        n, d = self.n_pairs, self.width
        eye = jnp.eye(d)
        items, labels = eye[:n], eye[n:2 * n]
        pos_items, pos_labels = eye[0:2 * n:2], eye[1:2 * n:2]  # a_k = e_2k, J a_k = e_2k+1
        context = jnp.stack([jnp.concatenate([items, pos_items], -1),
                             jnp.concatenate([labels, pos_labels], -1)], 1).reshape(2 * n, 2 * d)
        queries = jnp.concatenate([items, jnp.broadcast_to(eye[2 * n], (n, d))], -1)
        return context, queries, labels

    def canonical(self, query_pair) -> PairsSequence:
        """The canonical sequence whose query repeats item ``query_pair``."""
        context, queries, targets = self.canonical_batch()
        return PairsSequence(jnp.concatenate([context, queries[query_pair][None]]),
                             targets[query_pair])

    @staticmethod
    def rotate(seq: PairsSequence, content: Array, positions: Array) -> PairsSequence:
        """Apply O to contents and the target and S to positions."""
        d = content.shape[0]
        tokens = jnp.concatenate([seq.tokens[:, :d] @ content.T, seq.tokens[:, d:] @ positions.T],
                                 -1)
        return PairsSequence(tokens, content @ seq.target)

    def sample(self, key: PRNGKeyArray) -> PairsSequence:
        k_q, k_o, k_s = jax.random.split(key, 3)
        k_star = jax.random.randint(k_q, (), 0, self.n_pairs)
        return self.rotate(self.canonical(k_star), haar_orthogonal(k_o, self.width),
                           haar_unitary_real(k_s, self.width))


def _walsh_signs(n: int) -> Array:
    """(n, n) signs (−1)^{popcount(i AND b)}: row b is the diagonal of Z^b."""
    i = jnp.arange(n)
    bits = jnp.bitwise_and(i[:, None], i[None, :])
    parity = sum((bits >> s) & 1 for s in range(max(n.bit_length(), 1)))
    return jnp.where(parity % 2 == 0, 1.0, -1.0)


def pauli_group(n: int) -> Float[Array, "g n n"]:
    """The n² matrices X^a Z^b on R^n (n a power of 2): X^a permutes i ↦ i XOR a, Z^b
    multiplies coordinate i by (−1)^{popcount(i AND b)}. Up to sign they form a group
    (the real Pauli group) whose commutant is R·I."""
    if n & (n - 1):
        raise ConfigError("n", n, "a power of 2")
    i = jnp.arange(n)
    x = jnp.eye(n)[jnp.bitwise_xor(i[None, :], i[:, None])]  # x[a] = X^a
    z = jax.vmap(jnp.diag)(_walsh_signs(n))
    return jnp.einsum("aij,bjk->abik", x, z).reshape(n * n, n, n)


def finite_symmetry_groups(width: int) -> tuple[Array, Array]:
    """Finite subgroups with the same commutants as O(D) on contents and U(D/2) on
    positions (D = ``width``, a power of 2): the real Pauli group on R^D (commutant R·I),
    and J^c · (the Pauli group on C^{D/2}, acting on coordinate pairs), c = 0..3 (commutant
    span{I, J}). Returns (D², D, D) and (4 (D/2)², D, D) matrices (the content group is
    listed up to sign: −I on contents equals −I on positions up to the global −I, which
    leaves every weight matrix fixed)."""
    content = pauli_group(width)
    complex_pauli = jnp.einsum("gij,ab->giajb", pauli_group(width // 2), jnp.eye(2)).reshape(
        -1, width, width)
    j_powers = jnp.stack([jnp.linalg.matrix_power(complex_structure(width), c) for c in range(4)])
    positions = jnp.einsum("cij,gjk->cgik", j_powers, complex_pauli).reshape(-1, width, width)
    return content, positions


def finite_symmetry_orbit(task: OrthonormalPairsTask, seq: PairsSequence) -> PairsSequence:
    """``seq`` under every (O, S) of ``finite_symmetry_groups`` — D² · 4 (D/2)² copies. A
    batch closed under these maps has an exactly invariant loss, so gradient descent from
    zero on it stays in the 19-dimensional subspace up to rounding."""
    content, positions = finite_symmetry_groups(task.width)
    rotate = lambda o, s: OrthonormalPairsTask.rotate(seq, o, s)
    out = jax.vmap(lambda o: jax.vmap(lambda s: rotate(o, s))(positions))(content)
    return jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), out)


def bursty_tokens(items, labels, query, n_labels: int):
    """The tokens of a bursty classification sequence (Reddy 2024):
    [x_1; 0], [0; e_{y_1}], ..., [x_N; 0], [0; e_{y_N}], [x_q; 0]: (2N + 1, D + L)."""
    n, d = items.shape
    item_tokens = jnp.concatenate([items, jnp.zeros((n, n_labels))], axis=1)
    label_tokens = jnp.concatenate([jnp.zeros((n, d)), jax.nn.one_hot(labels, n_labels)], 1)
    pairs = jnp.stack([item_tokens, label_tokens], axis=1).reshape(2 * n, d + n_labels)
    query_token = jnp.concatenate([query, jnp.zeros(n_labels)])[None]
    return jnp.concatenate([pairs, query_token])
