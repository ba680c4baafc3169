# ticketflow: `make run` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
SAMPLE := data/sample/support_ticket_data.csv

.DEFAULT_GOAL := help
.PHONY: help run test test-fast lint bench java clean lock

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  %-12s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[glue,infra,dev]'
	@rm -f $(VENV)/.installed-* && touch $@

java: ## check that Java (needed by PySpark) is installed
	@command -v java >/dev/null 2>&1 || { echo "PySpark needs Java 17, which is not installed. Install it with:"; \
	  echo "  sudo apt-get install -y openjdk-17-jre-headless"; exit 1; }

run: $(STAMP) java ## run the pipeline on the bundled sample (the embedded default)
	$(VENV)/bin/ticketflow run $(SAMPLE)

test: $(STAMP) java ## run the whole test suite, then the definition's scenarios through the CLI
	$(VENV)/bin/pytest
	$(VENV)/bin/ticketflow test-definition

lint: $(STAMP) ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy ticketcore ticketflow glue lambdas infra

bench: $(STAMP) java ## benchmarks; results in bench/RESULTS.md
	$(PY) -m bench.run

# The Lambdas' dependencies, resolved for their runtime (Python 3.12, x86_64 Linux) with every file's SHA-256:
# the validate image and the dependency layer install with --require-hashes. `make test` fails when a lock no
# longer matches its requirements.txt (tests/unit/test_supply_chain.py); this target rewrites both.
LOCKED := lambdas/validate/requirements infra/layers/deps/requirements
lock: $(STAMP) ## re-resolve the Lambdas' hash-locked dependencies (needs PyPI)
	$(PY) -m pip install --quiet uv==0.13.8
	for req in $(LOCKED); do \
	  $(VENV)/bin/uv pip compile $$req.txt --generate-hashes --python-version 3.12 \
	    --python-platform x86_64-manylinux_2_28 --no-emit-index-url --custom-compile-command "make lock" \
	    --quiet -o $$req.lock || exit 1; \
	done

clean: ## remove local state (not the venv)
	rm -rf .ticketflow cdk.out spark-warehouse
