"""GD++: gradient descent with an input preconditioning step (curvature correction).

Per layer t every token gets x_i ← (I + ω_xx,t Σ) x_i and y_i ← y_i + ω_yx,t αᵀx_i
(Σ = Σ_j x_j x_jᵀ, α = Σ_j y_j x_j over the context, both from the tokens before
the update), so later GD steps act on progressively whitened inputs
(von Oswald et al. 2023, §4 "GD++"; ``DiagonalLSA`` with ω_xy = ω_yy = 0).

Step sizes are tuned as in the reference code: a line search over η with the
preconditioning tied to it, γ = −ω_xx = η/N², then Adam on all (ω_xx, ω_yx)
pairs (one pair shared by all layers for a recurrent stack, one per layer
otherwise) on fresh tasks.

On noise-free data with x, w ~ N(0, I) GD++'s loss depends only on the eigenvalues of the
context Gram matrix (``gdpp_spectral_residual``), so its best per-layer coefficients can
be fitted in float64 without training (``fit_gdpp_population``): Table 1's σ_max = 0 column
of Vladymyrov et al. 2024.
"""

import jax
import jax.numpy as jnp
import numpy as np

from iclab.engine import OptimConfig, TrainConfig, Trainer, regression_loss, regression_problem
from iclab.models import DiagonalLSA
from iclab.solvers._line_search import grid_then_golden
from iclab.tasks import LinearRegressionTask, RegressionExample


def tune_gdpp_tied(batch: RegressionExample, steps: int) -> tuple[float, float, float]:
    """Line search over η for GD++ with γ = η/N² tied to it.

    Returns:
        (η, γ, loss on ``batch``).
    """
    n = batch.x.shape[1]
    loss = lambda lr, b: regression_loss(DiagonalLSA.gdpp(lr, lr / n**2, n, steps), b)
    cov = jnp.einsum("bnd,bne->bde", batch.x, batch.x) / n
    lam = float(jnp.mean(jnp.linalg.eigvalsh(cov)[:, -1]))
    lr, value = grid_then_golden(loss, 0.0, 4.0 / lam, batch)
    return lr, lr / n**2, value


def fit_gdpp(task: LinearRegressionTask, batch: RegressionExample, steps: int,
             recurrent: bool = True, adam_steps: int = 1000, batch_size: int = 2048,
             lr: float = 1e-3, seed: int = 0, tied: tuple | None = None) -> DiagonalLSA:
    """GD++ with tuned step sizes: ``tune_gdpp_tied`` on ``batch``, then ``adam_steps``
    of Adam(lr, b2 = 0.999) on fresh tasks of ``task`` (the reference's
    ``pre_train_gd_hps``). Returns the tuned model.

    ``tied``: the result of ``tune_gdpp_tied(batch, steps)`` when already computed (it
    does not depend on ``recurrent``, so a recurrent and a non-recurrent fit share it)."""
    eta, gamma, _ = tune_gdpp_tied(batch, steps) if tied is None else tied
    n = task.n_context
    pair = jnp.array([-gamma, 0.0, -eta / n, 0.0])
    omegas = jnp.tile(pair, (1 if recurrent else steps, 1))
    init = lambda key: DiagonalLSA(omegas, steps, parametrization="gdpp")
    if adam_steps == 0:
        return init(None)
    trainer = Trainer(regression_problem(task, init), OptimConfig(name="adam", lr=lr, b2=0.999),
                      TrainConfig(steps=adam_steps, batch_size=batch_size,
                                  eval_every=adam_steps, seeds=1, seed=seed))
    state = trainer.fit(batch)
    tuned = trainer.model(jax.tree.map(lambda a: a[0], state.params))
    # Keep Adam's refinement only if it helps on the tuning batch.
    if float(regression_loss(tuned, batch)) <= float(regression_loss(init(None), batch)):
        return tuned
    return init(None)


# --- GD++ on noise-free regression, reduced to the spectrum of the context Gram matrix ---

def gdpp_spectral_residual(omegas, eigenvalues):
    """r(λ) for GD++ layers (ω_xx,l, ω_yx,l) = ``omegas[l]``, at eigenvalues λ of Σ = XᵀX.

    Derivation (noise-free y_j = ⟨w, x_j⟩, keys and values from the context only): every
    token's input stays x_j^l = M_l x_j with M_l a polynomial in Σ, and every label
    y_j^l = ⟨v_l, x_j⟩ with v_0 = w, so that

        m_{l+1}(λ) = m_l(λ) (1 + ω_xx,l m_l(λ)² λ),   m_0 = 1,
        v_{l+1} = (I + ω_yx,l M_l² Σ) v_l,   r(λ) = Π_l (1 + ω_yx,l m_l(λ)² λ),

    and the prediction error at the query is ŷ − y_q = −⟨r(Σ) w, x_q⟩. With x_q, w ~ N(0, I)
    independent of the context, the loss is ½ E tr r(Σ)² = (D/2) E_λ r(λ)², λ drawn from
    the eigenvalues of Σ (``gdpp_population_loss``). GD (ω_xx = 0) gives r = Π(1 + ω_yx λ).
    """
    return _gram_terms(omegas, eigenvalues)[0]


