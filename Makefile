# Two entry points: `make demo` and `make test`. Both create .venv and build the extension themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# CPU wheel of torch for development and tests (the runtime SDK itself never needs torch).
TORCH  := torch==2.13.0
EXT_SOURCES := $(shell find cpp_ext -type f) CMakeLists.txt pyproject.toml

.PHONY: demo test bench install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Build prerequisites first, then the SDK (builds deid_sdk._C) and the training/eval package, editable.
$(VENV)/.installed: $(BIN)/python $(EXT_SOURCES) training/pyproject.toml
	$(BIN)/pip install -q "$(TORCH)" "scikit-build-core>=0.10" "pybind11>=2.12" "cmake>=3.25" ninja
	$(BIN)/pip install -q --no-build-isolation -e ".[test,video]" -e ./training
	touch $@

install: $(VENV)/.installed

demo: $(VENV)/.installed
	$(BIN)/deid demo

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

bench: $(VENV)/.installed
	$(BIN)/deid bench --input ../shared/data/videos/d10.mp4

clean:
	rm -rf $(VENV) build out
