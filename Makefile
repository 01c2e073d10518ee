# Two commands matter: `make demo` (the main job on the embedded default) and `make test`.
# Both install what they need first (uv from PyPI if missing, then the locked environment).
SHELL := /bin/bash
UV ?= $(shell command -v uv 2>/dev/null || echo "$(HOME)/.local/bin/uv")

.PHONY: install demo test lint typecheck check clean

$(UV):
	python3 -m pip install --quiet --user uv || python3 -m pip install --quiet uv

install: $(UV)
	$(UV) sync --frozen

demo: install
	$(UV) run --frozen podpod-scraping demo

test: install
	$(UV) run --frozen pytest

lint: install
	$(UV) run --frozen ruff check .
	$(UV) run --frozen ruff format --check .

typecheck: install
	$(UV) run --frozen pyright

check: lint typecheck test

clean:
	rm -rf .demo
