# `make demo` and `make test` work on a fresh machine: each creates .venv and installs what it needs.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
export MUJOCO_GL ?= egl

.PHONY: demo test test-2threads test-fast test-random lint bench clean venv

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

# The suite again with two torch threads per test (another reduction order than `make test`'s one): a test
# that leans on one exact floating-point path fails here before it fails on another machine.
test-2threads: $(STAMP)
	COSMOS_TEST_THREADS=2 $(PY) -m pytest

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

# MuJoCo 3.x, the low end of the supported range, in a second venv: mujoco 3.3.0 (what Meta-World 3.1.1 pins,
# installed by the `metaworld` extra) with the physics, env, twin and camera tests and the Meta-World test, leaving
# out `slow`. Only what those tests import is installed (no ray, minari, tensorboard: the install stays short).
MJ3_VERSION := 3.3.0
MJ3_VENV := .venv-mj33
MJ3_PY := $(MJ3_VENV)/bin/python
MJ3_STAMP := $(MJ3_VENV)/.installed-$(MJ3_VERSION)-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)
MJ3_TESTS := tests/envs tests/twins tests/test_camera.py tests/policies/test_scripted.py tests/newworld

venv-mujoco3: $(MJ3_STAMP)

$(MJ3_STAMP): pyproject.toml
	test -x $(MJ3_PY) || $(PYTHON) -m venv $(MJ3_VENV)
	$(MJ3_PY) -m pip install -q --upgrade pip
	$(MJ3_PY) -c "import torch" 2>/dev/null || $(MJ3_PY) -m pip install -q "torch==2.13.0"
	$(MJ3_PY) -m pip install -q -e ".[metaworld]" "mujoco==$(MJ3_VERSION)" "pytest>=8" "stable-baselines3>=2.3"
	$(MJ3_PY) -c "import mujoco; assert mujoco.__version__ == '$(MJ3_VERSION)', mujoco.__version__"
	rm -f $(MJ3_VENV)/.installed-*
	touch $(MJ3_STAMP)

.PHONY: test-mujoco3 venv-mujoco3 clean-mujoco3

test-mujoco3: $(MJ3_STAMP)
	$(MJ3_PY) -m pytest -m "not slow" $(MJ3_TESTS)

clean: clean-mujoco3
clean-mujoco3:
	rm -rf $(MJ3_VENV)

clean:
	rm -rf $(VENV) outputs demo_out
