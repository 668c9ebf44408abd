#!/usr/bin/env bash
# Starts the local stack: moto (DynamoDB + Secrets Manager), the table, the demo bot and its
# secrets, and `handover serve` with the playground at /. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."

MOTO_PORT=${MOTO_PORT:-5005}
export AWS_ENDPOINT_URL="http://127.0.0.1:${MOTO_PORT}"
export AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export TABLE_NAME=${TABLE_NAME:-handover}
export RUST_LOG=${RUST_LOG:-warn}
HANDOVER=target/debug/handover

pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT INT TERM

.venv/bin/python scripts/moto-serial.py -H 127.0.0.1 -p "$MOTO_PORT" >/tmp/handover-moto.log 2>&1 &
pids+=($!)
for _ in $(seq 1 100); do
  curl -fs "${AWS_ENDPOINT_URL}/moto-api/" >/dev/null 2>&1 && break
  sleep 0.1
done

$HANDOVER table create --if-missing
$HANDOVER secret-put handover/demo/platform '{"signingSecret":"demo-signing-secret"}'
$HANDOVER secret-put handover/demo/desk '{"signingSecret":"demo-desk-secret"}'
$HANDOVER --allow-local-urls bot put examples/demo-bot.yaml

cat <<'TXT'

handover is running on http://127.0.0.1:3000 with the demo bot "demo".

  Open the playground in a browser:  http://127.0.0.1:3000/
  (a chat with the demo bot, the agent desk, each session's timeline, operator controls)

handover serve prints below what the demo bot and the agent desk receive.
Or drive it by hand, in another terminal (same directory):

  export AWS_ENDPOINT_URL=http://127.0.0.1:5005 AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
  scripts/demo.sh message "Where is my parcel?"      # the bot answers: control bot
  scripts/demo.sh handover                           # outcome opened; the desk gets conversation.started
  scripts/demo.sh message "Are you there?"           # still the bot; mirrored to the agent
  target/debug/handover agent send agent.joined --conversation <handoverId>
  scripts/demo.sh message "Hi Eva"                   # control agent
  target/debug/handover agent send agent.message --conversation <handoverId> --text "Hi Ann!"
  target/debug/handover agent send conversation.closed --conversation <handoverId>
  target/debug/handover session show demo s-1

TXT
$HANDOVER --allow-local-urls serve --addr 127.0.0.1:3000 &
pids+=($!)
wait "${pids[-1]}"
