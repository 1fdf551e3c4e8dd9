"""Learned features in front of in-context learners (von Oswald et al. 2023, §5).

``FeatureLSA``: each input x is embedded as φ(x) = E x + MLP(E x) (a residual GELU
MLP, as the reference's ``input_mlp``), tokens become (φ(x_j), y_j) and (φ(x_q), 0),
and an ``LSATransformer`` reads them. The label stays in its own coordinate, so
the GD construction applies to the learned features unchanged.

``FeatureGD``: the same embedding followed by one gradient-descent step on the
learned features, ŷ = (η/N) Σ_j y_j φ(x_j)ᵀφ(x_q) — the reference's "MLP + GD"
baseline (attention frozen at the construction; embedding and η trained).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from iclab.models._lsa import LSATransformer, LSATransformerConfig
from iclab.models._rows import on_rows


class Embedding(eqx.Module):
    """φ(x) = E x + MLP(E x) with a GELU MLP of width ``4 m`` (m = ``features``)."""

    proj: Float[Array, "d m"]
    mlp: eqx.nn.MLP

    def __init__(self, d: int, features: int, *, key: PRNGKeyArray):
        kp, km = jax.random.split(key)
        self.proj = jax.random.normal(kp, (d, features)) / jnp.sqrt(d)
        self.mlp = eqx.nn.MLP(features, features, 4 * features, depth=1,
                              activation=jax.nn.gelu, key=km)

    def __call__(self, x: Float[Array, "t d"]) -> Float[Array, "t m"]:
        h = x @ self.proj
        return h + on_rows(self.mlp, h)


def _feature_tokens(embed: Embedding, tokens: Float[Array, "t dim"]) -> Float[Array, "t m+1"]:
    return jnp.concatenate([embed(tokens[:, :-1]), tokens[:, -1:]], axis=1)


class FeatureLSA(eqx.Module):
    embed: Embedding
    lsa: LSATransformer

    def __init__(self, d: int, features: int, lsa: LSATransformerConfig, *, key: PRNGKeyArray):
        ke, kl = jax.random.split(key)
        self.embed = Embedding(d, features, key=ke)
        self.lsa = LSATransformer(lsa.resolve(features + 1), key=kl)

    def feature_tokens(self, tokens: Float[Array, "t dim"]) -> Float[Array, "t m+1"]:
        return _feature_tokens(self.embed, tokens)

    def __call__(self, tokens: Float[Array, "t dim"]) -> Float[Array, ""]:
        return self.lsa(self.feature_tokens(tokens))


class FeatureGD(eqx.Module):
    embed: Embedding
    log_lr: Float[Array, ""]

    def __init__(self, d: int, features: int, lr: float = 0.1, *, key: PRNGKeyArray):
        self.embed = Embedding(d, features, key=key)
        self.log_lr = jnp.log(jnp.asarray(lr))

    def __call__(self, tokens: Float[Array, "t dim"]) -> Float[Array, ""]:
        h = _feature_tokens(self.embed, tokens)
        phi, y = h[:-1, :-1], h[:-1, -1]
        n = phi.shape[0]
        return jnp.exp(self.log_lr) / n * (y @ phi) @ h[-1, :-1]


def gd_form(model: FeatureLSA) -> FeatureLSA:
    """The part of a 1-layer ``FeatureLSA`` that is a GD step on its learned features.

    Keeps W_KQ's feature block A (scores φ(x_q)ᵀ A φ(x_j)) and W_PV's label-to-label entry
    −η/N, and drops everything else (label terms in the scores, feature outputs of the
    values): the result predicts ŷ = (η/N) Σ_j y_j φ(x_j)ᵀ A φ(x_q), one GD step on the
    features A^{1/2}φ. Comparing it with the model measures how GD-like the model is.
    The dropped cross term −Σ_j y_j (φ_qᵀa)(φ_jᵀu) (label column a of W_KQ, feature rows u
    of W_PV) is also linear in the labels; ``iclab.instruments.label_polynomial_parts``
    gives the exact split of any such prediction by degree in the labels.
    """
    if model.lsa.n_layers != 1 or model.lsa.blocks[0].mlp is not None \
            or model.lsa.blocks[0].ln_attn is not None or model.lsa.blocks[0].attn.softmax:
        raise ValueError("gd_form needs one linear attention layer without MLP or LayerNorm")
    attn = model.lsa.blocks[0].attn
    w_kq, w_pv = attn.qk().sum(0), attn.pv().sum(0)
    dim = w_kq.shape[0]
    w_kq = w_kq.at[-1, :].set(0.0).at[:, -1].set(0.0)
    w_pv = jnp.zeros_like(w_pv).at[-1, -1].set(w_pv[-1, -1])
    config = LSATransformerConfig(dim=dim, key_size=dim, init_scale=0.0)
    lsa = LSATransformer(config, key=jax.random.key(0))
    eye = jnp.eye(dim)[None]
    lsa = eqx.tree_at(lambda m: (m.blocks[0].attn.w_q, m.blocks[0].attn.w_k,
                                 m.blocks[0].attn.w_v, m.blocks[0].attn.w_p),
                      lsa, (w_kq[None], eye, eye, w_pv[None]))
    return eqx.tree_at(lambda m: m.lsa, model, lsa)
