#!/bin/sh
# Browser tests of the console. Needs: node >= 20, Debian's chromium (apt-get install -y chromium
# chromium-driver), and a herd binary (HERD_BIN, default /work/bin/herd, else target/release/herd).
# Installs playwright-core (pinned, no browser download) into tests/node_modules, then runs the
# tests: they start a counting target and `herd up` with fresh tokens, and load the console the
# binary embeds (so rebuild herd after editing console/: `cargo build -p herd`).
# Screenshots land in console/tests/screenshots/.
set -eu
cd "$(dirname "$0")"
if [ -z "${HERD_BIN:-}" ]; then
  for b in /work/bin/herd ../../target/release/herd; do
    if [ -x "$b" ]; then HERD_BIN=$(cd "$(dirname "$b")" && pwd)/$(basename "$b"); break; fi
  done
fi
: "${HERD_BIN:?set HERD_BIN to a herd binary}"
export HERD_BIN
if [ ! -x "${CHROMIUM:-/usr/bin/chromium}" ]; then
  echo "no Chromium at ${CHROMIUM:-/usr/bin/chromium}: apt-get install -y chromium chromium-driver" >&2
  exit 2
fi
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
exec node --test --test-concurrency=1 --test-reporter=spec console.test.js cognito.test.js
