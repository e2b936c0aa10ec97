#!/usr/bin/env bash
# Runs every test of the workspace on this machine, installing first what the tests need:
# the wasm32-wasip2 target, and the system tools the end-to-end tests drive (nginx, Chromium,
# systemd-socket-activate, pebble, nats-server, lintian, Python `websockets`, the Node packages in tests/interop/node and
# bench/node, the npm workspace of the TypeScript SDK and plugins (package.json at the root), the Python venv `.venv` with the
# Python SDK and componentize-py (guest-sdk/python/requirements.txt), mdbook, which builds the book in docs/, and
# cargo-deb, which builds the Debian package the package test installs, and Autobahn|Testsuite in .autobahn/).
# The README's Quick start and .ci/run both call this script.
#
# Tests that need such a tool are `#[ignore]`d in a plain `cargo test`, so a run without them says "ignored" rather
# than "passed"; this script runs them too (`--include-ignored`), and one whose tool is missing fails, naming it.
# tests/guard.py runs cargo as a subreaper: at the end it totals the results and fails, naming the process, if
# anything the tests started is still running.
#
# WSSGATE_TEST_NO_INSTALL=1 skips the installs (to see what a run without a tool reports).
set -uo pipefail
cd "$(dirname "$0")"

say() { echo "test.sh: $*" >&2; }
as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else return 1; fi
}

# Autobahn|Testsuite, which tests/autobahn.rs runs for the compression cases, is Python 2.7 only. Debian 12 has no
# Python 2, Debian 11 (bullseye, still on deb.debian.org) does: its source is added at pin priority 100, so it serves
# only packages bookworm lacks and never upgrades one. The suite goes into a virtualenv in .autobahn/ (virtualenv
# 20.21.1 is the last that makes Python 2.7 environments), with the versions tests/autobahn/requirements.txt pins.
install_autobahn() {
  [ -x .autobahn/venv27/bin/wstest ] && ! [ tests/autobahn/requirements.txt -nt .autobahn/venv27/bin/wstest ] && return
  local fail="the Autobahn test (tests/autobahn.rs) will fail"
  if ! [ -x /usr/bin/python2.7 ]; then
    say "installing Python 2.7 from Debian 11 (bullseye), for Autobahn|Testsuite"
    if ! grep -rqs "bullseye" /etc/apt/sources.list.d/; then
      printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: bullseye\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\nTypes: deb\nURIs: http://deb.debian.org/debian-security\nSuites: bullseye-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
        | as_root tee /etc/apt/sources.list.d/wssgate-bullseye-python2.sources >/dev/null
      printf 'Package: *\nPin: release n=bullseye\nPin-Priority: 100\n\nPackage: *\nPin: release n=bullseye-security\nPin-Priority: 100\n' \
        | as_root tee /etc/apt/preferences.d/wssgate-bullseye-python2.pref >/dev/null
    fi
    as_root apt-get update -qq \
      && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends python2.7 python2.7-dev >/dev/null \
      || { say "could not install python2.7 from bullseye (apt-get install python2.7 python2.7-dev): $fail"; return; }
  fi
  say "installing Autobahn|Testsuite into .autobahn/ (pip, tests/autobahn/requirements.txt)"
  rm -rf .autobahn
  python3 -m venv .autobahn/tools \
    && .autobahn/tools/bin/pip install -q 'virtualenv==20.21.1' \
    && XDG_DATA_HOME="$PWD/.autobahn/xdg" .autobahn/tools/bin/virtualenv -q -p /usr/bin/python2.7 .autobahn/venv27 \
    && .autobahn/venv27/bin/pip install -q --no-cache-dir -r tests/autobahn/requirements.txt \
    || say "could not install Autobahn|Testsuite (see above): $fail"
}

