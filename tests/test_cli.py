"""The command line: listing, bad input (exit 2, nothing left behind), show and runs."""

import pytest

from iclab.cli import main


def test_list_names_the_recipes(capsys):
    assert main(["list"]) == 0
    assert "icl-gd" in capsys.readouterr().out


@pytest.mark.parametrize("argv, fragment", [
    (["run", "no-such-recipe"], "icl-gd"),
    (["run", "icl-gd", "--set", "task.dd=1"], "unknown config key 'task.dd'"),
    (["run", "icl-gd", "--set", "task.d=0"], "task.d"),
    (["run", "icl-gd", "--set", "task.n_context=-3"], "task.n_context"),
    (["run", "icl-gd", "--set", "optim.lr=-1e-3"], "optim.lr"),
    (["run", "icl-gd", "--set", "task.d=ten"], "an integer"),
    (["run", "icl-gd", "--seeds", "0"], "--seeds"),
    (["run"], "recipe"),
    (["run", "--resume", "missing-run"], "no run"),
])
def test_bad_input_exits_2_with_one_line_and_no_run_folder(tmp_path, capsys, argv, fragment):
    out = tmp_path / "runs"
    assert main(argv + ["--out", str(out)]) == 2
    text = capsys.readouterr().err.strip()
    assert fragment in text
    assert text.startswith("error:") and len(text.splitlines()) == 1
    assert not out.exists()


def test_unknown_subcommand_or_flag_exits_2(capsys):
    with pytest.raises(SystemExit) as err:
        main(["run", "icl-gd", "--no-such-flag"])
    assert err.value.code == 2


def test_show_unknown_run(tmp_path, capsys):
    assert main(["show", "abc", "--out", str(tmp_path)]) == 2


def test_runs_on_an_empty_store(tmp_path, capsys):
    assert main(["runs", "--out", str(tmp_path)]) == 0
    assert "no runs" in capsys.readouterr().out


def test_resume_message_names_the_checkpoints():
    from iclab.cli._main import _resume_point

    assert _resume_point({}) == "from the start (no checkpoint yet)"
    assert _resume_point({"checkpoint": 300}) == "from step 300"
    assert _resume_point({"checkpoint-a": 200, "checkpoint-b": 200}) == \
        "from 2 checkpoints (step 200)"
    assert _resume_point({"checkpoint-a": 100, "checkpoint-b": 400, "checkpoint-c": 250}) == \
        "from 3 checkpoints (steps 100–400)"


def test_report_keeps_a_complete_run_written_before_tables(tmp_path, capsys):
    """A finished run folder without tables/ (the format before the recipe framework v2)
    is not re-rendered into an empty report: exit 2, one line, its report.html kept."""
    from iclab.store import RunDir

    run = RunDir.create(tmp_path, "icl-gd", {"recipe": "icl-gd", "mode": "quick",
                                             "config": {}})
    run.write_text("report.html", "<html>kept</html>")
    run.set_status("complete")
    assert main(["report", str(run.path)]) == 2
    assert "without tables" in capsys.readouterr().err
    assert (run.path / "report.html").read_text() == "<html>kept</html>"
    assert main(["report", "nothing-here", "--out", str(tmp_path)]) == 2
