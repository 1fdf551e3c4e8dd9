"""bursty-icl: token layout, config validation and a smoke run of the grid."""

import json

import jax.numpy as jnp
import numpy as np
import pytest

from iclab._errors import ConfigError
from iclab.cli import main
from iclab.config import apply_overrides
from iclab.recipes.bursty_icl import quick_config
from iclab.store import load_run
from iclab.tasks import bursty_tokens


def test_bursty_tokens_interleave_items_and_one_hot_labels():
    items = jnp.arange(6.0).reshape(2, 3)
    tokens = np.asarray(bursty_tokens(items, jnp.array([1, 0]), jnp.array([9.0, 9, 9]), 2))
    np.testing.assert_array_equal(tokens, [[0, 1, 2, 0, 0], [0, 0, 0, 0, 1],
                                           [3, 4, 5, 0, 0], [0, 0, 0, 1, 0],
                                           [9, 9, 9, 0, 0]])


def test_grid_values_are_validated():
    config = apply_overrides(quick_config(), ["burstiness=0,2", "classes=16,64"])
    assert config.task_for(0, 16).p_bursty == 0.0 and config.task_for(2, 64).burstiness == 2
    with pytest.raises(ConfigError, match="burstiness"):
        apply_overrides(quick_config(), ["burstiness=3"])
    with pytest.raises(ConfigError, match="classes"):
        apply_overrides(quick_config(), ["classes=4"])


@pytest.mark.slow  # end to end through the CLI (~30 s); `make slow`
def test_smoke_run_writes_the_grid(tmp_path):
    code = main(["run", "bursty-icl", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "burstiness=4", "--set", "classes=8,16", "--set", "train.steps=40",
                 "--set", "train.eval_every=20", "--set", "eval_sequences=64",
                 "--set", "train.batch_size=32"])
    assert code in (0, 1)
    (run,) = (tmp_path / "bursty-icl").iterdir()
    claims = json.loads((run / "claims.json").read_text())
    assert [c["id"] for c in claims] == ["icl_emerges", "no_icl_few_classes"]
    grid = load_run(run).tables["grid"]
    assert set(zip(grid.burstiness, grid.classes, strict=True)) == {(4, 8), (4, 16)}
    assert grid.icl_accuracy.between(0, 1).all() and list(grid.seed) == [0, 0]
