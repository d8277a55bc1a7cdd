# Two commands do all set-up on a fresh machine:
#   make bench [TASK=apnea_ecg] [ARGS="data.root=/data/apnea-ecg trainer.max_epochs=25"]
#   make test
VENV ?= .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
TASK ?=
ARGS ?=
PYTEST_ARGS ?=
CODE := sleepbench tests benchmarks

.PHONY: install bench test lint format leaderboard clean

$(VENV)/.installed: pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(VENV)/bin/python -m pip install -q --disable-pip-version-check uv
	$(UV) pip install --python $(PY) -c constraints.txt -e ".[dev]"
	touch $@

install: $(VENV)/.installed

bench: install
	$(VENV)/bin/sleepbench bench $(if $(TASK),--task $(TASK)) $(ARGS)

test: install lint
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check $(CODE)
	$(VENV)/bin/ruff format --check $(CODE)

format: install
	$(VENV)/bin/ruff check --fix $(CODE)
	$(VENV)/bin/ruff format $(CODE)

leaderboard: install
	$(VENV)/bin/sleepbench leaderboard

clean:
	rm -rf runs results .pytest_cache
