#!/bin/sh
# Regenerates MANIFEST: every file `herd up` embeds and serves, with its content type.
# Format: PATH TYPE — no spaces in either. index.html is served at / and at every console route; the rest at /<path>.
cd "$(dirname "$0")" || exit 1
{
  echo "index.html text/html;charset=utf-8"
  find assets -type f | LC_ALL=C sort | while read -r f; do
    case "$f" in
      *.js) t="text/javascript;charset=utf-8" ;;
      *.css) t="text/css;charset=utf-8" ;;
      *.svg) t="image/svg+xml" ;;
      *.json) t="application/json" ;;
      *LICENSE*|*.txt) t="text/plain;charset=utf-8" ;;
      *) echo "unknown type: $f" >&2; exit 1 ;;
    esac
    echo "$f $t"
  done
} > MANIFEST
