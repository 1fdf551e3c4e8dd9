"""shaped-transformer: the token correlation of shaped-attention networks at
initialisation against its infinite-depth-and-width SDE, at a fixed depth-to-width ratio
(Noci, Li, Li, He, Hofmann, Maddison, Roy 2023).

What is computed (no training): residual attention networks at initialisation,
X' = λX + γ A X W_V/√n with λ² + γ² = 1 and fresh Gaussian weights per block, at widths n
and depths d = T·n, with shaped attention A = I + softmax(QKᵀ/(τ₀√(n n_k))) − 11ᵀ/m
(queries and keys from the RMS-normalised tokens, one head with n_k = n) at several τ₀,
and with the standard softmax A = softmax(QKᵀ/√n_k) for contrast. The width-n network is
simulated in its exact law through its m × m covariance V = XXᵀ/n
(``iclab.solvers.network_covariances``; checked here against the network with its n × n
weights drawn). The SDE dV = b(V)dt + Σ(V)^(½)dB is integrated by Euler–Maruyama with the
drift and diffusion of our derivation (``iclab.solvers.sde_drift``, ``sde_diffusion``),
which are checked against one-layer Monte-Carlo moment matching.

What is measured: the correlation ρ = V₁₂/√(V₁₁V₂₂) of two tokens at time T (m tokens,
all at correlation ρ₀ at the start), over many networks per width and many SDE paths: its
distribution, the two-sample Kolmogorov–Smirnov distance between network and SDE per
width, and the quantiles of ρ against t = layer/n.
"""

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from iclab.config import ConfigError, check_positive, check_positive_int
from iclab.framework import Claim, Figure, Job, Recipe, Section
from iclab.recipes.analysis.shaped_transformer import plot_distributions, plot_ks, plot_quantiles
from iclab.solvers import (
    ShapedBlock,
    explicit_layer,
    moment_match,
    network_covariances,
    pair_correlation,
    sde_covariances,
    sde_diffusion,
    sde_drift,
)

PAPER = ("Noci, Li, Li, He, Hofmann, Maddison, Roy: The shaped transformer: attention "
         "models in the infinite depth-and-width limit (NeurIPS 2023).")
NOTE = ("the paper's finding as summarised in our notes (the SDE describes the finite "
        "networks; at a fixed depth-to-width ratio the correlation's distribution does not "
        "depend on the width; the standard softmax collapses, ρ = 1); the thresholds are "
        "ours")
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)


def _ks(r, tau0=None) -> pd.DataFrame:
    k = r["ks"]
    return k if tau0 is None else k[np.isclose(k.tau0, tau0)]


def _strongest(r) -> pd.DataFrame:
    return _ks(r, r["ks"].tau0.min())


# -- spec -------------------------------------------------------------------------------
CLAIMS = [
    Claim("ks_shrinks_with_width", "at a fixed depth-to-width ratio the network's "
          "distribution of ρ_T approaches the SDE's as the width grows: the KS distance at "
          "the largest width over that at the smallest (smallest τ₀, the strongest "
          "attention)", lambda r: float(_strongest(r).sort_values("width").ks.iloc[-1]
                                        / _strongest(r).sort_values("width").ks.iloc[0]),
          "<=", 0.5, note=NOTE),
    Claim("sde_describes_the_widest", "the SDE describes the widest network: the largest KS "
          "distance over τ₀ at the largest width",
          lambda r: float(r["ks"][r["ks"].width == r["ks"].width.max()].ks.max()), "<=",
          0.03, note=NOTE),
    Claim("softmax_collapses", "with the standard softmax and the same residual the tokens "
          "align: mean ρ_T at the largest width", lambda r: float(
              r["softmax"].rho.mean()), ">=", 0.95, note=NOTE),
]
CHECKS = [
    Claim("drift_matches_moments", "the derived drift b(V₀) against one-layer Monte Carlo "
          "at width 4096: the largest relative error ‖b̂ − b‖/‖b‖ over τ₀",
          lambda r: float(r["moments"].drift_error.max()), "<=", 0.05),
    Claim("diffusion_matches_moments", "the derived diffusion Σ(V₀) against one-layer "
          "Monte Carlo at width 4096: the largest relative error ‖Σ̂ − Σ‖/‖Σ‖ over τ₀",
          lambda r: float(r["moments"].diffusion_error.max()), "<=", 0.05),
    Claim("reduced_law_is_the_network", "the O(m³) sampler has the law of the network "
          "with its n × n weights drawn (smallest width, depth T·n, smallest τ₀): the "
          "two-sample KS p-value of ρ_T", lambda r: float(r["explicit"].p_value.iloc[0]),
          ">=", 0.01),
]
FIGURES = [
    Figure("distributions", "Empirical distribution functions of ρ_T: the networks at each "
           "width (colours, light to dark with the width) against the SDE (black, dashed), "
           "one panel per τ₀.", plot_distributions),
    Figure("ks", "Two-sample Kolmogorov–Smirnov distance between network and SDE against "
           "the width (log–log), per τ₀; grey: the 5 % critical value of the test for these "
           "sample sizes (the Monte-Carlo floor).", plot_ks),
    Figure("quantiles", "Quantiles (10, 25, 50, 75, 90 %) of ρ against t = layer/n: the "
           "widest network (solid) against the SDE (dashed), smallest τ₀; grey: the "
           "standard softmax at the same width.", plot_quantiles),
]
SECTIONS = [
    Section("KS distance between network and SDE, per τ₀ and width, with the quantiles of "
            "ρ_T", table="ks"),
    Section("Drift and diffusion: derived against one-layer moment matching",
            table="moments"),
]


