"""Induction progress measures α̃₃, β̃₂, γ̃₃ (Musat et al. eqs. 20–22) against numpy loops."""

import jax
import numpy as np
import pytest

from iclab.instruments import induction_progress
from iclab.models import CausalTransformer, CausalTransformerConfig


def test_progress_measures_match_numpy_loops():
    vocab, length = 10, 7
    config = CausalTransformerConfig(layers=("softmax", "softmax"), heads=2, key_size=3, dim=6,
                                     readout="linear", init_std=0.5,
                                     max_len=length).resolve(vocab, vocab)
    model = CausalTransformer(config, key=jax.random.key(0))
    items, labels = np.arange(4), np.arange(4, 10)
    got = induction_progress(model, items, labels, length)

    l1, l2 = model.layers
    wq1, wk1, wv1, wo1 = (np.asarray(a, np.float64) for a in (l1.w_q, l1.w_k, l1.w_v, l1.w_p))
    wq2, wk2, wv2, wo2 = (np.asarray(a, np.float64) for a in (l2.w_q, l2.w_k, l2.w_v, l2.w_p))
    p = np.asarray(model.position_embedding, np.float64)
    emb = np.asarray(model.embed.weight, np.float64)          # (D, V): column t is t's embedding
    unembed = np.asarray(model.read_out.weight, np.float64)   # (V, D)

    alpha = max(sum((wk1[h] @ p[i - 1]) @ (wq1[h] @ p[i]) for i in range(1, length))
                for h in range(2))
    ov1 = sum(wo1[h] @ wv1[h] for h in range(2))
    beta = max(sum((wk2[h] @ ov1 @ emb[:, t]) @ (wq2[h] @ emb[:, t]) for t in items)
               for h in range(2))
    gamma = max(np.trace(unembed[labels] @ wo2[h] @ wv2[h] @ emb[:, labels]) for h in range(2))
    assert float(got["alpha3_tilde"]) == pytest.approx(alpha, rel=1e-4)
    assert float(got["beta2_tilde"]) == pytest.approx(beta, rel=1e-4)
    assert float(got["gamma3_tilde"]) == pytest.approx(gamma, rel=1e-4)
