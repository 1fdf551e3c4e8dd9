"""Every recipe's quick mode passes all its claims and checks (slow: ``make slow``).

One test per recipe, discovered from the registry, so a new recipe is covered as soon as it
exists. Each asserts the exit code and every row of claims.json and checks.json.
"""

import json

import pytest

from iclab.cli import main
from iclab.framework import recipes


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(recipes()))
def test_quick_mode_passes_every_claim_and_check(name, tmp_path):
    code = main(["run", name, "--quick", "--out", str(tmp_path)])
    (run,) = (tmp_path / name).iterdir()
    claims = json.loads((run / "claims.json").read_text())
    checks = json.loads((run / "checks.json").read_text())
    failing = [c["id"] for c in claims + checks if not c["passed"]]
    assert code == 0 and not failing, f"{name}: failing {failing}"
    assert claims, f"{name} has no claims"