# -- config -----------------------------------------------------------------------------
@dataclass(frozen=True)
class ShapedTransformerConfig:
    """Args:
        tokens: m, the tokens per sequence.
        rho0: the tokens' correlation at the start (V₀ = (1 − ρ₀)I + ρ₀11ᵀ).
        widths: the network widths n (each ≥ 2m); depth T·n.
        time: T, the depth-to-width ratio.
        tau0s: the shaped logits' temperatures τ₀.
        gamma: the branch coefficient γ (λ = √(1 − γ²)).
        networks: networks per width and τ₀.
        paths: SDE paths per τ₀.
        sde_steps: Euler–Maruyama steps per unit time (rounded to a multiple of
            snapshots / T).
        snapshots: points of t at which the quantiles are read (besides t = 0).
        moment_draws: one-layer draws of the moment-matching check.
        moment_width: the width of the moment-matching check.
        explicit_networks: networks of the check against the explicit-weight network.
    """

    tokens: int = 8
    rho0: float = 0.5
    widths: tuple[int, ...] = (16, 32, 64, 128, 256, 512)
    time: float = 1.0
    tau0s: tuple[float, ...] = (1.0, 0.5, 0.25)
    gamma: float = 1 / math.sqrt(2)
    networks: int = 16000
    paths: int = 16000
    sde_steps: int = 2048
    snapshots: int = 8
    moment_draws: int = 20000
    moment_width: int = 4096
    explicit_networks: int = 2000

    def __post_init__(self):
        for key in ("tokens", "networks", "paths", "sde_steps", "snapshots",
                    "moment_draws", "moment_width", "explicit_networks"):
            check_positive_int(key, getattr(self, key))
        check_positive("time", self.time)
        if self.tokens < 2:
            raise ConfigError("tokens", self.tokens, "at least 2")
        low = -1 / (self.tokens - 1)
        if not low < self.rho0 < 1:
            raise ConfigError("rho0", self.rho0, f"in (−1/(m−1), 1) = ({low:.3g}, 1), a "
                              "valid correlation of all pairs")
        if len(self.widths) < 2 or any(not isinstance(n, int) or n < 2 * self.tokens
                                       for n in self.widths):
            raise ConfigError("widths", self.widths, f"at least two integers ≥ 2·tokens "
                              f"({2 * self.tokens})")
        if not self.tau0s or any(not t > 0 for t in self.tau0s):
            raise ConfigError("tau0s", self.tau0s, "positive numbers")
        ShapedBlock(gamma=self.gamma)
        for n in self.widths:
            depth = self.time * n
            if abs(depth - round(depth)) > 1e-9 or round(depth) % self.snapshots:
                raise ConfigError("time", self.time, f"a T with T·n a multiple of snapshots "
                                  f"({self.snapshots}) for every width (n = {n} gives "
                                  f"{depth:g} blocks)")


def full_config() -> ShapedTransformerConfig:
    return ShapedTransformerConfig()


def quick_config() -> ShapedTransformerConfig:
    return ShapedTransformerConfig(widths=(16, 32, 64, 128, 256), tau0s=(1.0, 0.25),
                                   networks=8000, paths=8000, sde_steps=1024)


# -- experiment -------------------------------------------------------------------------
def experiment(config: ShapedTransformerConfig) -> list[Job]:
    return []  # nothing is trained: the measurement samples networks at initialisation


def _v0(config: ShapedTransformerConfig) -> jax.Array:
    m = config.tokens
    return (1 - config.rho0) * jnp.eye(m) + config.rho0 * jnp.ones((m, m))


