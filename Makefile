# The two commands of the README. Both set everything up from scratch in .venv/ (Python 3.11) when needed.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= outputs/demo

.PHONY: setup demo test bench clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade --quiet "pip>=24"
	$(PY) -m pip install --quiet -e ".[all,test]"
	@touch $@

demo: setup
	$(VENV)/bin/amodal3d demo --out $(DEMO_OUT)

test: setup
	$(PY) -m pytest

bench: setup
	$(PY) benchmarks/bench_scenes.py

clean:
	rm -rf $(VENV) outputs *.egg-info
