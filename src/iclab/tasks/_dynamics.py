"""Sequence prediction of random dynamical systems (von Oswald et al. 2023, "Uncovering
mesa-optimization algorithms in Transformers", arXiv 2309.05858).

Each sequence draws its own system and rolls it out for T + 1 steps; a model sees
s_1..s_T and predicts s_{t+1} at every t (targets are the inputs shifted by one):

- ``"linear"`` (fully observed, the main task): s_{t+1} = W* s_t + ε_t with W* a random
  orthogonal n_s × n_s matrix and ε_t ~ N(0, σ² I).
- partially observed (``hidden_dim > 0``): h_{t+1} = W* h_t + ε_t, s_t = C* h_t + ε'_t,
  C*_ij ~ N(0, 0.5²), W* orthogonal of size ``hidden_dim``.
- ``"contracting"``: W* = U diag(σ_i) Vᵀ with random orthogonal U, V and singular values
  σ_i ~ U(0.3, 0.9), so every eigenvalue satisfies 0.3 ≤ |λ| ≤ 0.9. (The paper rescales
  the eigenvalues of a Gaussian matrix into [0.3, 0.9]; the non-normal part of that
  matrix makes ~2 % of sequences blow up, which this version cannot.)
- ``"nonlinear"``: h_{t+1} = W* m(h_t)/‖m(h_t)‖ + ε_t with m(h) = B·GELU(A h), where A and
  B are fixed across sequences (drawn once from ``mlp_seed``, entries N(0, 1.1/n)); the
  division by the norm follows the reference code (the paper omits it).
- ``fixed_teacher=True``: one W* (from ``teacher_seed``) shared by every sequence, the
  negative control of the paper's SI E.2 — nothing is left to learn in context.

States are clipped to [−clip, clip] after each step.

Choices where the paper and its reference code disagree (documented, switchable):
the initial state is s_1 ~ U(−1, 1)^{n_s} (``init_dist="uniform"``, the code, which the
released results match: the t = 1 loss is ½·n_s/3 ≈ 1.667) rather than N(0, I) (the
paper, ``"gaussian"``); the clip is 10 (the code's ``data_clip``).
"""

import math
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from iclab._errors import check_choice, check_nonnegative, check_positive, check_positive_int
from iclab.tasks._orthogonal import haar_orthogonal
from iclab.tasks._protocol import VmappedTask

DYNAMICS = ("linear", "contracting", "nonlinear")
INIT_DISTRIBUTIONS = ("uniform", "gaussian")


class Trajectory(eqx.Module):
    """One rolled-out sequence: observed states s_1..s_{T+1} and the system's matrix W*."""

    states: Float[Array, "t1 n"]
    w: Float[Array, "h h"]

    @property
    def inputs(self) -> Float[Array, "t n"]:
        """s_1..s_T, what the model reads."""
        return self.states[..., :-1, :]

    @property
    def targets(self) -> Float[Array, "t n"]:
        """s_2..s_{T+1}: the target at position t is the next state."""
        return self.states[..., 1:, :]


