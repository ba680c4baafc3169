# ticketflow: `make run` and `make test` set everything up on a fresh machine.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)
SAMPLE := data/sample/support_ticket_data.csv

.DEFAULT_GOAL := help
.PHONY: help run test test-fast lint bench java browser console vendor clean lock

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

# The console's browser tests drive Debian's chromium (Playwright's own browser download cannot be used here).
# Installed when missing and possible (root with apt-get); otherwise those tests skip and say why.
browser: ## install Debian's chromium for the console's browser tests, when missing and possible
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing chromium (Debian package) for the browser tests ..."; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || echo "chromium could not be installed: the browser tests will skip"; \
	  else echo "chromium is missing (install it with: sudo apt-get install -y chromium): the browser tests will skip"; fi; }

console: $(STAMP) java ## serve the local console on http://127.0.0.1:8080 (uploads run in it)
	$(VENV)/bin/ticketflow console

test: $(STAMP) java browser ## run the whole test suite, then the definition's scenarios through the CLI
	$(VENV)/bin/pytest
	$(VENV)/bin/ticketflow test-definition --strict --min-coverage 100

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

# The console's JavaScript, from the npm registry at these versions (committed under ticketflow/console/static/vendor).
VENDOR := ticketflow/console/static/vendor
vendor: ## fetch the console's vendored JavaScript again (needs npm)
	rm -rf build/vendor && mkdir -p build/vendor
	cd build/vendor && npm pack --silent @viz-js/viz@3.31.0 htmx.org@2.0.7 chart.js@4.5.1 >/dev/null \
	  && for f in *.tgz; do mkdir -p $${f%.tgz} && tar xzf $$f -C $${f%.tgz}; done
	cp build/vendor/viz-js-viz-3.31.0/package/dist/viz-global.js build/vendor/htmx.org-2.0.7/package/dist/htmx.min.js \
	  build/vendor/chart.js-4.5.1/package/dist/chart.umd.min.js $(VENDOR)/
	cd $(VENDOR) && sha256sum viz-global.js htmx.min.js chart.umd.min.js > SHA256SUMS

clean: ## remove local state (not the venv)
	rm -rf .ticketflow cdk.out spark-warehouse
