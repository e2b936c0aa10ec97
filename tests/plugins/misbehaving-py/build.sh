#!/bin/sh
# Builds this plugin into dist/misbehaving-py.wasm with the SDK's build tool (run from anywhere; PYTHON defaults
# to the repository's .venv, where `pip install -r guest-sdk/python/requirements.txt -e guest-sdk/python` put it).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-$here/../../../.venv/bin/python}
exec "$PYTHON" -m wssgate.build "$here" "$here/dist/misbehaving-py.wasm"
