#!/usr/bin/env bash
# The browser test of `make test`: starts the emulator and `handover serve` (with the demo bot
# pointed at it) on free ports, drives the playground page in headless Chromium, stops both.
# Needs the CLI built (`cargo build -p handover-cli`); installs Chromium and playwright-core
# through scripts/setup-browser.sh, and fails with instructions when it cannot.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-browser.sh

HANDOVER=${HANDOVER:-${CARGO_TARGET_DIR:-target}/debug/handover}
if [ ! -x "$HANDOVER" ]; then
  echo "browser-test: $HANDOVER is missing; build it with: cargo build -p handover-cli" >&2
  exit 1
fi
# The emulator: MOTO_SERVER when set, else moto from .venv behind scripts/moto-serial.py.
MOTO=${MOTO_SERVER:-}
if [ -n "$MOTO" ] && [ ! -x "$MOTO" ]; then
  echo "browser-test: MOTO_SERVER=$MOTO is not executable" >&2
  exit 1
fi
if [ -z "$MOTO" ] && [ ! -x .venv/bin/python ]; then
  echo "browser-test: .venv is missing; create the tools with: make tools" >&2
  exit 1
fi

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
wait_for() {
  for _ in $(seq 1 150); do curl -fs "$1" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "browser-test: $1 did not answer" >&2
  return 1
}

MOTO_PORT=$(free_port)
PORT=$(free_port)
work=$(mktemp -d)
export AWS_ENDPOINT_URL="http://127.0.0.1:${MOTO_PORT}"
export AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test TABLE_NAME=handover
export RUST_LOG=warn

pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

if [ -n "$MOTO" ]; then
  "$MOTO" -H 127.0.0.1 -p "$MOTO_PORT" >"$work/moto.log" 2>&1 &
else
  .venv/bin/python scripts/moto-serial.py -H 127.0.0.1 -p "$MOTO_PORT" >"$work/moto.log" 2>&1 &
fi
pids+=($!)
wait_for "${AWS_ENDPOINT_URL}/moto-api/"

"$HANDOVER" table create >/dev/null
"$HANDOVER" secret-put handover/demo/platform '{"signingSecret":"demo-signing-secret"}' >/dev/null
"$HANDOVER" secret-put handover/demo/desk '{"signingSecret":"demo-desk-secret"}' >/dev/null
sed "s#http://127.0.0.1:3000#http://127.0.0.1:${PORT}#g" examples/demo-bot.yaml >"$work/demo-bot.yaml"
"$HANDOVER" --allow-local-urls bot put "$work/demo-bot.yaml" >/dev/null

"$HANDOVER" --allow-local-urls serve --addr "127.0.0.1:${PORT}" --evaluate-every 2 >"$work/serve.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:${PORT}/"

if ! PLAYGROUND_URL="http://127.0.0.1:${PORT}/" SCREENSHOT="$PWD/docs/images/playground.png" \
  node tests/browser/playground.test.js; then
  echo "---- handover serve (last lines) ----" >&2
  tail -n 40 "$work/serve.log" >&2
  exit 1
fi
