"""The diagonal softmax attention head of the incremental-learning theorem.

One head on tokens X ∈ R^{N×d} with diagonal weights W_Q = diag(w_Q), W_K = diag(w_K),
W_V = diag(w_V), W_O = diag(w_O):

    f(X) = softmax(X diag(w_Q ⊙ w_K) Xᵀ / √d) X diag(w_V ⊙ w_O),

so the attention product W_K W_Qᵀ is diag(a) with a = w_Q ⊙ w_K and the value product
W_V W_Oᵀ is diag(v) with v = w_V ⊙ w_O; the rank of a product's change from
initialisation is the number of its entries that moved. From a small initialisation
α·N(0, 1), gradient flow learns stagewise: long plateaus near saddles, each left by one
new active entry, at times that scale as log(1/α).

References:
    Boix-Adserà, Littwin, Abbe, Bengio, Susskind. "Transformers learn through gradual
    rank increase", NeurIPS 2023 (arXiv 2306.07042), §3 (diagonal weights, α → 0).
"""

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray

from iclab.models._interface import HeadWeightsModel


class DiagonalSoftmaxHead(HeadWeightsModel):
    """f(X) = softmax(X diag(w_Q ⊙ w_K) Xᵀ/√d) X diag(w_V ⊙ w_O) (see the module docstring).

    Args:
        wq, wk, wv, wo: the four diagonals (d,).

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> head = DiagonalSoftmaxHead.initialise(4, 0.1, key=jax.random.key(0))
        >>> head(jnp.ones((3, 4))).shape
        (3, 4)
    """

    wq: Float[Array, " d"]
    wk: Float[Array, " d"]
    wv: Float[Array, " d"]
    wo: Float[Array, " d"]

    @classmethod
    def initialise(cls, d: int, scale: float, *, key: PRNGKeyArray) -> "DiagonalSoftmaxHead":
        """Every diagonal entry from scale · N(0, 1) (the theorem's α)."""
        return cls(*(scale * jax.random.normal(k, (d,)) for k in jax.random.split(key, 4)))

    @classmethod
    def from_products(cls, attention: Array, values: Array) -> "DiagonalSoftmaxHead":
        """A head whose products are the given a and v (w_Q = a, w_K = 1, w_V = v, w_O = 1):
        a teacher."""
        ones = jnp.ones_like(attention)
        return cls(attention, ones, values, ones)

    @property
    def attention_product(self) -> Float[Array, " d"]:
        """a = w_Q ⊙ w_K, the diagonal of W_K W_Qᵀ."""
        return self.wq * self.wk

    @property
    def value_product(self) -> Float[Array, " d"]:
        """v = w_V ⊙ w_O, the diagonal of W_V W_Oᵀ."""
        return self.wv * self.wo

    def __call__(self, x: Float[Array, "n d"]) -> Float[Array, "n d"]:
        logits = (x * self.attention_product[None]) @ x.T / jnp.sqrt(x.shape[-1])
        return (jax.nn.softmax(logits, axis=-1) @ x) * self.value_product[None]

    def head_weights(self) -> list[dict[str, Array]]:
        """One layer, one head: (d, d) matrices diag(w) in the (heads, ·, ·) layout."""
        diag = lambda w: jnp.diag(w)[None]
        return [{"q": diag(self.wq), "k": diag(self.wk), "v": diag(self.wv),
                 "o": diag(self.wo), "logit_scale": 1.0 / jnp.sqrt(self.wq.shape[0])}]
