# Sendout: `make test` and (later) `make run` are all a newcomer needs.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
export UV_COMPILE_BYTECODE := 1

# uv from PATH, else as a module of python3; bootstrapped with pip when neither exists.
UV = $(shell command -v uv >/dev/null 2>&1 && echo uv || echo python3 -m uv)

.PHONY: setup run test lint format bench clean

setup:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet uv
	$(UV) sync --locked

# the demo workspace is built once (data/sendout.duckdb); `make run` again reuses it
run: setup
	@test -f data/sendout.duckdb || $(UV) run --locked sendout demo
	$(UV) run --locked sendout up

lint: setup
	$(UV) run --locked ruff check .
	$(UV) run --locked ruff format --check .

format: setup
	$(UV) run --locked ruff format .
	$(UV) run --locked ruff check --fix .

test: lint
	$(UV) run --locked pytest

bench: setup
	$(UV) run --locked python bench/ingest.py --events 2000000
	$(UV) run --locked python bench/status.py --events 5000000

clean:
	rm -rf .venv .pytest_cache .ruff_cache
