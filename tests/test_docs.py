"""The docs site builds offline with no warning (mkdocs --strict), and its API reference
renders the public API from the docstrings."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_docs_site_builds_strictly_and_renders_the_api(tmp_path):
    site = tmp_path / "site"
    result = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q",
                             "-f", str(ROOT / "mkdocs.yml"), "-d", str(site)],
                            capture_output=True, text=True, timeout=300, cwd=ROOT,
                            env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "WARNING" not in result.stderr, result.stderr[-3000:]
    pages = {p.relative_to(site).as_posix() for p in site.rglob("*.html")}
    assert {"index.html", "scale-out.html", "api/tasks.html", "api/framework.html",
            "results/icl-gd.html"} <= pages
    api = (site / "api" / "framework.html").read_text()
    for name in ("Executor", "Recipe", "train_shard", "Claim"):
        assert f'id="iclab.framework.{name}"' in api, name
    tasks = (site / "api" / "tasks.html").read_text()
    assert 'id="iclab.tasks.LinearRegressionTask"' in tasks
    assert "fonts.googleapis" not in (site / "index.html").read_text()  # reads offline
