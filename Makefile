# codex-tui developer commands. `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install docker image demo exec-demo run test test-fast test-k8s test-browser lint format bench screenshots clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip install -q --upgrade pip >/dev/null 2>&1 || true
	$(BIN)/python -m pip install -q -e '.[test]'
	@touch $(STAMP)

install: $(STAMP)

## Start a Docker engine (installing docker.io as root if needed) and build the sandbox image.
docker: install
	PYTHON=$(BIN)/python bash scripts/ensure_docker.sh

## The demo: the TUI on a sample repository with the scripted model (no API key, no network).
## Uses Docker sandboxes when an engine can be started, else the local backend (the app says so).
demo: install
	@PYTHON=$(BIN)/python bash scripts/ensure_docker.sh || echo "codex-tui: no Docker engine; the demo runs with the local sandbox backend"
	$(BIN)/codex-tui --demo

## The same demo, headless: progress on stderr, the final message on stdout.
exec-demo: install
	@PYTHON=$(BIN)/python bash scripts/ensure_docker.sh || echo "codex-tui: no Docker engine; the demo runs with the local sandbox backend"
	$(BIN)/codex-tui exec --demo

run: install
	$(BIN)/codex-tui

## The whole test suite: unit, integration (real Docker engine), TUI (Pilot + snapshots), e2e (tmux),
## and as root the Kubernetes tests on a real cluster (its build runs in the background meanwhile).
test: docker
	bash scripts/ensure_tools.sh
	PYTHON=$(BIN)/python bash scripts/test_all.sh

## Everything but the Docker and tmux tests (for a quick loop while editing).
test-fast: install
	$(BIN)/python -m pytest -q -m "not docker and not e2e and not k8s"

## The Kubernetes backend on a real single-node cluster: built once from Debian's source (cached in
## /var/cache/codex-tui/k8s; the first build takes 10-20 min), started, tested, stopped. Root only.
K8S_KUBECONFIG ?= /var/lib/codex-tui-k8s/kubeconfig
test-k8s: docker
	bash scripts/k8s/build.sh
	bash scripts/k8s/up.sh
	KUBECONFIG=$(K8S_KUBECONFIG) $(BIN)/python -m pytest -q -p no:cacheprovider -m k8s tests/k8s; rc=$$?; \
	  bash scripts/k8s/down.sh; exit $$rc

## The browser image (Debian's chromium; built when missing, ~2-3 min) and the test that screenshots a
## page served inside a sandbox. `make test` runs this test too; this target runs it alone.
test-browser: docker
	$(BIN)/codex-tui sandbox build --browser --if-missing
	$(BIN)/python -m pytest -q -p no:cacheprovider -m browser tests/test_artifacts_browser.py

lint: install
	$(BIN)/ruff check codex_tui tests bench scripts
	$(BIN)/ruff format --check codex_tui tests bench scripts
	$(BIN)/mypy

format: install
	$(BIN)/ruff format codex_tui tests bench scripts
	$(BIN)/ruff check --fix codex_tui tests bench scripts

bench: docker
	@mkdir -p bench/results
	@for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

screenshots: install
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache *.egg-info
