# Two entry points for a fresh machine: `make serve` and `make test`.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: serve test install index bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

# Index the bundled samples/ when no index exists yet, then serve.
serve: $(STAMP)
	@$(VENV)/bin/search-service stats >/dev/null 2>&1 || $(VENV)/bin/search-service index --rebuild samples/
	$(VENV)/bin/search-service serve

index: $(STAMP)
	$(VENV)/bin/search-service index --rebuild samples/

test: $(STAMP)
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) -m pip install --quiet -e '.[test,bench]'
	$(PY) -m bench.indexing
	$(PY) -m bench.search

clean:
	rm -rf $(VENV) test-artifacts .pytest_cache
