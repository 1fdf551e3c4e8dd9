"""The recipe layer's seams: a discovered registry, public imports only, no recipe
importing another, and the spec evaluated from tables alone."""

import ast
import pathlib

import numpy as np
import pandas as pd
import pytest

import iclab
from iclab.framework import Claim, Results, evaluate, mean_interval, recipes

RECIPES = pathlib.Path(iclab.__file__).parent / "recipes"


def _imports(path: pathlib.Path) -> list[str]:
    tree = ast.parse(path.read_text())
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.append(node.module)
        elif isinstance(node, ast.Import):
            names += [a.name for a in node.names]
    return names


def test_registry_is_discovered():
    found = recipes()
    modules = {p.stem.replace("_", "-") for p in RECIPES.glob("*.py") if p.stem != "__init__"}
    assert set(found) == modules and len(found) == 19
    assert set(iclab.list_recipes()) == set(found)


@pytest.mark.parametrize("path", sorted(RECIPES.glob("*.py")) + sorted(
    (RECIPES / "analysis").glob("*.py")), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_recipes_import_only_the_public_api_and_no_other_recipe(path):
    own = path.stem
    for module in _imports(path):
        if not module.startswith("iclab"):
            continue
        parts = module.split(".")
        assert not any(p.startswith("_") for p in parts), f"{path.name} imports {module}"
        if module.startswith("iclab.recipes."):  # only its own analysis module
            assert module == f"iclab.recipes.analysis.{own}", f"{path.name} imports {module}"


def test_a_claim_is_evaluated_from_tables_with_a_student_t_interval():
    seeds = pd.DataFrame({"ratio": [1.01, 0.99, 1.03, 1.00]})
    results = Results(None, {"seeds": seeds}, pd.DataFrame())
    row = evaluate(Claim("c", "ratio near 1", lambda r: r["seeds"].ratio, "<=", 0.02,
                         transform=lambda m: abs(m - 1)), results)
    mean, s, n = 1.0075, float(np.std(seeds.ratio, ddof=1)), 4
    half = 3.182446305284263 * s / np.sqrt(n)  # t_{0.975, 3}
    assert row.measured == pytest.approx(0.0075) and row.passed
    assert mean_interval(seeds.ratio) == pytest.approx((mean - half, mean + half))
    assert row.interval == pytest.approx([0.0, mean + half - 1], abs=2e-5)  # |m − 1| over it
    assert row.fragile  # the interval reaches past 0.02
    assert row.per_seed == list(seeds.ratio)
    missing = evaluate(Claim("m", "needs a table", lambda r: r["absent"].x, ">", 0), results)
    assert missing.measured is None and not missing.passed and "absent" in missing.error
    nan = evaluate(Claim("n", "nan fails", lambda r: float("nan"), "<", 1), results)
    assert not nan.passed and nan.measured is None
