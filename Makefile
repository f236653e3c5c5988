# Two commands do all set-up on a fresh Debian machine: `make demo` and `make test`.
# Both are idempotent: apt packages only when missing, the virtualenv only when stale.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := .make
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# TeX for the write-up, Pango/HarfBuzz for weasyprint, poppler-utils for PDF checks,
# chromium for the service's browser test (Playwright drives the system browser), bubblewrap for
# the box every LLM-written experiment runs in (core/isolation.py).
APT_PACKAGES := texlive-latex-base texlive-latex-recommended texlive-latex-extra \
	texlive-fonts-recommended latexmk chktex poppler-utils \
	libpango-1.0-0 libpangoft2-1.0-0 libharfbuzz0b libharfbuzz-subset0 libfontconfig1 \
	fonts-dejavu-core lmodern chromium bubblewrap

.PHONY: demo test test-all test-versions lock bench mutation lint setup system-deps clean

# The main job on the embedded model: index the sample bibliography for offline citations,
# then ideas -> novelty -> experiments (Aider) -> LaTeX write-up -> review on one template.
DEMO_TEMPLATE ?= digits
demo: setup
	$(BIN)/scientist literature index samples/literature/references.bib
	$(BIN)/scientist run $(DEMO_TEMPLATE) --preset debug

test: setup lint
	$(BIN)/python -m pytest -m "not slow and not live"

test-all: setup lint
	$(BIN)/python -m pytest -m "not live"

bench: setup
	@for script in benchmarks/[a-z]*.py; do \
		echo "== $$script"; $(BIN)/python $$script || exit 1; \
	done

# Mutation testing of the core modules (docs/MUTATION.md); minutes per module, so not part of
# `make test`. MODULES="reviewer/review/decision.py gateway/*" picks modules; SURVIVORS=1 prints the
# surviving mutants' diffs (set -f: the driver expands the globs). Each run works in scratch
# copies of its own, so runs may overlap.
MODULES ?=
mutation: $(STAMP)/venv
	set -f; $(BIN)/python tests/mutation/run.py $(if $(SURVIVORS),--survivors) $(MODULES)

lint: setup
	$(BIN)/ruff check core gateway scientist reviewer graphs service tests benchmarks docs
	$(BIN)/mypy
	$(BIN)/lint-imports

setup: system-deps $(STAMP)/venv $(STAMP)/aider

system-deps:
	@missing=$$(for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || echo $$p; \
	done); \
	if [ -n "$$missing" ]; then \
		echo "Installing system packages: $$missing"; \
		$(SUDO) apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	fi

# llama-cpp-python compiles from source on first install (about 6-12 minutes on 2 cores);
# pip caches the wheel, so later installs take seconds. Every version comes from
# requirements.lock (resolved for Python 3.11 from pyproject.toml's ranges; `make lock`).
$(STAMP)/venv: pyproject.toml requirements.lock
	@$(PYTHON) -c 'import sys; assert sys.version_info[:2] == (3, 11), "make installs requirements.lock, resolved for Python 3.11; found " + sys.version'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements.lock
	$(BIN)/python -m pip install -q --no-deps -e .
	@mkdir -p $(STAMP) && touch $@

# Re-resolve requirements.lock from pyproject.toml's ranges (pip-tools keeps pins that still fit;
# `make lock UPGRADE=1` takes the newest releases the ranges allow).
lock:
	@test -x $(STAMP)/piptools/bin/pip-compile || ($(PYTHON) -m venv $(STAMP)/piptools && \
		$(STAMP)/piptools/bin/pip install -q pip-tools==7.6.2)
	$(STAMP)/piptools/bin/pip-compile -q --extra local --extra cluster --extra dev --strip-extras \
		--no-emit-index-url --no-emit-find-links $(if $(UPGRADE),--upgrade) \
		--output-file requirements.lock pyproject.toml

# The unit layer on the other supported Pythons (3.12, 3.13), each in its own virtualenv with
# requirements.lock as constraints (the embedded model is not installed there). A version this
# machine lacks is skipped and said so; tests/versions.sh finds them (PATH or pyenv).
OTHER_PYTHONS ?= 3.12 3.13
test-versions: $(STAMP)/venv
	@for v in $(OTHER_PYTHONS); do tests/versions.sh $$v || exit 1; done

# Aider pins ~110 exact versions that clash with the app's, so it gets its own virtualenv,
# driven through its CLI (scientist/experiments/editor.py); about a minute to install.
$(STAMP)/aider:
	@test -x .venv-aider/bin/python || $(PYTHON) -m venv .venv-aider
	.venv-aider/bin/pip install -q aider-chat==0.86.2
	@mkdir -p $(STAMP) && touch $@

clean:
	rm -rf $(VENV) .venv-3.* $(STAMP) .pytest_cache .mypy_cache .ruff_cache build dist
