# Two entry points for a fresh machine: `make demo` and `make test`.
# Both bootstrap .venv when it is absent or setup.cfg changed, and are idempotent.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.stdsr-installed

.PHONY: venv demo test clean-demo

$(STAMP): setup.cfg pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(PY) -m pip install -q -e '.[test]'
	touch $(STAMP)

venv: $(STAMP)

demo: $(STAMP)
	$(PY) scripts/run_demo.py

test: $(STAMP)
	$(PY) -m pytest -q

clean-demo:
	rm -rf datasets/demo experiments/*demo* results/demo
