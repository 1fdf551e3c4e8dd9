import pytest

from iclab._errors import ConfigError
from iclab.config import apply_overrides, from_dict, leaf_keys, to_dict
from iclab.recipes.icl_gd import IclGdConfig, quick_config


def test_round_trip():
    config = apply_overrides(quick_config(), ["task.d=5", "train.seeds=2"])
    assert from_dict(IclGdConfig, to_dict(config)) == config


def test_overrides_parse_types():
    config = apply_overrides(IclGdConfig(), ["task.d=4", "optim.lr=3e-4", "model.softmax=true",
                                             "task.input_dist=gaussian"])
    assert config.task.d == 4 and config.optim.lr == 3e-4 and config.model.softmax is True
    assert config.task.input_dist == "gaussian"


@pytest.mark.parametrize("item, key, fragment", [
    ("task.dd=3", "task.dd", "unknown config key"),
    ("task.d=abc", "task.d", "an integer"),
    ("task.d=0", "task.d", "an integer > 0"),
    ("task.n_context=-2", "task.n_context", "an integer > 0"),
    ("optim.lr=-0.1", "optim.lr", "finite number > 0"),
    ("model.softmax=maybe", "model.softmax", "true or false"),
    ("noequals", "--set", "key=value"),
])
def test_bad_overrides_name_the_key(item, key, fragment):
    with pytest.raises(ConfigError) as err:
        apply_overrides(IclGdConfig(), [item])
    assert err.value.key == key
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_leaf_keys_cover_nested_configs():
    keys = leaf_keys(IclGdConfig)
    assert {"task.d", "model.layers", "optim.lr", "train.steps", "eval.tasks"} <= set(keys)


def test_a_second_nested_config_of_the_same_type_is_named_as_typed():
    """MLP + GD's optimiser validates like the TF's but the error names the key typed."""
    from iclab.recipes.nonlinear_regression import NonlinearConfig

    with pytest.raises(ConfigError) as err:
        apply_overrides(NonlinearConfig(), ["mlp_gd_optim.lr=-1"])
    assert err.value.key == "mlp_gd_optim.lr" and "finite number > 0" in str(err.value)
    assert apply_overrides(NonlinearConfig(), ["mlp_gd_optim.lr=1e-4"]).mlp_gd_optim.lr == 1e-4
