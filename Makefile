# Two commands matter: `make demo` (the main job on the embedded default) and `make test`.
# Both install what they need first (uv from PyPI if missing, then the locked environment).
SHELL := /bin/bash
PYTHON ?= python3
UV := $(PYTHON) -m uv

.PHONY: install demo ui test lint typecheck check clean

install:
	@$(UV) --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet uv
	$(UV) sync --frozen --compile-bytecode

demo: install
	$(UV) run --frozen podpod-scraping demo $(ARGS)

# The demo site and `dagster dev` on the same embedded default; Ctrl-C stops both.
ui: install
	$(UV) run --frozen podpod-scraping ui $(ARGS)

test: install
	$(UV) run --frozen pytest

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .
	$(UV) run --frozen hadolint Dockerfile   # the Dockerfile linter, from the dev dependencies

typecheck: install
	$(UV) run --frozen pyright

check: lint typecheck test

clean:
	rm -rf .demo
