# sam2_ros — the two fresh-machine commands are `make demo` and `make test`; both run `setup` first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.setup-stamp
export ROS_AUTOMATIC_DISCOVERY_RANGE := LOCALHOST
export PYTHONDONTWRITEBYTECODE := 1

# Everything whose change means the venv install must be refreshed.
SETUP_INPUTS := $(wildcard requirements/*.txt) scripts/setup_venv.sh scripts/fix_ros_cmake_exports.py \
	scripts/sam2_node.in CMakeLists.txt package.xml $(wildcard msg/*.msg srv/*.srv launch/* config/* models/* compat/vision_msgs/msg/*.msg) \
	compat/vision_msgs/CMakeLists.txt compat/vision_msgs/package.xml \
	$(shell find sam2_ros -name '*.py' -not -path '*/__pycache__/*' 2>/dev/null)

.PHONY: setup test test-fast demo bench gpu-check clean

setup: $(STAMP)

$(STAMP): $(SETUP_INPUTS)
	@bash scripts/setup_venv.sh
	@touch $(STAMP)

test: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest test --durations=15

# The quick subset for the edit loop (< 2 minutes): no ROS process tests, oracle-equivalence, training or colcon build.
test-fast: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest test -m "not slow"

# The demo prompted by clicks (demo_output/), then driven by a synthetic detector's boxes (demo_output/detector/).
demo: setup
	$(PY) -m sam2_ros.demo
	$(PY) -m sam2_ros.demo --detector
	$(PY) -m sam2_ros.demo --depth

bench: setup
	$(PY) bench/model_cpu.py
	$(PY) bench/tracker_cpu.py
	$(PY) bench/onnx_cpu.py
	$(PY) bench/node_overhead.py
	$(PY) bench/geometry_cpu.py
	$(PY) bench/objects_cost.py
	$(PY) bench/overlay_captions.py
	$(PY) bench/auto_start.py

# On a machine with a CUDA GPU: no venv needed, only a python with torch (CUDA) and numpy. At most 5 minutes; results
# in bench/out/gpu_check.json and bench/out/gpu_check.md (see docs/BENCHMARKS.md, "GPU"). More options: ARGS="...".
# `make gpu-check --dry-run` (make's -n) prints the check's plan and budgets: the `+` line runs under -n too.
GPU_PYTHON ?= python3
ARGS ?=
gpu-check:
	+$(GPU_PYTHON) bench/gpu_check.py --out bench/out $(if $(findstring n,$(firstword -$(MAKEFLAGS))),--dry-run) $(ARGS)

clean:
	rm -rf build install log $(VENV)
