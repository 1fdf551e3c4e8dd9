"""The ``iclab`` command line: list, config, run, report, runs, show."""

from iclab.cli._main import main as main
