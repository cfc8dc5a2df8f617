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

# The quick subset for the edit loop (measured below in docs/testing.md): no ROS process tests, oracle-equivalence, training or colcon build.
test-fast: setup
	$(VENV)/bin/ruff check .
	$(PY) -m pytest test -m "not slow" -n 2 --dist loadgroup

# The demo prompted by clicks (demo_output/), then driven by a synthetic detector's boxes (demo_output/detector/).
demo: setup
	$(PY) -m sam2_ros.demo
	$(PY) -m sam2_ros.demo --detector
	$(PY) -m sam2_ros.demo --depth

# The CPU benchmarks, each writing bench/out/<name>.json and .md under a header (date, CPU, cores, load average,
# torch / onnxruntime versions, git commit, command line); docs/BENCHMARKS.md says what each measures. About 20 minutes
# on 2 shared cores, estimated from the recorded figures (tracker_cpu at 512 ~6, the two parts_cpu ~6, the node and
# demo runs ~5). Left out for their
# length: soak (10,000 frames, ~15 min), attention_chunks (~9 min at 1024), tracker_cpu at 1024 (~9 min),
# segment_everything --quality / --sweep. `make bench BENCH_ARGS=--quick`: every one at small sizes (70 s measured
# on 2 shared cores, 2026-12-07), to see that they run; those figures are not for the record.
BENCH_ARGS ?=
bench: setup
	$(PY) -m bench.parts_cpu --against reference $(BENCH_ARGS)
	$(PY) -m bench.parts_cpu --against onnxruntime $(BENCH_ARGS)
	$(PY) -m bench.tracker_cpu --sizes 512 $(BENCH_ARGS)
	$(PY) -m bench.segment_everything $(BENCH_ARGS)
	$(PY) -m bench.geometry_cpu $(BENCH_ARGS)
	$(PY) -m bench.mask_resolution $(BENCH_ARGS)
	$(PY) -m bench.mask_resolution --node $(BENCH_ARGS)
	$(PY) -m bench.overlay_captions $(BENCH_ARGS)
	$(PY) -m bench.objects_cost $(BENCH_ARGS)
	$(PY) -m bench.objects_quality $(BENCH_ARGS)
	$(PY) -m bench.objects_quality --scenes $(BENCH_ARGS)
	$(PY) -m bench.node_overhead $(BENCH_ARGS)
	$(PY) -m bench.burst $(BENCH_ARGS)
	$(PY) -m bench.auto_start $(BENCH_ARGS)

# On a machine with a CUDA GPU: no venv needed, only a python with torch (CUDA) and numpy. At most 5 minutes; results
# in bench/out/gpu_check.json and bench/out/gpu_check.md (see docs/BENCHMARKS.md, "GPU"). More options: ARGS="...".
# `make gpu-check --dry-run` (make's -n) prints the check's plan and budgets: the `+` line runs under -n too.
GPU_PYTHON ?= python3
ARGS ?=
gpu-check:
	+$(GPU_PYTHON) bench/gpu_check.py --out bench/out $(if $(findstring n,$(firstword -$(MAKEFLAGS))),--dry-run) $(ARGS)

clean:
	rm -rf build install log $(VENV)
