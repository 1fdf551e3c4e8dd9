"""Autoregressive in-context learners for sequences s_1..s_T (von Oswald et al. 2023).

At position t each learner sees the pairs (s_{t'}, s_{t'+1}) for t' < t and predicts
s_{t+1} from s_t. Each maps the inputs (T, n) to predictions (T, n), so it can be scored
exactly like a sequence model; the ones with parameters are Equinox modules that the
``Trainer`` can fit on fresh sequences (``dynamics_problem`` with tokens = identity).

With G_t = Σ_{t'<t} s_{t'+1} s_{t'}ᵀ and H_t = Σ_{t'<t} s_{t'} s_{t'}ᵀ:
- ridge (AR least squares):  ŝ_{t+1} = G_t (H_t + λ I)⁻¹ s_t
- one GD step (Proposition 1): ŝ_{t+1} = Φ₀ s_t + η (G_t − Φ₀ H_t) s_t, i.e. Φ₁ s_t with
  Φ₁ = Φ₀ − η ∇L_t(Φ₀), L_t(Φ) = ½ Σ_{t'<t} ‖s_{t'+1} − Φ s_{t'}‖²
- preconditioned GD (Proposition 2): K Richardson/Chebyshev steps towards
  x̃ ≈ c_t (H_t + λI)⁻¹ s_t, then ŝ_{t+1} = η G_t x̃ / c_t (c_t = ‖H_t + λI‖_F)
- softmax kernel regression (an induction head): ŝ_{t+1} = Σ_{t'<t} s_{t'+1}
  softmax_{t'}(β s_{t'}ᵀ s_t)
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float


def ar_statistics(states: Float[Array, "t n"]) -> tuple[Array, Array]:
    """G_t = Σ_{t'<t} s_{t'+1} s_{t'}ᵀ and H_t = Σ_{t'<t} s_{t'} s_{t'}ᵀ for t = 1..T, (T, n, n)."""
    x, y = states[:-1], states[1:]
    zero = jnp.zeros((1,) + (states.shape[1],) * 2, states.dtype)
    g = jnp.concatenate([zero, jnp.cumsum(jnp.einsum("ti,tj->tij", y, x), axis=0)])
    h = jnp.concatenate([zero, jnp.cumsum(jnp.einsum("ti,tj->tij", x, x), axis=0)])
    return g, h


def ar_ridge_predictions(states: Float[Array, "t n"], lam: float | Array) -> Float[Array, "t n"]:
    """ŝ_{t+1} = G_t (H_t + λ I)⁻¹ s_t: autoregressive ridge regression at every t
    (the mesa layer on constructed tokens with its λ_mesa = 1/λ)."""
    g, h = ar_statistics(states)
    eye = jnp.eye(states.shape[1], dtype=states.dtype)
    x = jax.vmap(lambda a, b: jnp.linalg.solve(a + lam * eye, b))(h, states)
    return jnp.einsum("tij,tj->ti", g, x)


def ar_gd_predictions(states: Float[Array, "t n"], phi0: Float[Array, "n n"],
                      eta: float | Array) -> Float[Array, "t n"]:
    """Proposition 1: ŝ_{t+1} = Φ₀ s_t + η (G_t − Φ₀ H_t) s_t, one gradient step on the
    in-context least-squares loss from Φ₀."""
    g, h = ar_statistics(states)
    return states @ phi0.T + eta * jnp.einsum("tij,tj->ti", g - phi0 @ h, states)


def pair_ridge_predictions(x: Float[Array, "p n"], y: Float[Array, "p m"], lam: float | Array
                           ) -> Float[Array, "p m"]:
    """ŷ_i = G_i (H_i + λ I)⁻¹ x_i with G_i = Σ_{j<i} y_j x_jᵀ, H_i = Σ_{j<i} x_j x_jᵀ: ridge
    on the clean pairs before i (the few-shot "LSQ" of von Oswald et al. 2023, Fig. 8;
    ŷ_1 = 0). AR ridge on the interleaved tokens [x_1, y_1, x_2, …], read at x_i, is
    instead ridge on D_mesa = {(x_j, y_j)} ∪ {(y_j, x_{j+1})}, the spurious pairs included."""
    zero = lambda a, b: jnp.zeros((1, a.shape[1], b.shape[1]), x.dtype)
    g = jnp.concatenate([zero(y, x), jnp.cumsum(jnp.einsum("pi,pj->pij", y, x), 0)[:-1]])
    h = jnp.concatenate([zero(x, x), jnp.cumsum(jnp.einsum("pi,pj->pij", x, x), 0)[:-1]])
    eye = jnp.eye(x.shape[1], dtype=x.dtype)
    return jnp.einsum("pij,pj->pi", g, jax.vmap(lambda a, b: jnp.linalg.solve(a + lam * eye, b))(
        h, x))


def fit_gd_step(inputs: Float[Array, "b t n"], iterations: int = 20
                ) -> tuple[Float[Array, "n n"], Float[Array, ""]]:
    """Proposition 1's (Φ₀, η) minimising Σ_{b,t} ‖s_{t+1} − Φ₀ s_t − η (G_t − Φ₀ H_t) s_t‖² on a
    batch of sequences, by exact alternating least squares from (0, η*(Φ₀ = 0)):

        given η:  ŝ = Φ₀ z_t + η G_t s_t with z_t = (I − η H_t) s_t, so
                  Φ₀ = (Σ (s_{t+1} − η G_t s_t) z_tᵀ)(Σ z_t z_tᵀ)⁻¹;
        given Φ₀: ŝ = Φ₀ s_t + η b_t with b_t = (G_t − Φ₀ H_t) s_t, so
                  η = Σ ⟨b_t, s_{t+1} − Φ₀ s_t⟩ / Σ ‖b_t‖².

    Each update is an exact minimisation, so the loss never increases.
    """
    x, y = inputs[:, :-1], inputs[:, 1:]  # predict s_{t+1} at t = 1..T−1
    g, h = jax.vmap(ar_statistics)(inputs)
    g, h = g[:, :-1], h[:, :-1]
    gs = jnp.einsum("btij,btj->bti", g, x)
    hs = jnp.einsum("btij,btj->bti", h, x)
    n = inputs.shape[-1]

    def eta_given(phi0):
        b = gs - jnp.einsum("ij,btj->bti", phi0, hs)
        return jnp.sum(b * (y - x @ phi0.T)) / jnp.sum(b * b)

    def phi0_given(eta):
        z = x - eta * hs
        r = y - eta * gs
        zz = jnp.einsum("bti,btj->ij", z, z)
        rz = jnp.einsum("bti,btj->ij", r, z)
        return jnp.linalg.solve(zz.T, rz.T).T

    phi0 = jnp.zeros((n, n), inputs.dtype)
    eta = eta_given(phi0)
    for _ in range(iterations):  # unrolled: no ``while`` loop around the solve
        phi0 = phi0_given(eta)
        eta = eta_given(phi0)
    return phi0, eta


def softmax_kernel_predictions(states: Float[Array, "t n"], beta: float | Array
                               ) -> Float[Array, "t n"]:
    """ŝ_{t+1} = Σ_{t'<t} s_{t'+1} softmax_{t'<t}(β s_{t'}ᵀ s_t); zero at t = 1."""
    t = states.shape[0]
    scores = beta * states @ states.T  # [t, t'] = β s_tᵀ s_{t'}
    past = jnp.tril(jnp.ones((t, t), bool), k=-1)
    weights = jax.nn.softmax(jnp.where(past, scores, -1e30), axis=-1)
    weights = jnp.where(past, weights, 0.0)  # row t = 1 has no past: predict zero
    nxt = jnp.concatenate([states[1:], jnp.zeros_like(states[:1])])  # s_{t'+1} at t'
    return weights @ nxt


PRECONDITIONER_NORMS = ("frobenius", "trace")


def preconditioned_gd_predictions(states: Float[Array, "t n"], alphas: Float[Array, " k"],
                                  betas: Float[Array, " k"], eta: float | Array,
                                  lam: float | Array, norm: str = "frobenius"
                                  ) -> Float[Array, "t n"]:
    """Proposition 2: K momentum-Richardson (Chebyshev-type) steps on H̃ x = s_t with
    H̃_t = (H_t + λ I)/c_t,

        x⁰ = x⁻¹ = 0,  x^{k+1} = x^k − α_k (H̃ x^k − s_t) − β_k (x^k − x^{k−1}),

    then one gradient step from zero with the preconditioned query:
    ŝ_{t+1} = η G_t x^K / c_t. As K → ∞ with convergent steps, x^K → c_t (H_t + λI)⁻¹ s_t
    and with η = 1 the prediction is AR ridge; with K = 1 it is one GD step with the
    time-varying step size η α_0 / c_t. On constructed tokens K steps take K linear
    attention layers: x¹ = α₀ s_t needs none, each further step one (for H̃ x) and the
    read-out G x one.

    The scale c_t is a safeguard: one set of (α_k, β_k) serves every t although H_t grows
    with t.
    - ``"frobenius"``: c_t = ‖H_t + λI‖_F, as the reference code's Chebyshev inverse
      (``invert_matrix_chebyshev``). H̃'s eigenvalues then lie in (0, 1] at every t
      whatever the spread of H_t's spectrum, so steps α_k ∈ (0, 2) cannot amplify an
      eigendirection however anisotropic the states are.
    - ``"trace"``: c_t = tr(H_t + λI)/n, mean eigenvalue 1; the largest can be up to n,
      so fitted steps diverge on sequences whose states span few directions.

    Args:
        states: s_1..s_T, (T, n).
        alphas: step sizes α_k, (K,).
        betas: momentum β_k, (K,) (β_0 multiplies x⁰ − x⁻¹ = 0).
        eta: the read-out's step size η.
        lam: ridge λ > 0.
        norm: the scale c_t, ``"frobenius"`` or ``"trace"``.

    Example:
        >>> import jax, jax.numpy as jnp
        >>> s = jax.random.normal(jax.random.key(0), (8, 3))
        >>> preconditioned_gd_predictions(s, jnp.full((4,), 1.0), jnp.zeros(4), 1.0, 0.5).shape
        (8, 3)

    References:
        von Oswald et al. (2023), *Uncovering mesa-optimization algorithms in
        Transformers*, arXiv 2309.05858, Proposition 2 and SI C.
    """
    if norm not in PRECONDITIONER_NORMS:
        raise ValueError(f"norm={norm!r}: allowed are {', '.join(PRECONDITIONER_NORMS)}")
    g, h = ar_statistics(states)
    n = states.shape[1]
    h = h + lam * jnp.eye(n, dtype=states.dtype)[None]
    if norm == "frobenius":
        c = jnp.sqrt(jnp.sum(h * h, axis=(1, 2)))
    else:
        c = jnp.trace(h, axis1=1, axis2=2) / n
    h_tilde = h / c[:, None, None]

    def step(carry, coeffs):
        x, x_prev = carry
        alpha, beta = coeffs
        residual = jnp.einsum("tij,tj->ti", h_tilde, x) - states
        x_next = x - alpha * residual - beta * (x - x_prev)
        return (x_next, x), None

    zero = jnp.zeros_like(states)
    (x, _), _ = jax.lax.scan(step, (zero, zero), (alphas, betas))
    return eta * jnp.einsum("tij,tj->ti", g, x) / c[:, None]


class ARRidge(eqx.Module):
    """AR ridge with a learnable regulariser λ = exp(log_lambda)."""

    log_lambda: Float[Array, ""]

    def __init__(self, lam: float = 1.0):
        self.log_lambda = jnp.log(jnp.asarray(lam, float))

    def __call__(self, states):
        return ar_ridge_predictions(states, jnp.exp(self.log_lambda))


class ARGradientStep(eqx.Module):
    """Proposition 1 with a learnable initial Φ₀ and step size η."""

    phi0: Float[Array, "n n"]
    eta: Float[Array, ""]

    def __init__(self, n: int, eta: float = 0.0, phi0: Array | None = None):
        self.phi0 = jnp.zeros((n, n)) if phi0 is None else jnp.asarray(phi0, float)
        self.eta = jnp.asarray(eta, float)

    def __call__(self, states):
        return ar_gd_predictions(states, self.phi0, self.eta)


class ARPreconditionedGD(eqx.Module):
    """Proposition 2 with learnable (α_k, β_k), η and λ = exp(log_lambda); ``norm`` is the
    scale c_t of ``preconditioned_gd_predictions``."""

    alphas: Float[Array, " k"]
    betas: Float[Array, " k"]
    eta: Float[Array, ""]
    log_lambda: Float[Array, ""]
    norm: str = eqx.field(static=True)

    def __init__(self, steps: int, alpha: float = 0.5, eta: float = 1.0, lam: float = 1.0,
                 norm: str = "frobenius"):
        if norm not in PRECONDITIONER_NORMS:
            raise ValueError(f"norm={norm!r}: allowed are {', '.join(PRECONDITIONER_NORMS)}")
        self.alphas = jnp.full((steps,), alpha)
        self.betas = jnp.zeros((steps,))
        self.eta = jnp.asarray(eta, float)
        self.log_lambda = jnp.log(jnp.asarray(lam, float))
        self.norm = norm

    def __call__(self, states):
        return preconditioned_gd_predictions(states, self.alphas, self.betas, self.eta,
                                             jnp.exp(self.log_lambda), self.norm)


class SoftmaxKernelRegression(eqx.Module):
    """Softmax kernel regression with a learnable inverse temperature β."""

    beta: Float[Array, ""]

    def __init__(self, beta: float = 1.0):
        self.beta = jnp.asarray(beta, float)

    def __call__(self, states):
        return softmax_kernel_predictions(states, self.beta)


# -- tuning the learners on a batch of sequences (inputs (B, T, n), targets (B, T, n)) ----
def ar_batch_loss(predict, inputs, targets) -> Array:
    """½ E‖ŝ_{t+1} − s_{t+1}‖², summed over state dimensions, averaged over sequences and t,
    of a learner ``predict: states (T, n) → predictions (T, n)``."""
    preds = jax.vmap(predict)(inputs)
    return 0.5 * jnp.sum((preds - targets) ** 2, -1).mean()


def ar_oracle_loss_per_step(w: Float[Array, "b n n"], inputs: Float[Array, "b t n"],
                            targets: Float[Array, "b t n"]) -> Float[Array, " t"]:
    """Per-t loss of ŝ_{t+1} = W* s_t (the true system): the noise floor."""
    preds = jnp.einsum("bij,btj->bti", w, inputs)
    return 0.5 * jnp.sum((preds - targets) ** 2, -1).mean(0)


def ar_gd_from_zero_lr(inputs: Float[Array, "b t n"], targets: Float[Array, "b t n"]) -> float:
    """Closed-form η* of one GD step from Φ₀ = 0: ŝ_{t+1} = η a_t with a_t = G_t s_t is
    linear in η, so η* = Σ⟨a_t, s_{t+1}⟩ / Σ‖a_t‖² over the batch and all t."""
    a = jax.vmap(lambda s: ar_gd_predictions(s, jnp.zeros((s.shape[1],) * 2), 1.0))(inputs)
    return float(jnp.sum(a * targets) / jnp.sum(a * a))


def tune_ar_ridge(inputs: Float[Array, "b t n"], targets: Float[Array, "b t n"]
                  ) -> tuple[float, float]:
    """(λ*, log10 λ*) of AR ridge minimising the mean loss over t: a grid over
    log10 λ ∈ [−5, 2] (step 0.25), then a grid of step 0.025 around the best point.

    Grids only, no golden-section ``while`` loop: on XLA:CPU a batched
    ``linalg.solve`` inside a ``while`` loop deadlocked (jax 0.10.2, 1024 sequences).
    """
    import numpy as np

    loss = lambda log_lam, x, y: ar_batch_loss(
        lambda s: ar_ridge_predictions(s, 10.0 ** log_lam), x, y)
    on_grid = jax.jit(jax.vmap(loss, in_axes=(0, None, None)))
    grid = np.linspace(-5.0, 2.0, 29)
    best = grid[int(np.nanargmin(np.asarray(on_grid(grid, inputs, targets))))]
    fine = np.linspace(best - 0.25, best + 0.25, 21)
    log_lam = float(fine[int(np.nanargmin(np.asarray(on_grid(fine, inputs, targets))))])
    return 10.0 ** log_lam, log_lam


def tune_softmax_kernel(inputs: Float[Array, "b t n"], targets: Float[Array, "b t n"],
                        lo: float = 0.0, hi: float = 20.0) -> float:
    """β* of softmax kernel regression on [lo, hi]: a 41-point grid, then golden section."""
    from iclab.solvers._line_search import grid_then_golden

    loss = lambda beta, x, y: ar_batch_loss(lambda s: softmax_kernel_predictions(s, beta), x, y)
    beta, _ = grid_then_golden(loss, lo, hi, inputs, targets, n_grid=41)
    return beta


def ar_preconditioned_inputs(states: Float[Array, "t n"], lam: float) -> Float[Array, "t n"]:
    """(S_{t−1} S_{t−1}ᵀ + I/λ)⁻¹ s_t at every t, with S_{t−1} = [s_1, ..., s_{t−1}]: the
    input that Proposition 2's preconditioning computes (a probe target)."""
    _, h = ar_statistics(states)
    eye = jnp.eye(states.shape[1], dtype=states.dtype)[None]
    return jnp.linalg.solve(h + eye / lam, states[..., None])[..., 0]
