"""Tree baselines from external libraries (optional extra ``iclab[trees]``: scikit-learn and
XGBoost), as in Garg et al. (2022) for in-context regression of decision trees:

* the greedy regression tree of unbounded depth, ``DecisionTreeRegressor()`` — grown until
  every leaf holds one distinct input (CART; the bounded-depth tree is in JAX,
  ``solvers.tree_prefix_predictions``);
* gradient-boosted trees, ``XGBRegressor()`` with the library defaults.

Each learner is fitted per prompt on the first i − 1 pairs and predicts the i-th input,
with ŷ_1 = 0 (Garg's convention: no data, predict 0). They run on the host (numpy),
one fit per prefix, so they are much slower than the JAX baselines: use a few prompts.
"""

import importlib
from collections.abc import Callable

import numpy as np

EXTRA = "trees"


def require(module: str):
    """Import an optional dependency, or fail with the install command."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(f"{module} is not installed: it is an optional baseline; install it "
                          f"with pip install 'iclab[{EXTRA}]'") from error


def available(module: str) -> bool:
    """Whether an optional dependency can be imported."""
    try:
        importlib.import_module(module)
    except ImportError:
        return False
    return True


def _prefix_predictions(make: Callable[[], object], x: np.ndarray, y: np.ndarray
                        ) -> np.ndarray:
    """ŷ_i of ``make()`` fitted on the first i − 1 pairs of every prompt; x (B, k, d),
    y (B, k) → (B, k), ŷ_1 = 0."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 3 or y.shape != x.shape[:2]:
        raise ValueError(f"expected x (B, k, d) and y (B, k), got {x.shape} and {y.shape}")
    out = np.zeros(y.shape)
    for b in range(x.shape[0]):
        for i in range(1, x.shape[1]):
            model = make()
            model.fit(x[b, :i], y[b, :i])
            out[b, i] = model.predict(x[b, i:i + 1])[0]
    return out


def sklearn_tree_prefix_predictions(x, y, max_depth: int | None = None) -> np.ndarray:
    """Prefix predictions of scikit-learn's CART regression tree (unbounded by default)."""
    tree = require("sklearn.tree")
    return _prefix_predictions(lambda: tree.DecisionTreeRegressor(max_depth=max_depth), x, y)


def xgboost_prefix_predictions(x, y, **params) -> np.ndarray:
    """Prefix predictions of ``xgboost.XGBRegressor(**params)`` (defaults: Garg's setting),
    single-threaded and seeded so that runs repeat exactly."""
    xgboost = require("xgboost")
    params = {"n_jobs": 1, "random_state": 0, **params}
    return _prefix_predictions(lambda: xgboost.XGBRegressor(**params), x, y)
