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

.PHONY: setup test test-fast demo bench clean

setup: $(STAMP)

$(STAMP): $(SETUP_INPUTS)
	@bash scripts/setup_venv.sh
	@touch $(STAMP)

test: setup
	$(PY) -m pytest test

# The quick subset (no ROS process tests, no colcon build).
test-fast: setup
	$(PY) -m pytest test -m "not slow"

demo: setup
	$(PY) -m sam2_ros.demo

bench: setup
	$(PY) bench/model_cpu.py
	$(PY) bench/tracker_cpu.py
	$(PY) bench/onnx_cpu.py
	$(PY) bench/node_overhead.py
	$(PY) bench/objects_cost.py
	$(PY) bench/gpu.py

clean:
	rm -rf build install log $(VENV)