@dataclass(frozen=True)
class DynamicsTask(VmappedTask):
    """Random dynamical systems observed for T steps.

    Args:
        state_dim: observed dimension n_s (10 fully observed; 5 in the paper's partially
            observed setting).
        length: T, the number of input positions.
        dynamics: "linear", "contracting" or "nonlinear".
        hidden_dim: 0 for a fully observed system, else the hidden dimension n_h (15 in
            the paper) observed through a random C* (n_s × n_h).
        noise_std: σ of the transition noise (and of the observation noise).
        init_dist: "uniform" (s_1 ~ U(−init_range, init_range), the code) or "gaussian"
            (N(0, init_range²), the paper with init_range = 1).
        init_range: scale of the initial state.
        clip: states are clipped to [−clip, clip] (code: 10; paper's contracting task: 2).
        fixed_teacher: share one W* (and C*) across all sequences.
        teacher_seed: seed of the shared system when ``fixed_teacher``.
        mlp_seed: seed of the fixed MLP of the nonlinear system.
    """

    state_dim: int = 10
    length: int = 50
    dynamics: str = "linear"
    hidden_dim: int = 0
    noise_std: float = 0.01
    init_dist: str = "uniform"
    init_range: float = 1.0
    clip: float = 10.0
    fixed_teacher: bool = False
    teacher_seed: int = 0
    mlp_seed: int = 1

    def __post_init__(self):
        check_positive_int("task.state_dim", self.state_dim)
        check_positive_int("task.length", self.length)
        check_choice("task.dynamics", self.dynamics, DYNAMICS)
        check_nonnegative("task.hidden_dim", self.hidden_dim)
        check_nonnegative("task.noise_std", self.noise_std)
        check_choice("task.init_dist", self.init_dist, INIT_DISTRIBUTIONS)
        check_positive("task.init_range", self.init_range)
        check_positive("task.clip", self.clip)

    @property
    def system_dim(self) -> int:
        """Dimension of the state that W* acts on (n_h if partially observed, else n_s)."""
        return self.hidden_dim or self.state_dim

    @property
    def init_variance(self) -> float:
        """Per-coordinate variance of s_1 (fully observed): r²/3 (uniform) or r² (Gaussian)."""
        r = self.init_range
        return r * r / 3 if self.init_dist == "uniform" else r * r

    def first_step_loss(self) -> float:
        """½ E‖s_2‖² for a fully observed linear system: the loss of the best prediction
        at t = 1 (zero, since E[W*] = 0), ½ n_s (Var s_1 + σ²) — clipping ignored."""
        return 0.5 * self.state_dim * (self.init_variance + self.noise_std ** 2)

    def noise_floor(self) -> float:
        """½ n_s σ²: the loss of the oracle that knows W* (fully observed)."""
        return 0.5 * self.state_dim * self.noise_std ** 2

    # -- sampling --------------------------------------------------------------------
    def _system(self, key: PRNGKeyArray) -> Float[Array, "h h"]:
        n = self.system_dim
        if self.dynamics == "contracting":
            k_u, k_v, k_s = jax.random.split(key, 3)
            singular = jax.random.uniform(k_s, (n,), minval=0.3, maxval=0.9)
            u, v = haar_orthogonal(k_u, n), haar_orthogonal(k_v, n)
            return (u * singular[None, :]) @ v.T
        return haar_orthogonal(key, n)

    def _mlp(self) -> tuple[Array, Array]:
        n = self.system_dim
        k_a, k_b = jax.random.split(jax.random.key(self.mlp_seed))
        scale = math.sqrt(1.1 / n)
        return (scale * jax.random.normal(k_a, (4 * n, n)),
                math.sqrt(1.1 / (4 * n)) * jax.random.normal(k_b, (n, 4 * n)))

    def sample(self, key: PRNGKeyArray) -> Trajectory:
        """One sequence: T + 1 observed states and its W*."""
        k_sys, k_obs, k_init, k_noise, k_obs_noise = jax.random.split(key, 5)
        if self.fixed_teacher:
            k_sys, k_obs = jax.random.split(jax.random.key(self.teacher_seed))
        w = self._system(k_sys)
        n = self.system_dim
        if self.init_dist == "uniform":
            h1 = jax.random.uniform(k_init, (n,), minval=-self.init_range,
                                    maxval=self.init_range)
        else:
            h1 = self.init_range * jax.random.normal(k_init, (n,))
        noise = self.noise_std * jax.random.normal(k_noise, (self.length, n))
        if self.dynamics == "nonlinear":
            a, b = self._mlp()

            def transition(h):
                m = b @ jax.nn.gelu(a @ h)
                return w @ (m / jnp.maximum(jnp.linalg.norm(m), 1e-12))
        else:
            transition = lambda h: w @ h

        def step(h, eps):
            h_next = jnp.clip(transition(h) + eps, -self.clip, self.clip)
            return h_next, h_next

        _, rest = jax.lax.scan(step, h1, noise)
        hidden = jnp.concatenate([h1[None], rest])
        if not self.hidden_dim:
            return Trajectory(hidden, w)
        c = 0.5 * jax.random.normal(k_obs, (self.state_dim, self.hidden_dim))
        obs_noise = self.noise_std * jax.random.normal(k_obs_noise, (self.length + 1,
                                                                    self.state_dim))
        states = jnp.clip(hidden @ c.T + obs_noise, -self.clip, self.clip)
        return Trajectory(states, w)


