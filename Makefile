# FeedbackLoop. `make demo` runs the platform on its embedded defaults; `make test` passes the tests.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements/*.txt | sha1sum | cut -c1-12)

# The suite runs against the real services; override these to point elsewhere.
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/test
TEST_REDIS_URL ?= redis://127.0.0.1:6379/0
TEST_BROKER_URL ?= redis://127.0.0.1:6379/1
# The production smoke's own database (dropped and recreated) and Redis databases.
SMOKE_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/smoke
SMOKE_REDIS_URL ?= redis://127.0.0.1:6379/11
SMOKE_BROKER_URL ?= redis://127.0.0.1:6379/12

.PHONY: install chromium demo test smoke-production check bench-labeling screenshots clean

$(STAMP):
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# pip, not uv: torch==2.13.0 must come from the CPU wheel on this disk.
	$(BIN)/pip install -q -r requirements/test.txt
	# The Python client (client/), editable: its tests drive the live server.
	$(BIN)/pip install -q --no-deps -e client
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

chromium:
	@command -v chromium >/dev/null 2>&1 || (apt-get update -qq && apt-get install -y -qq chromium >/dev/null)

demo: install
	bin/demo

test: install chromium
	# Import contracts first (.importlinter): a broken one fails the run before the suite starts.
	$(BIN)/lint-imports
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) CELERY_BROKER_URL=$(TEST_BROKER_URL) \
	FEEDBACKLOOP_REQUIRE_SERVICES=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false \
	$(BIN)/python -m pytest -q

# gunicorn + a Celery worker under config.settings.production, driven by Chromium (bin/smoke-production).
smoke-production: install chromium
	SMOKE_DATABASE_URL=$(SMOKE_DATABASE_URL) SMOKE_REDIS_URL=$(SMOKE_REDIS_URL) SMOKE_BROKER_URL=$(SMOKE_BROKER_URL) \
	bin/smoke-production

check: install
	$(BIN)/python manage.py check
	DJANGO_SETTINGS_MODULE=config.settings.production DJANGO_SECRET_KEY=$$(head -c 48 /dev/urandom | base64) \
	$(BIN)/python manage.py check --deploy --fail-level WARNING

# The README's screenshots (docs/screenshots/), shot in Chromium from a throwaway demo: bin/screenshots.
screenshots: install chromium
	bin/screenshots

bench-labeling: install
	$(BIN)/python bench/labeling.py --labelers 32

clean:
	rm -rf var/
