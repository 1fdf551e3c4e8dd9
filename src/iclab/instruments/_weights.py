"""Weight-space comparison of a trained LSA layer with a hand-built construction.

A linear attention head enters the function only through the two products
W_KQ = W_Q W_Kᵀ (scores e_i W_KQ e_jᵀ) and W_PV = W_V W_P (values e_j W_PV),
and only through their product: (c W_KQ, W_PV / c) is the same function for any
c ≠ 0. Alignment is therefore measured after removing this scale (and sign)
symmetry (von Oswald et al. 2022, Fig. 2 and the reference ``interpolate_weights``).
"""

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from iclab.instruments._compare import cosine_similarity
from iclab.models import LinearSelfAttention


def normalise_scale(w_kq: Float[Array, "dim dim"], w_pv: Float[Array, "dim dim"], d: int
                    ) -> tuple[Float[Array, "dim dim"], Float[Array, "dim dim"]]:
    """Divide W_KQ by c = mean of its first d diagonal entries and multiply W_PV by c."""
    c = jnp.mean(jnp.diag(w_kq)[:d])
    return w_kq / c, w_pv * c


def effective_lr(attn: LinearSelfAttention, d: int, n_context: int) -> Float[Array, ""]:
    """η implied by a one-head LSA: N · (−c · W_PV[y, y]), c the mean x-diagonal of W_KQ.

    For the GD construction, c = 1 and W_PV[y, y] = −η/N, so this returns η.
    """
    _, w_pv = normalise_scale(attn.qk()[0], attn.pv()[0], d)
    return -n_context * w_pv[-1, -1]


def weight_alignment(attn: LinearSelfAttention, construction: LinearSelfAttention, d: int
                     ) -> dict[str, Float[Array, ""]]:
    """Cosines between a trained head's weight products and the construction's.

    Returns:
        ``kq_cos``, ``pv_cos``: cos of the flattened W_KQ and W_PV after
        ``normalise_scale`` (head 0 of each layer);
        ``product_cos``: cos of Σ_h vec(W_KQ,h) vec(W_PV,h)ᵀ with the construction's,
        the symmetry-free bilinear form of the layer (for one head it equals
        |kq_cos · pv_cos| before normalisation).
    """
    kq, pv = normalise_scale(attn.qk()[0], attn.pv()[0], d)
    kq_ref, pv_ref = normalise_scale(construction.qk()[0], construction.pv()[0], d)
    flat = lambda a: a.reshape(1, -1)
    tensor = jnp.einsum("hab,hcd->abcd", attn.qk(), attn.pv())
    tensor_ref = jnp.einsum("hab,hcd->abcd", construction.qk(), construction.pv())
    return {"kq_cos": cosine_similarity(flat(kq), flat(kq_ref))[0],
            "pv_cos": cosine_similarity(flat(pv), flat(pv_ref))[0],
            "product_cos": cosine_similarity(flat(tensor), flat(tensor_ref))[0]}


def interpolated_head(attn: LinearSelfAttention, construction: LinearSelfAttention, d: int,
                      t: float = 0.5) -> LinearSelfAttention:
    """The one-head linear attention between a trained head and a construction:

        W_KQ(t) = (1 − t) Ŵ_KQ + t Ŵ_KQ^c,   W_PV(t) = (1 − t) Ŵ_PV + t Ŵ_PV^c,

    with Ŵ the products after ``normalise_scale`` (head 0 of each). t = 0 is the trained
    head's function, t = 1 the construction's. If the two are the same function up to the
    scale symmetry, every t is too, so the loss along t is flat (von Oswald et al. 2023,
    Fig. 2; the reference code's ``interpolate_weights``).

    Args:
        attn: the trained head (its module is reused, with its softmax flag).
        construction: e.g. ``iclab.solvers.gd_construction(...).blocks[0].attn``.
        d: the input dimension (the first d diagonal entries set the scale).
        t: the interpolation weight.

    Returns:
        A ``LinearSelfAttention`` with one head of key size D whose W_Q = W_KQ(t),
        W_K = I, W_V = W_PV(t), W_P = I.

    Examples:
        >>> import jax, jax.numpy as jnp
        >>> from iclab.solvers import gd_construction
        >>> c = gd_construction(2, 8, 0.5).blocks[0].attn
        >>> mid = interpolated_head(c, c, 2)
        >>> bool(jnp.allclose(mid.qk(), c.qk()) and jnp.allclose(mid.pv(), c.pv()))
        True
    """
    kq, pv = normalise_scale(attn.qk()[0], attn.pv()[0], d)
    kq_c, pv_c = normalise_scale(construction.qk()[0], construction.pv()[0], d)
    eye = jnp.eye(kq.shape[0], dtype=kq.dtype)[None]
    return eqx.tree_at(lambda a: (a.w_q, a.w_k, a.w_v, a.w_p), attn,
                       (((1 - t) * kq + t * kq_c)[None], eye,
                        ((1 - t) * pv + t * pv_c)[None], eye))
