# Two entry points for a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: serve test install index bench clean

# The runtime only: what `make serve` needs (no test tools, no Playwright).
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $(STAMP)

# The test extras on top (pytest, Playwright's driver, hypothesis, ...): for `make test`.
$(TEST_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(TEST_STAMP)

install: $(TEST_STAMP)

# Index the bundled samples/ when no index exists yet, then serve.
# The port: `make serve PORT=9000` (or SEARCH_SERVICE_PORT=9000 make serve, or config.toml).
serve: $(STAMP)
	@$(VENV)/bin/search-service stats >/dev/null 2>&1 || $(VENV)/bin/search-service index --rebuild samples/
	$(VENV)/bin/search-service serve $(if $(PORT),--port $(PORT))

index: $(STAMP)
	$(VENV)/bin/search-service index --rebuild samples/

test: $(TEST_STAMP)
	$(PY) -m pytest

bench: $(TEST_STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) -m bench.indexing
	$(PY) -m bench.search

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache
