#!/bin/sh
# The console's two page-weight figures (issue 11): the first load's transferred bytes and the
# render time of a 1-hour run's result page in headless Chromium (median and max of ROUNDS).
# Usage: bench/console_render.sh [ROUNDS]   (HERD_BIN: a herd binary, default target/release/herd)
# Run it on a quiet machine: the render time is CPU-bound.
set -eu
cd "$(dirname "$0")/../console/tests"
: "${HERD_BIN:=$(cd ../.. && pwd)/target/release/herd}"
export HERD_BIN
[ -d node_modules/playwright-core ] || npm ci --no-audit --no-fund
exec node render-bench.js "${1:-7}"
