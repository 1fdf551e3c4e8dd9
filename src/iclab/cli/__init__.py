"""The ``iclab`` command line: list, run, runs, show."""

from iclab.cli._main import main as main
