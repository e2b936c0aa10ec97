#!/bin/sh
# Regenerates src/wit/ (the TypeScript types of the contract's imports and exports, which only src/wasm.ts uses) from
# wit/plugin.wit with the workspace's pinned jco, then stamps each file with how it was made. Run from guest-sdk/js
# after `npm ci` at the repository root: `npm run wit-types`.
set -eu
rm -rf src/wit
jco guest-types ../../wit/plugin.wit --world-name plugin-full --out-dir src/wit --quiet
for file in $(find src/wit -name '*.d.ts' | sort); do
  {
    echo "// Generated from wit/plugin.wit (world plugin-full) by \`jco guest-types\` (@bytecodealliance/jco 1.15.1, the"
    echo "// version the workspace pins) through guest-sdk/js/scripts/wit-types.sh: do not edit; rerun the script."
    cat "$file"
  } > "$file.tmp"
  mv "$file.tmp" "$file"
done
