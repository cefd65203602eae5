# Sendout: `make test` and (later) `make run` are all a newcomer needs.
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
export UV_COMPILE_BYTECODE := 1

# uv from PATH, else as a module of python3; bootstrapped with pip when neither exists.
UV = $(shell command -v uv >/dev/null 2>&1 && echo uv || echo python3 -m uv)

.PHONY: setup run test test-deps lint format bench clean

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

# what the tests need from Debian: Chromium for the browser tests, openssl for the TLS test,
# setpriv (util-linux) to take root's read-anything rights away in the unreadable-file test,
# Postfix and Dovecot as real mail servers (tests/mail_servers.py); installed when missing and we
# are root, else the one command to run is said. Postfix is preseeded "No configuration" so the
# package configures and starts no system daemon: the tests run instances of their own.
test-deps:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	command -v openssl >/dev/null 2>&1 || missing="$$missing openssl"; \
	command -v setpriv >/dev/null 2>&1 || missing="$$missing util-linux"; \
	[ -x /usr/sbin/postfix ] || missing="$$missing postfix"; \
	[ -x /usr/sbin/dovecot ] || missing="$$missing dovecot-imapd"; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = 0 ]; then \
			echo "Installing$$missing from Debian for the tests ..."; \
			echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
		else \
			echo "The tests need$$missing: run 'echo \"postfix postfix/main_mailer_type select No configuration\" | sudo debconf-set-selections && sudo apt-get install -y$$missing', then make test again." >&2; \
			exit 1; \
		fi; \
	fi

test: lint test-deps
	$(UV) run --locked pytest

bench: setup
	$(UV) run --locked python bench/ingest.py --events 2000000
	$(UV) run --locked python bench/status.py --events 5000000
	$(UV) run --locked python bench/bounces.py --messages 20000

clean:
	rm -rf .venv .pytest_cache .ruff_cache
