# SEI Administration: developer commands. `make run` and `make test` need only Python 3.11.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PORT ?= 8000
# The sandbox's ports on 127.0.0.1: the Entra ID stand-in (HTTPS), the Exchange stand-in (SMTP)
# and the Microsoft Graph stand-in (HTTPS).
SANDBOX_ENTRA_PORT ?= 8443
SANDBOX_SMTP_PORT ?= 8587
SANDBOX_GRAPH_PORT ?= 8444
SANDBOX_ARGS ?=
STAMP := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: install run run-with-sandbox sandbox manage test bench soak screenshots lint format clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

# Web, worker and beat together on embedded defaults (SQLite and a file-system broker
# under var/); DATABASE_URL and REDIS_URL switch to PostgreSQL and Redis.
run: export DJANGO_DEBUG ?= true
run: export SEI_CONSOLE_URL ?= http://127.0.0.1:$(PORT)
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py ensure_admin --url http://127.0.0.1:$(PORT)
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/honcho --procfile Procfile start --port $(PORT)

# Any manage.py command against the same development setup as `make run`, e.g.
#   make manage ARGS="sendtestemail someone@example.com"
manage: export DJANGO_DEBUG ?= true
manage: export SEI_CONSOLE_URL ?= http://127.0.0.1:$(PORT)
manage: install
	$(PY) manage.py $(ARGS)

# Local Entra ID, Exchange Online and Microsoft Graph stand-ins with a ready tenant (see README);
# SANDBOX_ARGS passes more options, e.g. SANDBOX_ARGS="--graph-throttle 3 --graph-retry-after 30".
sandbox: install
	$(PY) -m tests.sandbox --folder var/sandbox --entra-port $(SANDBOX_ENTRA_PORT) --smtp-port $(SANDBOX_SMTP_PORT) --graph-port $(SANDBOX_GRAPH_PORT) $(SANDBOX_ARGS)

# The console, trusting the sandbox's CA and allowing its token endpoint.
run-with-sandbox: export SMTP_OAUTH_AUTHORITY_HOSTS ?= 127.0.0.1:$(SANDBOX_ENTRA_PORT)
run-with-sandbox: export SMTP_GRAPH_HOSTS ?= 127.0.0.1:$(SANDBOX_GRAPH_PORT)
run-with-sandbox: export SSL_CERT_FILE = $(CURDIR)/var/sandbox/ca-bundle.pem
run-with-sandbox: export REQUESTS_CA_BUNDLE = $(CURDIR)/var/sandbox/ca-bundle.pem
run-with-sandbox: run

test: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m pytest $(PYTEST_ARGS)

# Ratios against baselines run side by side, on loopback against the sandbox; saved under var/bench.
bench: install
	$(PY) -m bench

# The outbox under faults: workers SIGKILLed, the broker cut once, counted at the receiving
# side (README); SOAK_MESSAGES, SOAK_WORKERS, SOAK_KILL_AFTER_MESSAGES, SOAK_BROKER_CUT. Saved under var/soak.
soak: install
	$(PY) -m soak

# The README's pictures, taken by a browser test against the sandbox.
screenshots: install
	SEI_SCREENSHOTS_DIR=$(CURDIR)/docs/screenshots $(PY) -m pytest -q tests/test_browser_layout.py -k readme_pictures

lint: install
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

format: install
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

clean:
	rm -rf $(VENV) var staticfiles .pytest_cache .ruff_cache