def gdpp_population_loss(omegas, eigenvalues, d: int):
    """(D/2) · mean r(λ)² over ``eigenvalues`` (pooled eigenvalues of Σ = XᵀX of many
    contexts): GD++'s loss ½ E (ŷ − y_q)² on noise-free regression with x, w ~ N(0, I)
    (see ``gdpp_spectral_residual``). On the eigenvalues of one batch of contexts it is the
    ``DiagonalLSA`` GD++ model's expected loss over w and x_q given those contexts (the
    model's error on each sequence is exactly −⟨r(Σ) w, x_q⟩)."""
    return 0.5 * d * jnp.mean(gdpp_spectral_residual(omegas, eigenvalues) ** 2)


def wishart_eigenvalues(key, n: int, d: int, contexts: int):
    """The d eigenvalues of Σ = XᵀX for ``contexts`` draws of X ∈ R^{n×d} with N(0, 1)
    entries, pooled into one vector (float64 when x64 is enabled)."""
    x = jax.random.normal(key, (contexts, n, d), dtype=jnp.result_type(float))
    return jnp.linalg.eigvalsh(jnp.einsum("bnd,bne->bde", x, x)).reshape(-1)


def _gram_terms(omegas, eigenvalues):
    """(r, m) after the layers ``omegas``: the residual factor and the input map."""
    m = jnp.ones_like(eigenvalues)
    r = jnp.ones_like(eigenvalues)
    for layer in range(omegas.shape[0]):
        m2 = m * m
        r = r * (1.0 + omegas[layer, 1] * m2 * eigenvalues)
        m = m * (1.0 + omegas[layer, 0] * m2 * eigenvalues)
    return r, m


def _best_step(omegas, eigenvalues):
    """Exact best ω_yx of one more layer on top of ``omegas``:
    argmin_b E[r² (1 + b m² λ)²] = −E[r² m² λ] / E[r² m⁴ λ²]."""
    r, m = _gram_terms(omegas, eigenvalues)
    u = m * m * eigenvalues
    return -jnp.mean(r * r * u) / jnp.mean(r * r * u * u)


def _log_spread(a, lo, hi):
    """log(max/min) of g(s) = s(1 + a s)² over s ∈ [lo, hi] for −1/a > hi: g rises to
    −4/(27a) at s = −1/(3a), then falls, so its minimum is at an end."""
    ends = jnp.stack([lo * (1 + a * lo) ** 2, hi * (1 + a * hi) ** 2])
    peak = jnp.where(-1 / (3 * a) < hi, -4 / (27 * a), 0.0)
    return jnp.log(jnp.maximum(jnp.max(ends), peak) / jnp.min(ends))


def _whitening_start(depth: int, eigenvalues):
    """A start for depth L from the second-order construction: L − 1 layers that only
    precondition (ω_xx chosen by a grid to make the effective spectrum s = m²λ as narrow
    as possible, s ← s(1 + ω_xx s)², over its 0.1 %–99.9 % quantiles), then the best single
    GD step; GD++'s super-exponential rate comes from this whitening (Thm. 5.1)."""
    omegas = jnp.zeros((0, 2))
    for _ in range(depth - 1):
        _, m = _gram_terms(omegas, eigenvalues)
        s = m * m * eigenvalues
        lo, hi = jnp.quantile(s, 0.001), jnp.quantile(s, 0.999)
        grid = -jnp.linspace(0.0, 1.0, 2001)[1:] / hi  # keeps −1/ω_xx > hi
        a = grid[jnp.argmin(jax.vmap(_log_spread, (0, None, None))(grid, lo, hi))]
        omegas = jnp.concatenate([omegas, jnp.array([[a, 0.0]])])
    return jnp.concatenate([omegas, jnp.array([[0.0, _best_step(omegas, eigenvalues)]])])


