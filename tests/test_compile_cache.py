"""The persistent compilation cache of ``iclab run``: a second process loads the programs
the first compiled (nothing new is written) and reaches the same numbers bit for bit."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np

import iclab
from iclab.framework._run import compile_cache_dir

HERE = Path(__file__).parent


def _values(run_path) -> np.ndarray:
    metrics = iclab.load_run(run_path).metrics.sort_values(["metric", "seed", "step"])
    return metrics[["metric", "seed", "step", "value"]].to_numpy()


def test_the_cache_folder_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("ICLAB_COMPILE_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache_dir() == tmp_path / "iclab" / "xla"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert compile_cache_dir() == Path("~/.cache/iclab/xla").expanduser()
    monkeypatch.setenv("ICLAB_COMPILE_CACHE", str(tmp_path / "mine"))
    assert compile_cache_dir() == tmp_path / "mine"
    for off in ("off", "0", "OFF", ""):
        monkeypatch.setenv("ICLAB_COMPILE_CACHE", off)
        assert compile_cache_dir() is None


def test_a_second_run_loads_every_program_from_the_cache(tmp_path):
    cache = tmp_path / "cache"
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env.update(JAX_PLATFORMS="cpu", ICLAB_COMPILE_CACHE=str(cache),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",  # (the tests' programs are small)
               PYTHONPATH=os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")]))
    paths, entries = [], []
    for name in ("first", "second"):
        done = subprocess.run([sys.executable, "-m", "iclab.cli", "run",
                               "executor_recipe:RECIPE", "--out", str(tmp_path / name)],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode in (0, 1), done.stderr[-2000:]
        (path,) = (tmp_path / name / "pair").iterdir()
        paths.append(path)
        entries.append(sorted(p.name for p in cache.iterdir()))
    assert len(entries[0]) > 2  # the chunk, evaluation and initialisation programs at least
    assert entries[1] == entries[0]  # nothing compiled again: every program was loaded
    assert (_values(paths[0]) == _values(paths[1])).all()
