#!/usr/bin/env python3
"""Recompute the signature headers of the sample Lambda events in events/.

Signing scheme (DESIGN.md section 4.1), also used by the generic webhook provider (4.3):

    x-handover-timestamp: <unix seconds>
    x-handover-signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{raw body}")>

Which secret signs which file:
    events/bot-*.json       the bot platform's secret  (demo-signing-secret)
    events/provider-*.json  provider "desk"'s secret    (demo-desk-secret)
Other files (schedule.json) are not HTTP requests and are left alone.

Every event is signed with one fixed timestamp (1795600800 = 2026-11-25T10:00:00Z), so
tests must set their clock to it (the replay window is 300 s). A request without a body
(GET) is signed over "GET {path}" instead (the request's method and path from /v1/ on), so
that a signature for one session cannot read another. The content-length header, when present, is
recomputed too, so edit a body and run this script again.

Usage:
    python3 scripts/sign-events.py            # rewrite events/*.json in place
    python3 scripts/sign-events.py --check    # verify only; exit 1 if any file is stale
    python3 scripts/sign-events.py --dir DIR  # another events directory

Python 3 standard library only.
"""

import argparse
import base64
import hashlib
import hmac
import json
import sys
from pathlib import Path

TIMESTAMP = 1795600800
SECRETS = {
    "bot-": "demo-signing-secret",
    "provider-": "demo-desk-secret",
}
TS_HEADER = "x-handover-timestamp"
SIG_HEADER = "x-handover-signature"


def signature(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), f"{timestamp}.".encode("ascii") + body, hashlib.sha256)
    return "v1=" + mac.hexdigest()


def raw_body(event: dict) -> bytes:
    body = event.get("body")
    if body is None:
        return b""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8")


def secret_for(path: Path):
    for prefix, secret in SECRETS.items():
        if path.name.startswith(prefix):
            return secret
    return None


def sign(event: dict, secret: str) -> dict:
    """Return a copy of the event with fresh signature headers (key order kept)."""
    body = raw_body(event)
    signed = body
    if event.get("requestContext", {}).get("http", {}).get("method") == "GET":
        path = event["rawPath"]
        signed = ("GET " + path[path.find("/v1/"):]).encode("utf-8")
    headers = dict(event.get("headers") or {})
    headers[TS_HEADER] = str(TIMESTAMP)
    headers[SIG_HEADER] = signature(secret, TIMESTAMP, signed)
    if "content-length" in headers:
        headers["content-length"] = str(len(body))
    out = dict(event)
    out["headers"] = headers
    return out


def render(event: dict) -> str:
    return json.dumps(event, indent=2, ensure_ascii=False) + "\n"


def main() -> int:
    default_dir = Path(__file__).resolve().parent.parent / "events"
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", type=Path, default=default_dir, help="events directory (default: %(default)s)")
    ap.add_argument("--check", action="store_true", help="only verify; exit 1 if a file needs re-signing")
    args = ap.parse_args()

    files = sorted(args.dir.glob("*.json"))
    if not files:
        print(f"no events found in {args.dir}", file=sys.stderr)
        return 1

    stale = 0
    for path in files:
        secret = secret_for(path)
        if secret is None:
            print(f"skip    {path.name}")
            continue
        text = path.read_text(encoding="utf-8")
        event = json.loads(text)
        if not isinstance(event.get("headers"), dict):
            print(f"{path.name}: has no headers object, not an HTTP API event", file=sys.stderr)
            return 1
        new_text = render(sign(event, secret))
        if new_text == text:
            print(f"ok      {path.name}")
        elif args.check:
            print(f"STALE   {path.name}")
            stale += 1
        else:
            path.write_text(new_text, encoding="utf-8")
            print(f"signed  {path.name}")

    if stale:
        print(f"{stale} file(s) need re-signing: python3 scripts/sign-events.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
