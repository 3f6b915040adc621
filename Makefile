# Quick start: `make demo` runs the embedded demo end to end; `make test` runs the tests.
#
# Three environments (docs/install.md says why they cannot be one):
#   .venv        core + [sparseml] + [openvino] + [test], Python 3.11: the demo, `make test-sparseml`, `make test-slow`
#   .venv-core   core + [test] on the newest Python (3.13), numpy 2, no torch: `make test-core`
#   .venv-torch  core + [torch] + [test], Python 3.11: the maintained backend's world
#   .venv-core312  core + [test] on Python 3.12 with numpy 1.26 (the other end of the numpy range): CI only
PYTHON       ?= python3.11
# The newest Python here (the first python3.13 that runs; pyenv's shim does not unless selected);
# `make test` skips the core world, saying so, where there is none.
CORE_PYTHON  ?= $(shell for p in python3.13 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.13*/bin/python3.13; do \
                    $$p -c pass 2>/dev/null && { command -v $$p; break; }; done)
CORE312_PYTHON ?= $(shell for p in python3.12 $${PYENV_ROOT:-$$HOME/.pyenv}/versions/3.12*/bin/python3.12; do \
                    $$p -c pass 2>/dev/null && { command -v $$p; break; }; done)
VENV         ?= .venv
CORE_VENV    ?= .venv-core
TORCH_VENV   ?= .venv-torch
CORE312_VENV ?= .venv-core312
BIN          := $(VENV)/bin
STAMP        := $(VENV)/.installed
CORE_STAMP   := $(CORE_VENV)/.installed
TORCH_STAMP  := $(TORCH_VENV)/.installed
CORE312_STAMP := $(CORE312_VENV)/.installed

.PHONY: install install-core install-torch install-ray install-gpu install-mlflow test-mlflow demo demo-digits example test test-sparseml test-core test-core312 test-torch \
        test-slow bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -e ".[sparseml,openvino,test]"
	touch $(STAMP)

$(CORE_STAMP): pyproject.toml
	$(CORE_PYTHON) -m venv $(CORE_VENV)
	$(CORE_VENV)/bin/pip install --quiet --upgrade "pip>=24"
	$(CORE_VENV)/bin/pip install --quiet -e ".[test]"
	touch $(CORE_STAMP)

# The core on Python 3.12 with numpy 1.26: the light install's other corner (3.13 gets numpy 2).
$(CORE312_STAMP): pyproject.toml
	$(CORE312_PYTHON) -m venv $(CORE312_VENV)
	$(CORE312_VENV)/bin/pip install --quiet --upgrade "pip>=24"
	$(CORE312_VENV)/bin/pip install --quiet -e ".[test]" "numpy<2"
	touch $(CORE312_STAMP)

# torch 2.13.0's CPU wheel exists for Python 3.11 only: never build this world on 3.12/3.13,
# where pip finds only the multi-GB CUDA builds.
$(TORCH_STAMP): pyproject.toml
	$(PYTHON) -m venv $(TORCH_VENV)
	$(TORCH_VENV)/bin/pip install --quiet --upgrade "pip>=24"
	$(TORCH_VENV)/bin/pip install --quiet -e ".[torch,test]"
	touch $(TORCH_STAMP)

install: $(STAMP)
install-torch: $(TORCH_STAMP)

# Ray joins the demo's environment for the slow Ray tests (a local cluster each).
install-ray: $(STAMP)
	$(BIN)/pip install --quiet -e ".[sparseml,openvino,ray,test]"

# onnxruntime-gpu provides the same `onnxruntime` module as the CPU wheel that sparsezoo
# requires, so the CPU wheel is removed after the GPU one is installed.
install-gpu: $(STAMP)
	$(BIN)/pip install --quiet "onnxruntime-gpu==1.18.1"
	$(BIN)/pip uninstall --yes onnxruntime
	$(BIN)/pip install --quiet --force-reinstall --no-deps "onnxruntime-gpu==1.18.1"

# The embedded demo: the multi-label sweep (one teacher, a gated student per sparsity, the most
# compressed passing student released). Exit 1 is the gate refusing every student: a finished
# demo, not a failed make.
demo: $(STAMP)
	@$(BIN)/compress-gate sweep recipes/multilabel.yaml --sparsity 0.5 0.8 0.95 --release; code=$$?; \
	if [ $$code -eq 1 ]; then echo "demo finished: no student passed the gate (see runs/multilabel/sweep.html)"; \
	elif [ $$code -ne 0 ]; then exit $$code; fi

# The second, faster example: one run on the biased digits (the gate refuses it).
demo-digits: $(STAMP)
	@$(BIN)/compress-gate run recipes/demo.yaml; code=$$?; \
	if [ $$code -eq 1 ]; then echo "demo finished: the gate refused release (see runs/demo/refused/report.html)"; \
	elif [ $$code -ne 0 ]; then exit $$code; \
	else echo "demo finished: released (see runs/demo/release/)"; fi

# Your model, your images (examples/your-model/): PNG files and a CSV, a network from a file outside
# the package, fine-tuned from a checkpoint with another head size, compressed by the torch backend.
example: $(TORCH_STAMP)
	@cd examples/your-model && ../../$(TORCH_VENV)/bin/python make_data.py && ../../$(TORCH_VENV)/bin/python pretrain.py
	@$(TORCH_VENV)/bin/compress-gate run examples/your-model/recipe.yaml; code=$$?; \
	if [ $$code -eq 1 ]; then echo "example finished: the gate refused release (see runs/your-model/refused/report.html)"; \
	elif [ $$code -ne 0 ]; then exit $$code; else echo "example finished: released (see runs/your-model/release/)"; fi

# Both worlds: the [sparseml] stack (Python 3.11), then the core on the newest Python.
test: test-sparseml test-core

test-sparseml: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n 2 -q

ifeq ($(strip $(CORE_PYTHON)),)
install-core test-core:
	@echo "$@ skipped: no python3.13 on this machine (set CORE_PYTHON=/path/to/python3.13)"
else
install-core: $(CORE_STAMP)

test-core: $(CORE_STAMP)
	$(CORE_VENV)/bin/python -m pytest -m "not slow" -n 2 -q
endif

# MLflow joins the core world (it cannot live beside [sparseml]'s numpy < 2 and pydantic < 2.8):
# the tracking tests start a real `mlflow server` on 127.0.0.1 (SQLite store) and log gate and sweep.
ifeq ($(strip $(CORE_PYTHON)),)
install-mlflow test-mlflow:
	@echo "$@ skipped: no python3.13 on this machine (set CORE_PYTHON=/path/to/python3.13)"
else
install-mlflow: $(CORE_STAMP)
	$(CORE_VENV)/bin/pip install --quiet -e ".[mlflow,test]"

test-mlflow: install-mlflow
	$(CORE_VENV)/bin/python -m pytest -q tests/test_tracking_mlflow.py
endif

# The Dockerfile's install steps (docker/install.sh) and the Action's, in a fresh virtual environment
# (no container engine needed), then the Action's gate step on a biased student.
.PHONY: test-install
test-install:
	PYTHON=$(or $(CORE_PYTHON),$(PYTHON)) SPARSEML_PYTHON=$(PYTHON) bash docker/smoke.sh

ifeq ($(strip $(CORE312_PYTHON)),)
test-core312:
	@echo "$@ skipped: no python3.12 on this machine (set CORE312_PYTHON=/path/to/python3.12)"
else
test-core312: $(CORE312_STAMP)
	$(CORE312_VENV)/bin/python -m pytest -m "not slow" -n 2 -q
endif

# The [torch] world: the fast suite (tests of other worlds skip with the reason), then the slow
# tests that need this world: the torch backend's end-to-end `compress-gate run`s (channel
# pruning + static INT8, QAT, FairGRAPE) and the similarity stage on a channel-pruned student.
test-torch: $(TORCH_STAMP)
	$(TORCH_VENV)/bin/python -m pytest -m "not slow" -n 2 -q
	$(TORCH_VENV)/bin/python -m pytest -m slow -q tests/test_torch_backend_run.py tests/test_torch_backend_qat.py \
	    tests/test_torch_methods_run.py tests/test_similarity_run_e2e.py tests/test_user_model_run.py \
	    tests/test_resume_run.py

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

bench: $(STAMP)
	$(BIN)/python benchmarks/engines.py
	$(BIN)/python benchmarks/gate_scaling.py
	$(BIN)/python benchmarks/run_stages.py

# Every engine and deployable student (SparseML and torch backends) timed in one run (about 20 min on 2 cores).
.PHONY: bench-side-by-side
bench-side-by-side: $(STAMP) $(TORCH_STAMP)
	$(BIN)/python benchmarks/side_by_side.py --torch-python $(TORCH_VENV)/bin/python

clean:
	rm -rf $(VENV) $(CORE_VENV) $(CORE312_VENV) $(TORCH_VENV) runs .pytest_cache
