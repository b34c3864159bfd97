# `make demo` and `make test` work on a fresh machine: each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export MUJOCO_GL ?= egl

.PHONY: demo test test-fast test-random lint bench clean venv

venv: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	# torch first: a pinned CPU build (a bare `torch` would pull a multi-GB CUDA build).
	$(PY) -m pip install -q --upgrade pip
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install -q "torch==2.13.0"
	$(PY) -m pip install -q -e ".[test]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/cosmos-sim demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

# Everything but the tests marked `slow` (those that train models or spawn processes).
test-fast: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -m "not slow"

# The whole suite in a random order (every test shuffled; the seed is printed: --random-order-seed=N reruns it).
test-random: $(STAMP)
	$(PY) -m pytest -p random_order --random-order-bucket=global

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) benchmarks/policy_ladder.py
	$(PY) benchmarks/physics_throughput.py

clean:
	rm -rf $(VENV) outputs demo_out
