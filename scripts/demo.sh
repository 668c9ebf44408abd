#!/usr/bin/env bash
# Sends a signed native event to the local stack, as a bot platform would.
#   scripts/demo.sh message "text"      a user message
#   scripts/demo.sh handover [trigger]  a handover request (default explicit_request)
#   scripts/demo.sh cancel              the user stops waiting
#   scripts/demo.sh session             GET the session
# SESSION (default s-1), BOT (default demo) and URL (default http://127.0.0.1:3000) can be set.
set -euo pipefail
cd "$(dirname "$0")/.."
BOT=${BOT:-demo}; SESSION=${SESSION:-s-1}; URL=${URL:-http://127.0.0.1:3000}
HANDOVER=target/debug/handover
id="evt-$(date +%s%N)"
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
body=$(mktemp)
case "${1:-}" in
  message) printf '{"id":"%s","type":"message","sessionId":"%s","timestamp":"%s","channel":"web","user":{"id":"u-1","name":"Ann","locale":"en"},"message":{"actor":"user","text":"%s"}}' "$id" "$SESSION" "$now" "${2:-Hello}" >"$body" ;;
  handover) printf '{"id":"%s","type":"handover.request","sessionId":"%s","timestamp":"%s","handover":{"trigger":"%s","variables":{"orderId":"A-1"}}}' "$id" "$SESSION" "$now" "${2:-explicit_request}" >"$body" ;;
  cancel) printf '{"id":"%s","type":"handover.cancel","sessionId":"%s","timestamp":"%s"}' "$id" "$SESSION" "$now" >"$body" ;;
  session)
    # A session read signs its method and path, not a body.
    printf 'GET /v1/bots/%s/sessions/%s' "$BOT" "$SESSION" >"$body"
    eval "curl -s $($HANDOVER sign --secret-ref handover/$BOT/platform --body "$body" --curl) $URL/v1/bots/$BOT/sessions/$SESSION"; echo; exit 0 ;;
  *) echo "usage: $0 message TEXT | handover [TRIGGER] | cancel | session" >&2; exit 2 ;;
esac
eval "curl -s -H 'content-type: application/json' $($HANDOVER sign --secret-ref handover/$BOT/platform --body "$body" --curl) --data-binary @$body $URL/v1/bots/$BOT/events"
echo
