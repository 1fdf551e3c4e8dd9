"""Reports in a real browser: a run's report, a sweep's report and the index page, opened
offline from disk in Debian's headless Chromium (driven by Playwright with that
executable; no browser is downloaded). Every page loads with no console error and no
request leaving the disk, has unique element ids, renders every figure, shows its claims'
pass/fail, and every link and contents entry resolves. Screenshots are saved as test
artefacts (``$ICLAB_TEST_ARTIFACTS``, default ``test-artifacts/``).

Chromium comes from Debian's ``chromium`` package, which ``.ci/run`` (through ``make
test``) installs; without it this test fails and says so.
"""

import os
import shutil
from pathlib import Path
from urllib.parse import unquote, urlparse

import pytest

import iclab
from executor_recipe import RECIPE
from iclab.framework._index import write_index
from iclab.framework._sweep import Sweep, run_sweep

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
ARTEFACTS = Path(os.environ.get("ICLAB_TEST_ARTIFACTS",
                                Path(__file__).resolve().parents[1] / "test-artifacts"))


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).exists(), (
        "the browser test needs Debian's chromium: apt-get install chromium (.ci/run "
        "installs it through make test)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


def _open(browser, path: Path, shot: str):
    """The page at ``path``, its console errors and the requests that left the disk."""
    page = browser.new_page(viewport={"width": 1200, "height": 900})
    errors, outside = [], []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))

    def route(r):
        if r.request.url.startswith("file://"):
            r.continue_()
        else:
            outside.append(r.request.url)
            r.abort()

    page.route("**/*", route)
    page.goto(path.as_uri())
    page.wait_for_load_state("load")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTEFACTS / f"{shot}.png"), full_page=True)
    return page, errors, outside


def _valid(page, path: Path) -> None:
    """Unique ids; every figure drawn at a real size; every local link and anchor found."""
    ids = page.eval_on_selector_all("[id]", "els => els.map(e => e.id)")
    assert len(ids) == len(set(ids)), "element ids repeat"
    sizes = page.eval_on_selector_all(
        "svg", "els => els.map(e => [e.getBoundingClientRect().width,"
               " e.getBoundingClientRect().height, e.querySelectorAll('path, text, use')"
               ".length])")
    assert all(w > 100 and h > 100 and n > 10 for w, h, n in sizes), sizes
    for href in page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)"):
        url = urlparse(href)
        if url.scheme == "file" and unquote(url.path) != str(path):
            assert Path(unquote(url.path)).exists(), href
        if url.fragment:
            assert page.locator(f"[id='{url.fragment}']").count() == 1, href


def test_reports_and_the_index_in_headless_chromium(browser, tmp_path):
    root = tmp_path / "runs"
    sweep_id, states = run_sweep(Sweep("executor_recipe:RECIPE", grid=("train.steps=20,40",),
                                       base=("train.seeds=1",)), root)
    assert states == ["complete", "complete"]
    index = write_index(root)
    run = iclab.load_run(sorted((root / RECIPE.name).iterdir())[0])

    report = run.path / "report.html"
    page, errors, outside = _open(browser, report, "run-report")
    assert errors == [] and outside == []
    _valid(page, report)
    assert page.locator("svg").count() == 2
    assert page.locator("td.pass").count() == len(run.claims) == 1
    assert "jax" in page.locator("p.meta").all_inner_texts()[1]  # versions in the header
    assert page.locator("nav.toc a").count() >= 5

    sweep = root / "_sweeps" / f"{sweep_id}.html"
    page, errors, outside = _open(browser, sweep, "sweep-report")
    assert errors == [] and outside == []
    _valid(page, sweep)
    assert page.locator("table tr").count() == 3 and page.locator("svg").count() >= 2

    page, errors, outside = _open(browser, index, "index")
    assert errors == [] and outside == []
    _valid(page, index)
    assert page.locator("table.runs tr").count() == 1 + 2  # header and two runs
    compare = page.locator("table.compare")
    assert compare.count() == 1 and compare.locator(".pass").count() == 2
    assert page.locator(f"a[href='_sweeps/{sweep_id}.html']").count() == 1
