# Two commands from a fresh machine with only Python 3.11:
#   make run   create .venv, install iclab, run the headline recipe (icl-gd --quick)
#   make test  create .venv, install iclab with test deps, lint and run the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test venv lint bench slow clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

run: venv
	$(BIN)/iclab run icl-gd --quick

test: venv
	$(BIN)/ruff check src tests benchmarks examples
	$(BIN)/python -m pytest -q -n 2

slow: venv
	$(BIN)/python -m pytest -q -m slow

bench: venv
	$(BIN)/python benchmarks/bench_icl_gd.py
	$(BIN)/python benchmarks/bench_mesa.py
	$(BIN)/python benchmarks/bench_disentangled.py
	$(BIN)/python benchmarks/bench_concurrent.py

clean:
	rm -rf $(VENV) runs .pytest_cache
