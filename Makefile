# Two entry points for a fresh machine: `make serve` and `make test`.
# Without make: README.md ("Without make") lists the same steps as plain commands.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test
# What the browser tests drive, and who may install what is missing (see test-machine).
CHROMIUM ?= /usr/bin/chromium
IS_ROOT ?= $(shell [ "$$(id -u)" = 0 ] && echo yes)
APT_GET ?= apt-get

.PHONY: serve test test-machine python-check lint lock install index bench clean

# Stops, with the Debian packages to install, before a virtualenv is half made: Python older than
# 3.11, or a Python that cannot make virtualenvs (Debian's python3 without python3-venv).
python-check:
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || { \
	    echo "make: search_service needs Python 3.11 or newer; '$(PYTHON)' is $$($(PYTHON) --version 2>&1 || echo 'not installed')." >&2; \
	    echo "make: on Debian 12 or newer: sudo apt-get install -y python3 python3-venv   (or: make PYTHON=python3.12 ...)" >&2; \
	    exit 1; }
	@$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || { \
	    echo "make: '$(PYTHON)' cannot create a virtualenv (its venv/ensurepip modules are missing). Install them, then run make again:" >&2; \
	    echo "    sudo apt-get install -y python3-venv" >&2; \
	    exit 1; }

# The runtime only: what `make serve` needs (no test tools, no Playwright).
$(STAMP): pyproject.toml requirements.lock
	@$(MAKE) --no-print-directory python-check
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements.lock -e .
	touch $(STAMP)

# The test extras on top (pytest, Playwright's driver, hypothesis, ...): for `make test`.
$(TEST_STAMP): $(STAMP) requirements.lock
	$(PY) -m pip install --quiet -c requirements.lock -e '.[test,lint]'
	touch $(TEST_STAMP)

install: $(TEST_STAMP)

# Index the bundled samples/ when no index exists yet, then serve.
# The port: `make serve PORT=9000` (or SEARCH_SERVICE_PORT=9000 make serve, or config.toml).
serve: $(STAMP)
	@$(VENV)/bin/search-service stats >/dev/null 2>&1 || $(VENV)/bin/search-service index --rebuild samples/
	$(VENV)/bin/search-service serve $(if $(PORT),--port $(PORT))

index: $(STAMP)
	$(VENV)/bin/search-service index --rebuild samples/

# The machine the whole suite needs: Debian's Chromium for the browser tests and a CJK font for their
# screenshots (required: installed when run as root, as CI is; otherwise the run stops at once with the
# command to type, rather than pass with the browser tests skipped), and nginx for
# tests/test_deploy_nginx.py (installed as root; without it that test is skipped and says so).
test-machine:
	@missing=""; optional=""; \
	[ -x "$(CHROMIUM)" ] || missing="$$missing chromium"; \
	fc-list :lang=zh family 2>/dev/null | grep -q . || missing="$$missing fonts-wqy-microhei"; \
	PATH="$$PATH:/usr/sbin:/sbin" command -v nginx >/dev/null 2>&1 || optional="$$optional nginx"; \
	if [ -n "$$missing$$optional" ] && [ "$(IS_ROOT)" = yes ] && command -v $(APT_GET) >/dev/null 2>&1; then \
	    echo "make test: installing$$missing$$optional (apt-get)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    $(APT_GET) install -y -qq $$missing$$optional >/dev/null 2>&1 || { \
	        $(APT_GET) update -qq && $(APT_GET) install -y -qq $$missing$$optional >/dev/null; } || exit 1; \
	    missing=""; \
	    [ -x "$(CHROMIUM)" ] || missing="$$missing chromium"; \
	fi; \
	if [ -n "$$missing" ]; then \
	    echo "make test: the browser tests need$$missing (Debian packages). Install, then run make test again:" >&2; \
	    echo "    sudo apt-get install -y$$missing" >&2; \
	    echo "(run as root, make test installs them itself; the fast inner loop needs none:" >&2; \
	    echo "    $(PY) -m pytest -m \"not processes and not browser\")" >&2; \
	    exit 1; \
	fi

# Every core (pytest-xdist); tests that start processes share one worker, browser tests another
# (see tests/conftest.py). --require-browser: a browser that cannot start fails the run, never skips it.
# A fast inner loop: `$(PY) -m pytest -m "not processes and not browser"`.
test: test-machine $(TEST_STAMP)
	$(PY) -m pytest -n auto --dist loadgroup --require-browser

# ruff (style, imports, bugbear, pyupgrade, Flask kept inside web/) and mypy over search_service/.
lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check search_service tests bench
	$(VENV)/bin/mypy

# Rewrite requirements.lock from the current .venv (after changing dependencies in pyproject.toml).
lock: $(TEST_STAMP)
	{ sed -n '1,3p' requirements.lock; $(PY) -m pip freeze --exclude-editable | grep -v '^search.service'; } > requirements.lock.new
	mv requirements.lock.new requirements.lock

bench: $(TEST_STAMP)
	$(PY) -m pip install --quiet -c requirements.lock -e '.[test,bench]'
	$(PY) -m bench.indexing
	$(PY) -m bench.speed

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache
