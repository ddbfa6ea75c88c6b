#!/usr/bin/env bash
# Render the static report in headless Chromium (no network) and save a screenshot.
# Usage: bench/screenshot_report.sh [reports/index.html] [/tmp/report.png] [WIDTHxHEIGHT]
set -euo pipefail
html="$(realpath "${1:-reports/index.html}")"
png="${2:-/tmp/report.png}"
size="${3:-1400,2400}"
browser="$(command -v chromium || command -v chromium-browser || true)"
if [[ -z "$browser" ]]; then
  echo "chromium not found: apt-get update && apt-get install -y chromium" >&2
  exit 1
fi
profile="$(mktemp -d)"
trap 'rm -rf "$profile"' EXIT
"$browser" --headless --no-sandbox --disable-gpu --disable-background-networking \
  --disable-component-update --disable-sync --user-data-dir="$profile" \
  --screenshot="$png" --window-size="$size" "file://$html" 2>/dev/null
echo "screenshot: $png"