def _network(config, block, n: int, count: int, seed: int) -> np.ndarray:
    """ρ at every snapshot: (count, snapshots + 1)."""
    depth = round(config.time * n)
    run = jax.jit(jax.vmap(lambda k: pair_correlation(network_covariances(
        _v0(config), k, n, depth, block, every=depth // config.snapshots))))
    return np.asarray(run(jax.random.split(jax.random.key(seed), count)))


def _sde(config, block, seed: int) -> np.ndarray:
    every = max(1, round(config.sde_steps * config.time / config.snapshots))
    run = jax.jit(jax.vmap(lambda k: pair_correlation(sde_covariances(
        _v0(config), k, config.time, every * config.snapshots, block, every=every))))
    return np.asarray(run(jax.random.split(jax.random.key(seed), config.paths)))


def _quantile_rows(kind, tau0, width, rho, config) -> list[dict]:
    times = np.linspace(0, config.time, rho.shape[1])
    q = np.nanquantile(rho, QUANTILES, axis=0)
    return [{"kind": kind, "tau0": tau0, "width": width, "t": float(t),
             **{f"q{int(100 * p)}": float(q[i, j]) for i, p in enumerate(QUANTILES)}}
            for j, t in enumerate(times)]


def measure(config: ShapedTransformerConfig, trained) -> dict[str, pd.DataFrame]:
    del trained
    ks_rows, curves, samples, moments = [], [], [], []
    v0 = _v0(config)
    for i, tau0 in enumerate(config.tau0s):
        block = ShapedBlock(gamma=config.gamma, tau0=tau0)
        sde = _sde(config, block, seed=1000 + i)
        curves += _quantile_rows("sde", tau0, 0, sde, config)
        samples.append(pd.DataFrame({"kind": "sde", "tau0": tau0, "width": 0,
                                     "rho": sde[:, -1]}))
        for n in config.widths:
            net = _network(config, block, n, config.networks, seed=n * 31 + i)
            # an Euler step can leave the positive-definite cone (ρ undefined): such paths
            # are counted, not compared
            test = ks_2samp(net[:, -1], sde[np.isfinite(sde[:, -1]), -1])
            ks_rows.append({"tau0": tau0, "width": n, "depth": round(config.time * n),
                            "ks": float(test.statistic), "p_value": float(test.pvalue),
                            "sde_undefined": float(np.mean(~np.isfinite(sde[:, -1]))),
                            "critical_5pct": 1.358 * math.sqrt(
                                (len(net) + len(sde)) / (len(net) * len(sde))),
                            **{f"q{int(100 * p)}": float(np.quantile(net[:, -1], p))
                               for p in QUANTILES}})
            samples.append(pd.DataFrame({"kind": "network", "tau0": tau0, "width": n,
                                         "rho": net[:, -1]}))
            if n == max(config.widths) and tau0 == min(config.tau0s):
                curves += _quantile_rows("network", tau0, n, net, config)
            if n == min(config.widths) and tau0 == min(config.tau0s):
                reference = net[:, -1]
        b_hat, s_hat = moment_match(v0, jax.random.key(77 + i), config.moment_width, block,
                                    config.moment_draws)
        b, s = sde_drift(v0, block), sde_diffusion(v0, block)
        moments.append({"tau0": tau0, "drift_norm": float(jnp.linalg.norm(b)),
                        "drift_error": float(jnp.linalg.norm(b_hat - b) / jnp.linalg.norm(b)),
                        "diffusion_norm": float(jnp.linalg.norm(s)),
                        "diffusion_error": float(jnp.linalg.norm(s_hat - s)
                                                 / jnp.linalg.norm(s))})
    widest, strongest = max(config.widths), min(config.tau0s)
    softmax = _network(config, ShapedBlock(gamma=config.gamma, attention="softmax"), widest,
                       min(config.networks, 2000), seed=5)
    curves += _quantile_rows("softmax", strongest, widest, softmax, config)
    explicit = _explicit_check(config, ShapedBlock(gamma=config.gamma, tau0=strongest),
                               reference)
    return {"ks": pd.DataFrame(ks_rows), "quantiles": pd.DataFrame(curves),
            "samples": pd.concat(samples, ignore_index=True),
            "moments": pd.DataFrame(moments),
            "softmax": pd.DataFrame({"rho": softmax[:, -1]}), "explicit": explicit}


def _explicit_check(config, block, reduced: np.ndarray) -> pd.DataFrame:
    """ρ_T of networks with their n × n weights drawn against the reduced sampler's
    (``reduced``, the same width, τ₀ and depth), at the smallest width."""
    n = min(config.widths)
    depth = round(config.time * n)
    v0 = _v0(config)
    x0 = jnp.concatenate([jnp.linalg.cholesky(v0) * math.sqrt(n),
                          jnp.zeros((config.tokens, n - config.tokens))], axis=1)

    def one(key):
        x = jax.lax.fori_loop(0, depth, lambda i, x: explicit_layer(
            x, jax.random.fold_in(key, i), block), x0)
        return pair_correlation(x @ x.T / n)

    count = config.explicit_networks
    explicit = np.asarray(jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(3), count)))
    test = ks_2samp(explicit, reduced)
    return pd.DataFrame([{"width": n, "depth": depth, "explicit_networks": count,
                          "reduced_networks": len(reduced), "ks": float(test.statistic),
                          "p_value": float(test.pvalue)}])


RECIPE = Recipe(
    name="shaped-transformer", title="The shaped transformer and its covariance SDE",
    description="Token correlation of shaped-attention networks at initialisation at a "
                "fixed depth-to-width ratio against the derived covariance SDE: the KS "
                "distance shrinks with width; the standard softmax collapses (Noci et al. "
                "2023)",
    paper=PAPER, config_type=ShapedTransformerConfig, full=full_config, quick=quick_config,
    experiment=experiment, measure=measure, claims=CLAIMS, checks=CHECKS, figures=FIGURES,
    sections=SECTIONS)
