# Two entry points for a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: serve test lint lock install index bench clean

# The runtime only: what `make serve` needs (no test tools, no Playwright).
$(STAMP): pyproject.toml requirements.lock
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

# Every core (pytest-xdist); tests that start processes share one worker, browser tests another
# (see tests/conftest.py). A fast inner loop: `$(PY) -m pytest -m "not processes and not browser"`.
test: $(TEST_STAMP)
	$(PY) -m pytest -n auto --dist loadgroup

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
	$(PY) -m bench.search

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache
