# Quick start: `make demo` runs the embedded demo end to end; `make test` runs the tests.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install install-gpu demo test test-slow bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

# onnxruntime-gpu provides the same `onnxruntime` module as the CPU wheel that sparsezoo
# requires, so the CPU wheel is removed after the GPU one is installed.
install-gpu: $(STAMP)
	$(BIN)/pip install --quiet -e ".[gpu]"
	$(BIN)/pip uninstall --yes onnxruntime
	$(BIN)/pip install --quiet --force-reinstall --no-deps "onnxruntime-gpu==1.18.1"

# Exit 1 is the gate refusing release: a finished demo, not a failed make.
demo: $(STAMP)
	@$(BIN)/compress-gate run recipes/demo.yaml; code=$$?; \
	if [ $$code -eq 1 ]; then echo "demo finished: the gate refused release (see runs/demo/refused/report.html)"; \
	elif [ $$code -ne 0 ]; then exit $$code; \
	else echo "demo finished: released (see runs/demo/release/)"; fi

test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow" -n 2 -q

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow -q

bench: $(STAMP)
	$(BIN)/python benchmarks/engines.py
	$(BIN)/python benchmarks/gate_scaling.py
	$(BIN)/python benchmarks/run_stages.py

clean:
	rm -rf $(VENV) runs .pytest_cache
