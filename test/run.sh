#!/usr/bin/env bash
# The whole test suite: installs what the interop tests need (as root, from
# Debian), builds, then runs every *.test.ts under src/ and test/ with node's
# built-in test runner. Tests use temporary configs and loopback ports only.
set -euo pipefail
cd "$(dirname "$0")/.."
bash test/install-deps.sh
npm run build --silent
mapfile -t files < <(find src test -name '*.test.ts' | sort)
exec node --import tsx --test --test-concurrency=2 "${files[@]}"
