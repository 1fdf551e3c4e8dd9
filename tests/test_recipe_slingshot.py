"""slingshot: the finite-data problem's two splits, and a smoke run of the whole recipe
(tables, claims evaluated, figures drawn)."""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from iclab.cli import main
from iclab.engine import OptimConfig, TrainConfig, Trainer, finite_problem
from iclab.store import load_run
from iclab.tasks import ModularArithmetic


def test_finite_problem_measures_both_splits_and_trains_on_the_training_set_only():
    """A lookup table model (one logit row per equation index) trained on the training
    split: the training-set metrics are computed over every training equation, the test
    metrics over the held-out ones (numpy reference), and the held-out rows never move."""
    import equinox as eqx

    task = ModularArithmetic(p=7, operation="x+y", train_fraction=0.5)
    train, test = task.split()

    class Table(eqx.Module):
        logits: jax.Array

    def out(model, data):
        return model.logits[data.tokens[:, 0] * 7 + data.tokens[:, 2]]

    def metrics(model, data):
        logits = out(model, data)
        import optax

        return {"loss": optax.softmax_cross_entropy_with_integer_labels(
                    logits, data.target).mean(),
                "accuracy": (logits.argmax(-1) == data.target).mean()}

    problem = finite_problem(train, lambda key: Table(jnp.zeros((49, 7))),
                             lambda m, b: metrics(m, b)["loss"], metrics, batch_size=5,
                             extra=lambda m: {"norm": jnp.linalg.norm(m.logits)})
    trainer = Trainer(problem, OptimConfig(name="sgd", lr=5.0),
                      TrainConfig(steps=200, batch_size=5, eval_every=100))
    state = trainer.fit((train, test))
    final = trainer.evaluate(state, (train, test))
    assert set(final) == {"train_set_loss", "train_set_accuracy", "test_loss",
                          "test_accuracy", "norm"}
    assert float(final["train_set_accuracy"][0]) == 1.0
    logits = np.asarray(trainer.models(state)[0].logits)
    rows = lambda data: np.asarray(data.tokens[:, 0] * 7 + data.tokens[:, 2])
    assert np.abs(logits[rows(test)]).max() == 0  # never trained on
    assert float(final["test_loss"][0]) == pytest.approx(np.log(7), rel=1e-6)


@pytest.mark.slow  # end to end through the CLI (~15–60 s); `make slow`
def test_short_run_writes_every_table_and_figure(tmp_path):
    code = main(["run", "slingshot", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "train.steps=1200"])
    assert code in (0, 1)
    (path,) = (tmp_path / "slingshot").iterdir()
    run = load_run(path)
    runs = run.tables["runs"]
    assert sorted(runs.eps) == [1e-8, 1e-4]
    assert (runs.final_train_accuracy > 0.9).all()  # it fits the training set (~700 steps)
    assert {"onset", "end", "norm_ratio", "slingshot"} <= set(run.tables["slingshots"])
    claims = json.loads((path / "claims.json").read_text())
    assert {c["id"] for c in claims} == {"slingshots_cycle", "norm_grows_in_bursts",
                                        "larger_eps_suppresses", "grokking_at_slingshot"}
    assert len(list((path / "figures").glob("*.svg"))) == 2
