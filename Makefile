# Two entry points: `make demo` and `make test`. Both create .venv, build the extension and the models themselves.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
# CPU wheel of torch for development and tests (the runtime SDK itself never needs torch).
TORCH  := torch==2.13.0
EXT_SOURCES := $(shell find cpp_ext -type f) CMakeLists.txt pyproject.toml

.PHONY: demo test bench install models clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

# Build prerequisites first, then the SDK (builds deid_sdk._C) and the training/eval package, editable.
$(VENV)/.installed: $(BIN)/python $(EXT_SOURCES) training/pyproject.toml
	$(BIN)/pip install -q "$(TORCH)" "scikit-build-core>=0.10" "pybind11>=2.12" "cmake>=3.25" ninja
	$(BIN)/pip install -q --no-build-isolation -e ".[test,build,demo,ray]" -e ./training
	touch $@

# The generated models (CenterFace, dlib ResNet, SFace, YuNet) -> models/generated/, checked against
# models/manifest.json; a second run only re-checks (about a second).
models: $(VENV)/.installed
	$(BIN)/python -m deid_sdk.model_build

install: models

demo: install
	$(BIN)/deid demo

# DEID_REQUIRE_EXTENSION: the suite fails at once when deid_sdk._C was not built (tests/conftest.py).
# install_rtsp_server.sh: the Debian packages of the real RTSP server test (under a second when present).
test: install
	tools/install_rtsp_server.sh
	DEID_REQUIRE_EXTENSION=1 $(BIN)/python -m pytest -q

bench: install
	$(BIN)/deid bench --input ../shared/data/videos/d10.mp4

clean:
	rm -rf $(VENV) build out models/generated
