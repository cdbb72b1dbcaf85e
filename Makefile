# Two entry points (see README): `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
PIP_FLAGS ?= --quiet --disable-pip-version-check
# every install takes its versions from the committed lock (the whole dependency tree); `make lock` refreshes it
LOCK   := requirements/lock.txt

.PHONY: demo test lint venv venv-test browser bench clean lock

$(BIN)/python:
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON) on PATH (or run: make PYTHON=python3 ...)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install $(PIP_FLAGS) --upgrade pip

venv: $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -c $(LOCK) -e .
	$(BIN)/pip check

venv-test: $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) -c $(LOCK) -e '.[test,bench]'
	$(BIN)/pip check

# the main job: replay the bundled example review offline through the real update-review flow
demo: venv
	$(BIN)/livingmeta demo --out demo-output

# headless Chromium for the report's browser check (best effort: the test skips, saying why, without it)
browser:
	@command -v chromium >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	  (apt-get update -qq >/dev/null 2>&1; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null 2>&1) \
	  && echo "installed chromium" || echo "chromium not installed: the browser check will be skipped"; }

# house tooling (configured in pyproject.toml): lint, formatting and types of livingmeta/ and warehouse/
lint: venv-test
	$(BIN)/ruff check
	$(BIN)/ruff format --check
	$(BIN)/mypy

test: venv-test lint
	-@$(MAKE) --no-print-directory browser
	$(BIN)/python -m pytest -q

bench: venv-test
	$(BIN)/python bench/meta.py
	$(BIN)/python bench/pubmed_ingest.py
	$(BIN)/python bench/screening.py
	$(BIN)/python bench/screening_live.py
	$(BIN)/python bench/analysis.py
	$(BIN)/python bench/cli_startup.py
	$(BIN)/python bench/linking.py
	$(BIN)/python bench/growth.py --sizes 10000 50000
	$(BIN)/python bench/web_load.py --reviewers 20 --seconds 60

# re-resolve the whole tree from pyproject.toml (newest versions its ranges allow), then run `make test`
lock: $(BIN)/python
	$(BIN)/pip install $(PIP_FLAGS) uv
	$(BIN)/uv pip compile pyproject.toml --extra test --extra bench --python-version 3.11 \
	  --python-platform x86_64-unknown-linux-gnu --custom-compile-command "make lock" --annotation-style line $(LOCK_FLAGS) -o $(LOCK)

clean:
	rm -rf $(VENV) demo-output .pytest_cache
