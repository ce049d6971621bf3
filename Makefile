# The README's commands. Everything installs itself (scripts/bootstrap.sh).
SHELL := /bin/bash
PY := .venv/bin/python

.PHONY: setup dev dev-check test test-fast lint audit messages contracts contracts-check check-deploy bench bench-backstage bench-reconciliation prod-check load

setup:
	@bash scripts/bootstrap.sh

## Run the whole system locally: anvil + NTZS + Safe, SQLite, web + worker + beat.
dev: setup
	$(PY) scripts/dev.py

## Start the local stack, check it end to end, stop it, start it again, check reuse.
dev-check: setup
	$(PY) scripts/dev_check.py

## The full test suite on real PostgreSQL, Redis and anvil (started by the tests).
test: setup
	$(PY) -m pytest $(PYTEST_ARGS)

## The suite without the chain, slow and browser tests (markers `chain`, `slow`, `browser`), timed.
test-fast: setup
	@start=$$(date +%s); \
	$(PY) -m pytest -m "not chain and not slow and not browser" $(PYTEST_ARGS); status=$$?; \
	echo "test-fast: $$(( $$(date +%s) - start )) s"; exit $$status

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .
	$(PY) manage.py makemigrations --check --dry-run
	$(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null
	msgfmt --check -o /dev/null locale/sw/LC_MESSAGES/django.po

## Known vulnerabilities in the locked packages (pip-audit); ignore list: .pip-audit-ignore.toml.
audit: setup
	$(PY) scripts/audit.py

## Refresh the Kiswahili catalogue from the code and compile it (needs GNU gettext).
messages: setup
	$(PY) manage.py makemessages -l sw --no-obsolete --ignore=.venv --ignore=node_modules --ignore=var --ignore=staticfiles --ignore=tests
	$(PY) manage.py compilemessages -l sw --ignore=.venv --ignore=node_modules

## Rebuild the committed NTZS artifact from minting/contracts/NTZS.sol.
contracts: setup
	node minting/contracts/compile.js

contracts-check: setup
	node minting/contracts/compile.js --check

## `check --deploy` of the production profile, with placeholder values.
check-deploy: setup
	env DJANGO_SETTINGS_MODULE=config.settings.production \
	  SECRET_KEY=check-deploy-placeholder-secret-key-0123456789-abcdefghijklmnopqrstuvwxyz \
	  DATABASE_URL=postgres://ntzs@127.0.0.1:5432/ntzs REDIS_URL=redis://127.0.0.1:6379/0 \
	  CHAIN_ID=84532 BASE_SEPOLIA_RPC_URL=https://sepolia.base.org \
	  MINTER_PRIVATE_KEY=0x$$(printf '1%.0s' {1..64}) ZENOPAY_API_KEY=placeholder \
	  APP_URL=https://ntzs.example ALLOWED_HOSTS=ntzs.example \
	  $(PY) manage.py check --deploy --fail-level WARNING

## The production profile end to end: throwaway PostgreSQL, Redis and anvil, the Procfile's
## gunicorn, worker and beat, a ZenoPay stand-in; a deposit minted, a worker restart mid-batch.
prod-check: setup
	$(PY) scripts/prod_check.py

## Load on the prod-check stack (a benchmark, not a test): 200 deposit creations, 500 webhooks
## and 200 status-page pollers at once; p50/p99 per endpoint, every deposit minted once.
load: setup
	$(PY) scripts/load.py

## Mint pipeline benchmarks (not tests): throughput vs the raw ceiling, latency, serial mode.
bench: setup
	$(PY) bench/mint_bench.py

## Backstage with 1,000,000 deposits (not a test): seeds them on a throwaway PostgreSQL, then
## times each deposit page and the dashboard with its query count; exits 1 if one takes 500 ms.
bench-backstage: setup
	$(PY) bench/backstage_bench.py

## Reconciliation at volume (not a test): a supply snapshot over 1,000,000 minted deposits and
## their claims (time, queries), and the chain indexer over 10,000 blocks of 100,000 mint logs
## next to the raw eth_getLogs time of the same ranges, on a throwaway PostgreSQL and anvil.
bench-reconciliation: setup
	$(PY) bench/reconciliation_bench.py
