#!/usr/bin/env bash
# Builds .venv/ (Python 3.11) from package registries only: ROS 2 Kilted wheels, torch, test tools and the reference
# sam2 (a test oracle), then builds this package's interfaces and installs the package into the venv with CMake.
# Idempotent: dependencies are reinstalled only when requirements/ or this script change; the CMake build is incremental.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv"
py="${PYTHON:-python3.11}"
# torch first and pinned where a local CPU wheel exists; set TORCH_SPEC (e.g. a CUDA build) to override.
torch_spec="${TORCH_SPEC:-torch==2.13.0}"
export ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST PIP_DISABLE_PIP_VERSION_CHECK=1
log="$root/build/setup-pip.log"
mkdir -p "$root/build"

step() { echo "[setup] $*"; }
pip_install() {  # quiet pip; show its output only when it fails
  if ! "$venv/bin/python" -m pip install -q "$@" >"$log" 2>&1; then
    grep -v "is ignored: it is neither" "$log" | tail -40; return 1
  fi
}

if [ ! -x "$venv/bin/python" ]; then
  step "creating $venv with $py"
  "$py" -m venv "$venv"
fi

deps_hash="$(cat "$root"/requirements/*.txt "$0" "$root/scripts/fix_ros_cmake_exports.py" | sha256sum | cut -d' ' -f1)"
if [ "$(cat "$venv/.deps-stamp" 2>/dev/null)" != "$deps_hash" ]; then
  step "installing torch ($torch_spec)"
  pip_install --upgrade pip
  pip_install "$torch_spec" || { step "no $torch_spec here; taking the range in requirements/base.txt"; }
  step "installing ROS 2 Kilted wheels, numpy, test tools"
  pip_install -r "$root/requirements/base.txt" -r "$root/requirements/ros.txt" -r "$root/requirements/dev.txt"
  step "installing the reference sam2 package (test oracle only)"
  SAM2_BUILD_CUDA=0 pip_install --no-deps --no-build-isolation -r "$root/requirements/oracle.txt"
  "$venv/bin/python" "$root/scripts/fix_ros_cmake_exports.py" "$venv"
  echo "$deps_hash" > "$venv/.deps-stamp"
else
  step "dependencies up to date"
fi

build="$root/build/venv"
export AMENT_PREFIX_PATH="$venv" CMAKE_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH"
run_logged() { local name=$1; shift; "$@" >"$build/$name.log" 2>&1 || { tail -40 "$build/$name.log"; exit 1; }; }
mkdir -p "$build"

# vision_msgs is not on PyPI: build our compatible copy (compat/vision_msgs, same definitions => same type hashes) into
# the venv, unless a real vision_msgs is importable. Rebuilt when its files change.
compat="$root/compat/vision_msgs"
compat_hash="$(cat "$compat"/CMakeLists.txt "$compat"/package.xml "$compat"/msg/*.msg | sha256sum | cut -d' ' -f1)"
compat_stamp="$venv/.vision-msgs-compat"
if [ "$(cat "$compat_stamp" 2>/dev/null)" = "$compat_hash" ]; then
  step "vision_msgs (compat build) up to date"
elif [ ! -f "$compat_stamp" ] && "$venv/bin/python" -c "import vision_msgs.msg" 2>/dev/null; then
  step "vision_msgs found: using it"
else
  step "building vision_msgs (compat/vision_msgs: the ROS 2 vision_msgs 4.1 layout) into the venv"
  vbuild="$root/build/vision_msgs"
  rm -rf "$vbuild"
  run_logged vision_msgs-configure cmake -S "$compat" -B "$vbuild" -DCMAKE_INSTALL_PREFIX="$venv" \
    -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release
  run_logged vision_msgs-build cmake --build "$vbuild" -j2
  run_logged vision_msgs-install cmake --install "$vbuild"
  echo "$compat_hash" > "$compat_stamp"
fi

step "building interfaces and installing the package with CMake"
if [ ! -f "$build/CMakeCache.txt" ]; then
  run_logged configure cmake -S "$root" -B "$build" -DCMAKE_INSTALL_PREFIX="$venv" \
    -DPython3_EXECUTABLE="$venv/bin/python" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release
fi
run_logged build cmake --build "$build" -j2
run_logged install cmake --install "$build"
step "ready: $venv (node: $venv/lib/sam2_ros/sam2_node)"
# EdgeTAM's reference code (test oracle) in its own directory: it installs a `sam2` that would shadow the one above.
bash "$root/scripts/setup_edgetam_oracle.sh" || echo "[setup] WARNING: EdgeTAM oracle not installed; its tests skip"
