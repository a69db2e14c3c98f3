# Two entry points for a fresh machine: `make demo` and `make test` (`make test-quick` while developing).
# Both bootstrap .venv when it is absent or setup.cfg changed, and are idempotent.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stdsr-installed

.PHONY: venv demo test test-quick clean-demo

# --no-cache-dir: a CI machine once ran out of disk (ENOSPC) in this step; the torch build alone is about 5.5 GB in
# the venv, so pip keeps no second copy of what it downloads in its cache
$(STAMP): setup.cfg setup.py pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --no-cache-dir torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q --no-cache-dir -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/run_demo.py

test: $(STAMP)
	$(PY) -m pytest -q

# every package, without the end-to-end runs marked `slow` (setup.cfg); `make test` stays the full suite CI runs
test-quick: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

clean-demo:
	rm -rf datasets/demo experiments/*demo* results/demo
