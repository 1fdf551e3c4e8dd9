"""Every script in examples/ runs to the end (each uses only the public API)."""

import os
import pathlib
import subprocess
import sys

import pytest

EXAMPLES = sorted((pathlib.Path(__file__).parent.parent / "examples").glob("*.py"))


def test_there_are_examples():
    assert {p.name for p in EXAMPLES} >= {"run_a_recipe.py", "bring_your_own_model.py",
                                          "writing_a_recipe.py"}


@pytest.mark.parametrize("script", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(script, tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    result = subprocess.run([sys.executable, str(script), str(tmp_path / "runs")], env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    private = [line for line in script.read_text().splitlines()
               if line.startswith(("from iclab._", "import iclab._"))]
    assert not private, private  # the public API only
    assert (tmp_path / "runs").exists() and any((tmp_path / "runs").rglob("report.html"))