install_tools() {
  rustup target add wasm32-wasip2 || { say "could not add the Rust target wasm32-wasip2 (rustup target add wasm32-wasip2)"; exit 1; }

  local debian_packages="" apt_updated=""
  [ -x /usr/sbin/nginx ] || debian_packages="$debian_packages nginx"
  [ -x /usr/bin/chromium ] || debian_packages="$debian_packages chromium"
  [ -x /usr/bin/systemd-socket-activate ] || debian_packages="$debian_packages systemd"
  [ -x /usr/bin/pebble ] || debian_packages="$debian_packages pebble"
  [ -x /usr/sbin/nats-server ] || debian_packages="$debian_packages nats-server"
  [ -x /usr/bin/lintian ] || debian_packages="$debian_packages lintian"
  for package in $debian_packages; do
    say "installing the Debian package $package"
    if [ -z "$apt_updated" ]; then as_root apt-get update -qq && apt_updated=1; fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null \
      || say "could not install the Debian package $package (apt-get install $package): the tests that need it will fail"
  done

  if ! python3 -c "import websockets.asyncio.client" 2>/dev/null; then
    say "installing the Python package websockets"
    python3 -m pip install -q websockets \
      || say "could not install the Python package websockets (pip install websockets): the tests that need it will fail"
  fi

  if ! command -v mdbook >/dev/null; then
    say "installing mdbook (cargo install mdbook), for the test that builds the book in docs/"
    cargo install -q mdbook --version 0.5.4 --locked --no-default-features \
      || say "could not install mdbook (cargo install mdbook --version 0.5.4 --locked --no-default-features): the test that needs it will fail"
  fi

  if ! cargo deb --version >/dev/null 2>&1; then
    say "installing cargo-deb (cargo install cargo-deb), for the test that builds and installs the Debian package"
    cargo install -q cargo-deb --version 3.6.2 --locked \
      || say "could not install cargo-deb (cargo install cargo-deb --version 3.6.2 --locked): the test that needs it will fail"
  fi

  if ! [ -f node_modules/@bytecodealliance/componentize-js/package.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
    say "installing the npm workspace of the TypeScript SDK and plugins (npm ci)"
    npm ci --no-audit --no-fund --loglevel=error \
      || say "could not install the npm workspace (npm ci): the TypeScript tests will fail"
  fi

  if ! [ -x .venv/bin/componentize-py ] || [ guest-sdk/python/requirements.txt -nt .venv/bin/componentize-py ]; then
    say "making the Python venv .venv with the Python SDK and componentize-py (pip)"
    { [ -x .venv/bin/python ] || python3 -m venv .venv; } \
      && .venv/bin/pip install -q -r guest-sdk/python/requirements.txt -e guest-sdk/python \
      || say "could not make the Python venv (python3 -m venv .venv && .venv/bin/pip install -r guest-sdk/python/requirements.txt -e guest-sdk/python): the Python tests will fail"
  fi

  install_autobahn

  if ! [ -f tests/interop/node/node_modules/ws/package.json ] || ! [ -f tests/interop/node/node_modules/playwright-core/package.json ]; then
    say "installing the Node packages of tests/interop/node (npm ci)"
    (cd tests/interop/node && npm ci --no-audit --no-fund --loglevel=error) \
      || say "could not install the Node packages (cd tests/interop/node && npm ci): the tests that need them will fail"
  fi
  if ! [ -f bench/node/node_modules/ws/package.json ]; then
    say "installing the benchmarks' Node client (cd bench/node && npm ci)"
    (cd bench/node && npm ci --no-audit --no-fund --loglevel=error) \
      || say "could not install bench/node's packages (cd bench/node && npm ci): the benchmark smoke test will fail"
  fi
}

if [ "${WSSGATE_TEST_NO_INSTALL:-}" = 1 ]; then
  say "WSSGATE_TEST_NO_INSTALL=1: installing nothing"
else
  install_tools
fi

exec python3 tests/guard.py cargo test --workspace --no-fail-fast -- --include-ignored
