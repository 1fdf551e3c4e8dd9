"""wsd: the language problem's floor, the probes' learning rate against the schedule, and
a smoke run of the whole recipe (tables, claims evaluated, figures drawn)."""

import json

import jax
import numpy as np
import pytest

from iclab.cli import main
from iclab.engine import (
    OptimConfig,
    ProbeConfig,
    TrainConfig,
    Trainer,
    language_problem,
    wsd_schedule,
)
from iclab.store import load_run
from iclab.tasks import MarkovLanguageTask


def test_the_chain_itself_reaches_the_entropy_rate_and_probes_log_the_schedule():
    """A model whose logits are log P of the chain has loss = entropy rate (excess ≈ 0 up
    to Monte Carlo error), and the probes' ``lr`` is the WSD schedule of the last step."""
    import equinox as eqx
    import jax.numpy as jnp

    task = MarkovLanguageTask(vocab=8, length=16, branching=3)
    logp = jnp.log(jnp.asarray(task.transitions, jnp.float32) + 1e-9)  # finite gradients

    class Chain(eqx.Module):
        scale: jax.Array

        def __call__(self, tokens):  # one-hot (T, V) → logits (T, V)
            return self.scale * logp[jnp.argmax(tokens, axis=-1)]

    problem = language_problem(task, lambda key: Chain(jnp.ones(())),
                               floor=task.entropy_rate)
    batch = task.sample_batch(jax.random.key(1), 4000)
    metrics = problem.evaluate(Chain(jnp.ones(())), batch)
    assert float(metrics["excess_loss"]) == pytest.approx(0.0, abs=0.01)
    optim = OptimConfig(name="adam", lr=0.01, schedule="wsd", warmup_steps=10,
                        decay_fraction=0.5)
    train = TrainConfig(steps=100, batch_size=8, eval_every=20,
                        probes=ProbeConfig(every=20, norms=False, entropy=False,
                                           batch_size=8, sharpness=3, preconditioned=True))
    trainer = Trainer(problem, optim, train)
    trainer.fit(batch)
    history = trainer.history
    lr = history[history.metric == "probe/lr"].set_index("step").value
    expected = wsd_schedule(0.01, 100, 10, 0.5)
    # the state holds the rate of the last step taken: η(t − 1) at step t (η(0) at 0)
    np.testing.assert_allclose(lr.to_numpy(), [float(expected(max(s - 1, 0)))
                                               for s in lr.index], rtol=1e-5)
    sharp = history[history.metric == "probe/preconditioned_sharpness"].set_index("step")
    assert np.isnan(sharp.value.loc[0])  # before Adam's first step ν̂ is undefined
    assert np.isfinite(sharp.value.loc[20:]).all() and len(sharp) == 6


@pytest.mark.slow  # end to end through the CLI (~15–60 s); `make slow`
def test_short_run_writes_every_table_and_figure(tmp_path):
    code = main(["run", "wsd", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "train.steps=200", "--set", "optim.warmup_steps=20",
                 "--set", "eval_sequences=16", "--set", "train.batch_size=8",
                 "--set", "train.probes.batch_size=8", "--set", "train.probes.sharpness=2",
                 "--set", "task.length=8", "--set", "model.max_len=8",
                 "--set", "model.layers=softmax", "--set", "model.dim=8",
                 "--set", "model.key_size=4"])
    assert code in (0, 1)
    (path,) = (tmp_path / "wsd").iterdir()
    run = load_run(path)
    summary = run.tables["summary"]
    assert sorted(summary.schedule) == ["cosine", "wsd"]
    assert (summary.excess_end > -0.05).all()  # nothing beats the entropy rate
    claims = json.loads((path / "claims.json").read_text())
    assert {c["id"] for c in claims} == {"wsd_above_in_stable_phase", "wsd_drops_in_decay",
                                        "wsd_matches_cosine", "sharpness_rises_in_decay"}
    assert len(list((path / "figures").glob("*.svg"))) == 3
