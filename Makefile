# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test lint bench bench-fleet bench-policy clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when the project's dependencies change.
$(VENV)/.run-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e '.[flink]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e '.[flink,dev]'
	touch $(VENV)/.run-installed $@

run: $(VENV)/.run-installed
	$(VENV)/bin/streampilot server $(ARGS)

test: $(VENV)/.dev-installed
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev-installed
	$(PY) -m bench.run

bench-fleet: $(VENV)/.dev-installed
	$(PY) -m bench.fleet

bench-policy: $(VENV)/.dev-installed
	$(PY) -m bench.policy

clean:
	rm -rf $(VENV) .streampilot .pytest_cache .mypy_cache