def constructed_tokens(states: Float[Array, "t n"], copies: int = 2,
                       mask_query: bool = False) -> Float[Array, "t m"]:
    """The paper's constructed tokens e_t = [0, s_t, s_t, s_{t−1}, ..., s_{t−copies+1}].

    The first n_s slot starts at zero and is where the prediction of s_{t+1} is read;
    the second holds the query s_t (zeroed when ``mask_query``, the reference's
    ``mask_inputs`` for 1-layer models, giving [0, 0, s_t, s_{t−1}]); then ``copies``
    shifted copies (s_0 = 0, ...). ``copies = 2`` gives 4·n_s dimensions; the partially
    observed setting uses more shifted copies.
    """
    t, n = states.shape
    padded = jnp.concatenate([jnp.zeros((copies - 1, n), states.dtype), states])
    lags = [padded[copies - 1 - k: copies - 1 - k + t] for k in range(copies)]
    query = jnp.zeros_like(states) if mask_query else states
    return jnp.concatenate([jnp.zeros_like(states), query, *lags], axis=-1)


def past_states(states: Float[Array, "t n"], lag: int) -> Float[Array, "t n"]:
    """s_{t−lag} at every position t (zeros before the start): a token-binding target."""
    t, n = states.shape
    return jnp.concatenate([jnp.zeros((lag, n), states.dtype), states[: t - lag]])[:t]


class FewShotPairs(eqx.Module):
    """One few-shot regression problem: pairs (x_i, y_i = W* x_i + ε_i), i = 1..N."""

    x: Float[Array, "p n"]
    y: Float[Array, "p n"]
    w: Float[Array, "n n"]


@dataclass(frozen=True)
class FewShotRegressionTask(VmappedTask):
    """Few-shot linear regression read by a model trained on sequences (von Oswald et al.
    2023, Fig. 8 and SI F.1.4): W* random orthogonal, x_i ~ N(0, I), y_i = W* x_i + ε_i,
    shown as the token sequence [x_1, y_1, x_2, y_2, …] (``few_shot_tokens``).

    Args:
        state_dim: n, the width of x and y (the sequence model's token width).
        pairs: N.
        noise_std: σ of ε (paper: 0).
    """

    state_dim: int = 10
    pairs: int = 10
    noise_std: float = 0.0

    def __post_init__(self):
        check_positive_int("few_shot.state_dim", self.state_dim)
        check_positive_int("few_shot.pairs", self.pairs)
        check_nonnegative("few_shot.noise_std", self.noise_std)

    def sample(self, key: PRNGKeyArray) -> FewShotPairs:
        k_w, k_x, k_e = jax.random.split(key, 3)
        n = self.state_dim
        w = haar_orthogonal(k_w, n)
        x = jax.random.normal(k_x, (self.pairs, n))
        y = x @ w.T + self.noise_std * jax.random.normal(k_e, (self.pairs, n))
        return FewShotPairs(x, y, w)


def few_shot_tokens(x: Float[Array, "p n"], y: Float[Array, "p n"],
                    eos: Float[Array, " n"] | None = None,
                    prefix: Float[Array, "q n"] | None = None) -> tuple[Array, Array]:
    """The sequence [prefix…, x_1, y_1, (EOS), x_2, y_2, (EOS), …] and the positions of the
    x_i tokens, where a next-token model's output predicts y_i from the pairs before."""
    parts = [x, y] if eos is None else [x, y, jnp.broadcast_to(eos, x.shape)]
    tokens = jnp.stack(parts, axis=1).reshape(-1, x.shape[1])
    start = 0 if prefix is None else prefix.shape[0]
    if prefix is not None:
        tokens = jnp.concatenate([prefix, tokens])
    return tokens, start + len(parts) * jnp.arange(x.shape[0])
