"""End to end: the headline recipe through the CLI, and kill -9 then --resume."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

import iclab.store
from iclab.cli import main
from iclab.store import RunDir, list_runs, load_metrics, load_run

CLAIM_KEYS = {"id", "claim", "measured", "criterion", "paper", "reference", "passed",
              "per_seed", "interval", "fragile", "error", "note", "status", "nonfinite"}


def _only_run(root):
    (path,) = [p for p in (root / "icl-gd").iterdir() if p.is_dir()]
    return RunDir(path)


@pytest.mark.slow  # an end-to-end quick run: make slow
def test_quick_mode_passes_every_claim(tmp_path, capsys):
    code = main(["run", "icl-gd", "--quick", "--out", str(tmp_path)])
    run = _only_run(tmp_path)
    claims = json.loads((run.path / "claims.json").read_text())
    assert code == 0, claims
    checks = json.loads((run.path / "checks.json").read_text())
    assert [c["id"] for c in claims] == ["loss_vs_gd", "pred_diff", "sens_cos", "weights_cos",
                                         "interpolation_flat"]
    assert [c["id"] for c in checks] == ["construction_exact"]
    for c in claims + checks:
        assert set(c) == CLAIM_KEYS and isinstance(c["measured"], float) and c["passed"] is True
    for c in claims:  # 3 seeds: per-seed values and a 95 % interval around the statistic
        assert len(c["per_seed"]) == 3 and c["interval"][0] <= c["measured"] <= c["interval"][1]
    assert run.status()["status"] == "complete"
    html = (run.path / "report.html").read_text()
    assert html.count("<svg") >= 4
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html)  # nothing to fetch
    assert "<link" not in html
    assert "4/4 claims pass" in html and "1/1 checks pass" in html
    df = load_metrics(tmp_path)
    seeds = df[df.metric == "test_loss"].seed.unique()
    assert len(seeds) == 3
    assert df[df.metric == "test_loss"].step.max() == 1500
    assert list_runs(tmp_path).state.tolist() == ["complete"]
    assert main(["show", run.run_id, "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "seeds" in out and "construction_exact" in out  # the tables and the checks


SMALL = ["--set", "train.steps=2000", "--set", "train.batch_size=512", "--set",
         "eval.tasks=2000", "--set", "eval.ood_tasks=200", "--seeds", "2"]


def _cli(*args):
    return [sys.executable, "-m", "iclab.cli", *args]


@pytest.mark.slow  # 44 s; test_executors kills a run (driver and workers) in make test
def test_killed_run_keeps_its_metrics_and_resumes_to_the_same_numbers(tmp_path):
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    full_root, killed_root = tmp_path / "full", tmp_path / "killed"
    full = subprocess.run(_cli("run", "icl-gd", *SMALL, "--out", str(full_root)), env=env,
                          capture_output=True, text=True, check=False, timeout=600)
    assert full.returncode in (0, 1), full.stderr[-2000:]
    reference = _only_run(full_root)

    proc = subprocess.Popen(_cli("run", "icl-gd", *SMALL, "--out", str(killed_root)), env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:
        runs = list((killed_root / "icl-gd").glob("*/checkpoint.json")) if killed_root.exists() \
            else []
        if runs and json.loads(runs[0].read_text())["step"] >= 300:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    killed = _only_run(killed_root)
    step = killed.checkpoint_step()
    assert 300 <= step < 2000, "the run was not killed mid-way"
    assert killed.status()["status"] == "running"  # killed: nobody holds its lock
    assert iclab.store.state(killed.path) == "interrupted"
    assert not (killed.path / "claims.json").exists()
    kept = killed.metrics()
    assert kept.step.max() >= step and set(kept[kept.step <= step].step) == set(
        range(0, step + 1, 100))

    result = subprocess.run(_cli("run", "--resume", str(killed.path)), env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode in (0, 1), result.stderr
    assert killed.status()["status"] == "complete"
    a = reference.metrics().sort_values(["metric", "seed", "step"], ignore_index=True)
    b = killed.metrics().sort_values(["metric", "seed", "step"], ignore_index=True)
    assert a[["metric", "seed", "step"]].equals(b[["metric", "seed", "step"]])
    assert (a.value.to_numpy() == b.value.to_numpy()).all()
    assert [c["measured"] for c in reference.claims()] == [c["measured"] for c in killed.claims()]
    for name in ("seeds", "gd", "input_scale"):
        pd.testing.assert_frame_equal(load_run(reference.path).tables[name],
                                      load_run(killed.path).tables[name])


def test_report_rebuilds_the_run_folder_and_an_interrupted_run(tmp_path, capsys):
    """``iclab report`` re-evaluates the claims and re-renders the report from the folder
    alone: the same report.html and claims.json; a run stopped before its measurement gets
    a report of what it wrote, and no claims file."""
    small = ["--set", "train.steps=200", "--set", "eval.tasks=500", "--set",
             "eval.ood_tasks=50", "--seeds", "2", "--out", str(tmp_path)]
    main(["run", "icl-gd", *small])
    run = _only_run(tmp_path)
    timing = json.loads((run.path / "timing.json").read_text())  # where the time went
    assert set(timing["phases"]) == {"prepare_s", "train_s", "measure_s", "report_s"}
    assert timing["jobs"] and all(t["steps"] == 200 and t["members"] == 2
                                  for t in timing["jobs"].values())
    for t in timing["jobs"].values():
        assert t["compile_s"] > 0 and t["steps_s"] > 0 and t["other_s"] >= 0
        assert t["compile_s"] + t["steps_s"] + t["other_s"] == pytest.approx(t["fit_s"],
                                                                              abs=2e-3)
        assert t["steps_per_s"] == pytest.approx(200 / t["steps_s"], rel=1e-2)
        assert t["fit_s"] <= timing["phases"]["train_s"]
    before = {name: (run.path / name).read_bytes() for name in
              ("report.html", "claims.json", "checks.json", "figures/loss.svg")}
    for name in before:
        (run.path / name).unlink()
    assert main(["report", str(run.path)]) in (0, 1)
    assert {name: (run.path / name).read_bytes() for name in before} == before

    # the same run, stopped after training: no tables yet
    for part in ("tables", "figures"):
        shutil.rmtree(run.path / part)
    for name in ("claims.json", "checks.json", "report.html"):
        (run.path / name).unlink()
    run.set_status("interrupted")
    assert main(["report", run.run_id, "--out", str(tmp_path)]) == 1
    html = (run.path / "report.html").read_text()
    assert "This run is incomplete" in html and "not measured" in html
    assert html.count("<svg") == 2  # the training curves, from the metric history
    assert not (run.path / "claims.json").exists() and run.status()["status"] == "interrupted"
    assert main(["report", "no-such-run", "--out", str(tmp_path)]) == 2


@pytest.mark.slow
def test_full_mode_passes_every_claim(tmp_path):
    assert main(["run", "icl-gd", "--out", str(tmp_path)]) == 0


def test_weight_claims_only_for_linear_heads(key):
    """The construction is a linear head: a softmax, LayerNorm or MLP variant has no
    weights to compare with it, so its weight and interpolation claims are left out."""
    from iclab.models import LSATransformer, LSATransformerConfig
    from iclab.recipes.icl_gd import lsa_head

    linear = LSATransformer(LSATransformerConfig(dim=11, heads=2), key=key)
    assert lsa_head(linear) is linear.blocks[0].attn
    for variant in ({"softmax": True}, {"layer_norm": True}, {"mlp_width": 8}):
        assert lsa_head(LSATransformer(LSATransformerConfig(dim=11, **variant), key=key)) is None
    assert lsa_head(object()) is None


@pytest.mark.slow  # two compiled models end to end (~30 s); `make slow`
def test_standard_token_job_measures_its_loss_and_layer1_copying(tmp_path):
    code = main(["run", "icl-gd", "--quick", "--out", str(tmp_path), "--seeds", "1",
                 "--set", "train.steps=20", "--set", "train.eval_every=10",
                 "--set", "eval.tasks=256", "--set", "eval.ood_tasks=64",
                 "--set", "standard.enabled=true", "--set", "standard.train.steps=20",
                 "--set", "standard.train.eval_every=10",
                 "--set", "standard.train.batch_size=64", "--set", "standard.copy_tasks=8"])
    assert code in (0, 1)
    (run,) = (tmp_path / "icl-gd").iterdir()
    ids = [c["id"] for c in json.loads((run / "claims.json").read_text())]
    assert ids[-2:] == ["standard_tokens_gd", "layer1_copies"]
    standard = load_run(run).tables["standard"]
    assert list(standard.seed) == [0] and (standard.copy_ratio > 0).all()
    assert (standard.loss_ratio > 0).all()
    steps = load_metrics(run).query("metric == 'standard/copy_next'").step
    assert sorted(steps) == [0, 10, 20]
