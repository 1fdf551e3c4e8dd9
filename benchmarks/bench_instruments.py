"""What each training-dynamics instrument costs against one training step.

The model is the one the entropy-collapse experiment of ``dynamics.md`` §1.4 calls for: a
4-layer causal softmax transformer, width 128, 4 heads of 32, MLPs and LayerNorm, on
next-token prediction over a 64-symbol vocabulary, T = 64, batch 32, Adam. Every
instrument runs jitted on one fixed batch of that size; each figure is the mean of 5
timed calls after a compile (``_timing.timed``). "every 100" is the cost amortised over 100
training steps — the issue's targets: entropy, norms and spectra ≤ 10 % of a step when logged every
100 steps; the top Hessian eigenvalue by 20 Lanczos iterations ≤ 30 steps.

Usage: python benchmarks/bench_instruments.py [--batch 32] [--length 64]
"""

import argparse

import equinox as eqx
import jax
import optax

from _timing import machine_line, timed
from iclab.instruments import (
    attention_entropy,
    directional_curvature,
    empirical_ntk,
    hessian_operator,
    hutchinson_trace,
    lanczos_eigenvalues,
    layer_norms,
    power_iteration,
    singular_value_metrics,
)
from iclab.models import CausalTransformer, CausalTransformerConfig


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--vocab", type=int, default=64)
    args = parser.parse_args()
    print(machine_line())
    config = CausalTransformerConfig(layers=("softmax",) * 4, heads=4, key_size=32,
                                     dim_in=args.vocab, dim=128, dim_out=args.vocab,
                                     readout="linear", mlp=True, layer_norm=True,
                                     init_std=0.02, max_len=args.length)
    model = CausalTransformer(config, key=jax.random.key(0))
    params, static = eqx.partition(model, eqx.is_array)
    ids = jax.random.randint(jax.random.key(1), (args.batch, args.length + 1), 0, args.vocab)
    tokens = jax.nn.one_hot(ids[:, :-1], args.vocab)
    targets = ids[:, 1:]

    def loss(p, batch=(tokens, targets)):
        logits = jax.vmap(eqx.combine(p, static))(batch[0])
        return optax.softmax_cross_entropy_with_integer_labels(logits, batch[1]).mean()

    optimizer = optax.adam(1e-3)
    opt_state = optimizer.init(params)

    @jax.jit
    def hundred_steps(p, s):
        def step(carry, _):
            p, s = carry
            g = jax.grad(loss)(p)
            u, s = optimizer.update(g, s, p)
            return (optax.apply_updates(p, u), s), None
        return jax.lax.scan(step, (p, s), None, length=100)[0]

    step = timed(hundred_steps, params, opt_state, repeats=5) / 100
    n_params = sum(x.size for x in jax.tree.leaves(params))
    print(f"model: {n_params:,} parameters; one training step (batch {args.batch}, "
          f"T {args.length}): {step * 1e3:.2f} ms")

    def entropy(p):
        patterns = jax.vmap(eqx.combine(p, static).attention_patterns)(tokens)
        return attention_entropy(patterns.mean(0))

    def norms(p):
        return layer_norms(p)

    def norms_with_grads(p):
        g = jax.grad(loss)(p)
        return layer_norms(p, grads=g, updates=g)

    def spectra(p):
        return [singular_value_metrics(w) for w in jax.tree.leaves(p) if w.ndim == 2]

    matvec, flat = hessian_operator(loss, params)
    v0 = jax.random.normal(jax.random.key(2), flat.shape)

    rows = [
        ("attention entropy (per layer, head)", jax.jit(entropy), (params,), "≤ 10 % / 100"),
        ("parameter norms and RMS (per array)", jax.jit(norms), (params,), "≤ 10 % / 100"),
        ("+ gradient and update norms", jax.jit(norms_with_grads), (params,), "≤ 10 % / 100"),
        ("spectra of every weight matrix", jax.jit(spectra), (params,), "≤ 10 % / 100"),
        ("fixed-batch loss", jax.jit(loss), (params,), ""),
        ("curvature along the gradient (3 fwd)", jax.jit(
            lambda p: directional_curvature(loss, p, jax.grad(loss)(p))), (params,), ""),
        ("top eigenvalue, 20 power iterations", jax.jit(
            lambda v: power_iteration(matvec, v, 20)[0]), (v0,), ""),
        ("top eigenvalue, 20 Lanczos steps", jax.jit(
            lambda v: lanczos_eigenvalues(matvec, v, 20)[-1]), (v0,), "≤ 30 steps"),
        ("Hutchinson trace, 10 samples", jax.jit(
            lambda k: hutchinson_trace(matvec, flat, k, 10)), (jax.random.key(3),), ""),
        ("empirical NTK, 16 sequences (last logit)", jax.jit(lambda p: empirical_ntk(
            lambda q, x: eqx.combine(q, static)(x)[-1], p, tokens[:16])), (params,), ""),
    ]
    print(f"\n{'instrument':44s} {'ms':>9s} {'× step':>8s} {'every 100':>10s}  target")
    for name, fn, fn_args, target in rows:
        seconds = timed(fn, *fn_args, repeats=5)
        ratio = seconds / step
        verdict = ""
        if target.startswith("≤ 10"):
            verdict = "met" if ratio / 100 <= 0.10 else "MISSED"
        elif target.startswith("≤ 30"):
            verdict = "met" if ratio <= 30 else "MISSED"
        print(f"{name:44s} {seconds * 1e3:9.2f} {ratio:8.2f} {ratio / 100:9.1%}  "
              f"{target} {verdict}")


if __name__ == "__main__":
    main()
