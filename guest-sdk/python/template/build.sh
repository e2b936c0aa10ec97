#!/bin/sh
# Builds the plugin into dist/{name}.wasm with the venv's wssgate build tool (componentize-py inside).
set -eu
cd "$(dirname "$0")"
exec .venv/bin/python -m wssgate.build . dist/{name}.wasm
