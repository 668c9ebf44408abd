#!/usr/bin/env bash
# Contract tests: schemathesis generates requests from docs/openapi.yaml and sends them to
# `handover serve` on a local stack (moto, the agent stub, two bots), signed like a real bot
# platform and provider would sign them (handover_hooks.py). Fails on any 5xx and on any
# response that does not conform to the document (status code, content type, body schema).
#
#   CONTRACT_EXAMPLES  examples per operation and phase (default 12)
#   CONTRACT_SEED      schemathesis seed (default 20261125: a run is reproducible)
#
# Called by `make contract-test` after the CLI is built; needs .venv (schemathesis, moto).
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV=.venv
HANDOVER=${CARGO_TARGET_DIR:-target}/debug/handover
for tool in "$VENV/bin/schemathesis" "$VENV/bin/moto_server" "$HANDOVER"; do
    if [[ ! -x "$tool" ]]; then
        echo "FAIL: $tool is missing; run 'make contract-test' (it installs and builds what it needs)" >&2
        exit 1
    fi
done

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
MOTO_PORT=$(free_port)
STUB_PORT=$(free_port)
API_PORT=$(free_port)
WORK=$(mktemp -d)
export AWS_ENDPOINT_URL="http://127.0.0.1:${MOTO_PORT}"
export AWS_REGION=eu-west-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
export TABLE_NAME=contract
export RUST_LOG=${RUST_LOG:-error}

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM

"$VENV/bin/moto_server" -H 127.0.0.1 -p "$MOTO_PORT" >"$WORK/moto.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
    curl -fs "${AWS_ENDPOINT_URL}/moto-api/" >/dev/null 2>&1 && break
    sleep 0.2
done

export CONTRACT_NATIVE_BOT=contract CONTRACT_CHATLAYER_BOT=contract-cl CONTRACT_PROVIDER_ID=desk
export CONTRACT_PLATFORM_SECRET=contract-platform-secret CONTRACT_PROVIDER_SECRET=contract-desk-secret
export CONTRACT_VERIFY_TOKEN=contract-verify-token

$HANDOVER table create --if-missing >/dev/null
$HANDOVER secret-put handover/contract/platform "{\"signingSecret\":\"$CONTRACT_PLATFORM_SECRET\"}" >/dev/null
$HANDOVER secret-put handover/contract/desk "{\"signingSecret\":\"$CONTRACT_PROVIDER_SECRET\"}" >/dev/null
$HANDOVER secret-put handover/contract/chatlayer "{\"verifyToken\":\"$CONTRACT_VERIFY_TOKEN\",\"apiToken\":\"contract-api-token\"}" >/dev/null
cat >"$WORK/native.yaml" <<YAML
botId: contract
platform:
  kind: native
  outboundUrl: http://127.0.0.1:${STUB_PORT}/bot
  secretRef: handover/contract/platform
providers:
  - id: desk
    kind: webhook
    url: http://127.0.0.1:${STUB_PORT}/agent
    secretRef: handover/contract/desk
routing:
  - provider: desk
    queue: general
YAML
cat >"$WORK/chatlayer.yaml" <<YAML
botId: contract-cl
platform:
  kind: chatlayer
  secretRef: handover/contract/chatlayer
  apiBaseUrl: http://127.0.0.1:${STUB_PORT}/chatlayer
providers:
  - id: desk
    kind: webhook
    url: http://127.0.0.1:${STUB_PORT}/agent
    secretRef: handover/contract/desk
routing:
  - provider: desk
    queue: general
YAML
$HANDOVER --allow-local-urls bot put "$WORK/native.yaml" >/dev/null
$HANDOVER --allow-local-urls bot put "$WORK/chatlayer.yaml" >/dev/null

$HANDOVER agent stub --addr "127.0.0.1:${STUB_PORT}" >"$WORK/stub.log" 2>&1 &
pids+=($!)
$HANDOVER --allow-local-urls serve --addr "127.0.0.1:${API_PORT}" >"$WORK/serve.log" 2>&1 &
pids+=($!)
for _ in $(seq 1 150); do
    curl -s -o /dev/null "http://127.0.0.1:${API_PORT}/v1/" && break
    sleep 0.2
done

export PYTHONPATH="$PWD/tests/schemathesis${PYTHONPATH:+:$PYTHONPATH}"
export SCHEMATHESIS_HOOKS=handover_hooks
status=0
# Phases: the document's examples, then generated requests (positive and negative). The
# coverage phase is left out: schemathesis 4.32.5 stops in it with an internal error on this
# document (a recursion error in its Python template generator), not with a finding.
# Run from the scratch directory: schemathesis keeps a cache in ./.schemathesis.
ROOT=$PWD
(cd "$WORK" && "$ROOT/$VENV/bin/schemathesis" run "$ROOT/docs/openapi.yaml" \
    --url "http://127.0.0.1:${API_PORT}" \
    --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,response_headers_conformance \
    --phases examples,fuzzing \
    --max-examples "${CONTRACT_EXAMPLES:-12}" \
    --seed "${CONTRACT_SEED:-20261125}" \
    --workers 2 \
    --generation-database none \
    --request-timeout 10 \
    --no-color \
    --warnings off) || status=$?
echo "answers of handover serve, by status:"
grep -oE -- '-> [0-9]{3}' "$WORK/serve.log" | sort | uniq -c | sed 's/-> //' || true
if (( status != 0 )); then
    echo "--- handover serve (last lines)" >&2
    tail -n 30 "$WORK/serve.log" >&2
    echo "FAIL: contract tests against docs/openapi.yaml" >&2
fi
exit $status
