# Two commands from a fresh machine with only Python 3.11:
#   make run   create .venv, install iclab, run the headline recipe (icl-gd --quick)
#   make test  create .venv, install iclab with test deps, lint and run the tests
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: run test venv lint bench bench-all bench-quick slow docs clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $@

venv: $(VENV)/.installed

run: venv
	$(BIN)/iclab run icl-gd --quick

# make test compiles with XLA's backend optimisation off: its tests are dominated by
# compilation (511 tests: 441 s against 575 s on 2 cores, all passing either way; 531 tests
# with --dist worksteal: 579 s on a slower day of the same VM); the
# claims of `make slow` and the benchmarks run with XLA's default optimisation.
test: venv
	$(BIN)/ruff check src tests benchmarks examples
	@command -v chromium >/dev/null || echo "note: the browser test needs Debian's chromium (apt-get install chromium; .ci/run installs it)"
	XLA_FLAGS="--xla_backend_optimization_level=0 $$XLA_FLAGS" $(BIN)/python -m pytest -q -n 2 --dist worksteal

slow: venv
	$(BIN)/python -m pytest -q -m slow

# make bench: the training steps against the machine's measured peak (issue "Performance":
# under 10 minutes on 2 cores); make bench-all adds the unfused piece timings, a deeper
# compile sweep and the throughput of sweeps, packing and parallel runs (about 30 minutes).
bench: venv
	$(BIN)/python benchmarks/bench_icl_gd.py
	$(BIN)/python benchmarks/bench_mesa.py
	$(BIN)/python benchmarks/bench_disentangled.py
	$(BIN)/python benchmarks/bench_compile.py --layers 4 8
	$(BIN)/python benchmarks/bench_trace.py
	$(BIN)/python benchmarks/bench_lsa_layout.py

bench-all: bench
	$(BIN)/python benchmarks/bench_profile.py
	$(BIN)/python benchmarks/bench_compile.py --layers 16
	$(BIN)/python benchmarks/bench_concurrent.py
	$(BIN)/python benchmarks/bench_sweep.py
	$(BIN)/python benchmarks/bench_pack.py

# the eight in-context quick modes one after the other, and where each one's time went
# (issue "Performance": at most 20 minutes together; 90 minutes on a slow 2-core VM)
bench-quick: venv
	$(BIN)/python benchmarks/bench_quick.py

# the docs site (mkdocs-material + mkdocstrings, the API from the docstrings), offline,
# strict: any warning fails the build
docs: venv
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict
	@echo "site: build/site/index.html"

clean:
	rm -rf $(VENV) runs .pytest_cache