def fit_gdpp_population(depth: int, eigenvalues, d: int, validation=None,
                        precondition: bool = True, iterations: int = 300, tol: float = 1e-12):
    """Per-layer GD++ coefficients minimising ``gdpp_population_loss`` for L = 1..``depth``.

    Each depth L is fitted from two starts — continuation (the depth-(L−1) optimum plus
    one layer with its exact best ω_yx) and ``_whitening_start`` — each refined by
    Levenberg–Marquardt on the residuals r(λ_i)/√M (least squares in 2L unknowns,
    Marquardt's diagonal scaling); the better one is kept. The loss landscape has several
    basins (at L = 2 the continuation start stops at a GD-first solution about 1.5× worse
    than the whitening-first one). Deep stacks have polynomials of degree ~3^L in λ that
    can fit one sample's largest eigenvalues and blow up on others: with ``validation``
    eigenvalues, each refinement keeps the iterate with the lowest validation loss (early
    stopping), and the reported loss is the validation loss. Run it under
    ``jax.enable_x64`` for the tiny losses of deep stacks (they fall super-exponentially:
    GD++ is a second-order method, Vladymyrov et al. 2024, Thm. 5.1).
    ``precondition=False`` fits plain GD with per-layer step sizes (ω_xx = 0), whose loss
    falls only geometrically.

    Returns:
        list over L = 1..depth of (omegas (L, 2) as numpy, loss on ``validation`` if
        given, else on ``eigenvalues``).
    """
    mask = jnp.array([[1.0 if precondition else 0.0, 1.0]])
    scale = 1.0 / jnp.sqrt(eigenvalues.shape[0])
    residuals = jax.jit(lambda w: gdpp_spectral_residual(w.reshape(-1, 2) * mask, eigenvalues)
                        * scale)
    jacobian = jax.jit(jax.jacfwd(residuals))
    loss = lambda w: 0.5 * d * float(jnp.sum(residuals(w) ** 2))
    held = eigenvalues if validation is None else validation
    held_loss = jax.jit(lambda w: gdpp_population_loss(w.reshape(-1, 2) * mask, held, d))

    def score(w):
        value = float(held_loss(w))
        return value if np.isfinite(value) else np.inf

    def refine(w):
        value, mu = loss(w), 1e-3
        best, best_score = w, score(w)
        for _ in range(iterations):
            res, jac = residuals(w), jacobian(w)
            grad, gram = jac.T @ res, jac.T @ jac
            diag = jnp.diag(jnp.maximum(jnp.diag(gram), 1e-12 * jnp.max(jnp.diag(gram))))
            improved = False
            while mu < 1e16:
                trial_w = w + jnp.linalg.solve(gram + mu * diag, -grad)
                trial = loss(trial_w)
                if np.isfinite(trial) and trial < value:
                    rel = (value - trial) / value
                    w, value, improved, mu = trial_w, trial, True, max(mu / 3.0, 1e-12)
                    break
                mu *= 4.0
            current = score(w)
            if current < best_score:
                best, best_score = w, current
            if not improved or rel < tol:
                break
        return best, best_score

    fits, previous = [], jnp.zeros((0, 2))
    for depth_l in range(1, depth + 1):
        starts = [jnp.concatenate([previous, jnp.array([[0.0, _best_step(previous,
                                                                          eigenvalues)]])])]
        if depth_l > 1 and precondition:
            starts.append(_whitening_start(depth_l, eigenvalues))
        best = min((refine(s.reshape(-1)) for s in starts), key=lambda t: t[1])
        previous = best[0].reshape(-1, 2) * mask
        fits.append((np.asarray(previous), best[1]))
    return fits


def noise_free_gdpp_column(n: int, d: int, depth: int, fit_contexts: int, eval_contexts: int,
                           seed: int) -> dict:
    """The best GD++ (and plain GD) stacks of depth 1..``depth`` on noise-free regression
    with x, w ~ N(0, I), in float64 and without training.

    The loss of any per-layer GD++ stack there is (D/2) E_λ r(λ)², a function of the
    eigenvalues λ of the context Gram matrix only (``gdpp_spectral_residual``), so the
    best coefficients of each depth are fitted by Levenberg–Marquardt on pooled eigenvalues
    of ``fit_contexts`` fresh contexts (``fit_gdpp_population``, early-stopped on as many
    again) and the loss is measured on ``eval_contexts`` further contexts. These are the
    best GD++ stacks, a lower bound for trained ones up to sampling; the oracle (OLS) loss
    is 0. Deep stacks are polynomials of degree ~3^L in λ, so their loss is set by the rare
    largest eigenvalues of the evaluation sample.

    Returns:
        ``{"layers": [1..depth], "gdpp": losses, "gd": losses, "gdpp_omegas": per-depth
        coefficients, "gd_omegas": ...}``.
    """
    with jax.enable_x64(True):
        k_fit, k_val, k_eval = jax.random.split(jax.random.key(seed), 3)
        fit_set = wishart_eigenvalues(k_fit, n, d, fit_contexts)
        val_set = wishart_eigenvalues(k_val, n, d, fit_contexts)
        eval_set = wishart_eigenvalues(k_eval, n, d, eval_contexts)
        out = {"layers": list(range(1, depth + 1))}
        for name, precondition in (("gdpp", True), ("gd", False)):
            fits = fit_gdpp_population(depth, fit_set, d, validation=val_set,
                                       precondition=precondition)
            out[name] = [float(gdpp_population_loss(jnp.asarray(w), eval_set, d))
                         for w, _ in fits]
            out[f"{name}_omegas"] = [np.asarray(w).tolist() for w, _ in fits]
    return out
