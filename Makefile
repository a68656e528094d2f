# Two commands do all set-up on a fresh machine: `make run` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip --disable-pip-version-check -q

.PHONY: run test lint compile bench bench-fleet bench-policy bench-push bench-fleet-instances bench-metrics bench-console soak clean

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV)

# Re-install only when the project's dependencies change.
$(VENV)/.run-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e '.[flink]'
	touch $@

$(VENV)/.dev-installed: pyproject.toml | $(VENV)/bin/python
	$(PIP) install -e '.[flink,dev]'
	touch $(VENV)/.run-installed $@

# The console's browser libraries (htmx, CodeMirror) come from the npm registry, never from the repository.
web/node_modules/.installed: web/package.json web/package-lock.json
	cd web && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# Browser tests drive Debian's Chromium (no browser download at run time).
/usr/bin/chromium:
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium) || \
	  (echo "could not install chromium: install Debian's 'chromium' package" && exit 1)

# LDAP logins are tested against a real OpenLDAP server (Debian's slapd) that the tests start themselves;
# the package's own service is not used (no debconf questions, no daemon started by the install).
/usr/sbin/slapd:
	(apt-get update -qq && DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends slapd ldap-utils) || \
	  (echo "could not install slapd: install Debian's 'slapd' and 'ldap-utils' packages" && exit 1)

# Byte-compile our sources (only what changed): a start must not compile them every time, even where
# PYTHONDONTWRITEBYTECODE is set; it halves the time to the first answer.
compile:
	@$(PY) -m compileall -q src/streampilot

run: $(VENV)/.run-installed web/node_modules/.installed compile
	$(VENV)/bin/streampilot server $(ARGS)

test: $(VENV)/.dev-installed web/node_modules/.installed /usr/bin/chromium /usr/sbin/slapd
	$(PY) -m ruff check src tests bench
	$(PY) -m mypy
	$(PY) -m pytest $(PYTEST_ARGS)

bench: $(VENV)/.dev-installed compile
	$(PY) -m bench.run

bench-fleet: $(VENV)/.dev-installed
	$(PY) -m bench.fleet

bench-policy: $(VENV)/.dev-installed
	$(PY) -m bench.policy

bench-fleet-instances: $(VENV)/.dev-installed
	$(PY) -m bench.fleet_instances $(ARGS)

bench-metrics: $(VENV)/.dev-installed
	$(PY) -m bench.job_metrics $(ARGS)

bench-push: $(VENV)/.dev-installed
	$(PY) -m bench.push $(ARGS)

bench-console: $(VENV)/.dev-installed
	$(PY) -m bench.console

soak: $(VENV)/.dev-installed web/node_modules/.installed compile
	$(PY) -m bench.soak $(ARGS)

clean:
	rm -rf $(VENV) .streampilot .pytest_cache .mypy_cache
