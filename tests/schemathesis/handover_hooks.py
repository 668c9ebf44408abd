"""Schemathesis hooks for the contract tests (tests/schemathesis/run.sh).

Requests are signed like a real bot platform or provider signs them: after schemathesis has
serialised the body, a `requests` auth callable adds `X-Handover-Timestamp` and
`X-Handover-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{raw body}")>` over the exact
bytes sent. Path parameters are pointed at the bots run.sh configured, so the generated requests
reach the handlers' logic instead of stopping at "unknown bot"; one request in eight keeps the
generated ids, so the unknown-bot and unknown-provider paths are covered too.
"""

import hashlib
import hmac
import os
import time

import requests
import schemathesis

NATIVE_BOT = os.environ.get("CONTRACT_NATIVE_BOT", "contract")
CHATLAYER_BOT = os.environ.get("CONTRACT_CHATLAYER_BOT", "contract-cl")
PLATFORM_SECRET = os.environ.get("CONTRACT_PLATFORM_SECRET", "").encode()
PROVIDER_ID = os.environ.get("CONTRACT_PROVIDER_ID", "desk")
PROVIDER_SECRET = os.environ.get("CONTRACT_PROVIDER_SECRET", "").encode()
VERIFY_TOKEN = os.environ.get("CONTRACT_VERIFY_TOKEN", "")


class HandoverSignature(requests.auth.AuthBase):
    """Signs the prepared request's raw body with the native scheme."""

    def __init__(self, secret: bytes):
        self.secret = secret

    def __call__(self, r):
        body = r.body or b""
        if isinstance(body, str):
            body = body.encode()
        ts = str(int(time.time()))
        mac = hmac.new(self.secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        r.headers["X-Handover-Timestamp"] = ts
        r.headers["X-Handover-Signature"] = "v1=" + mac
        return r


def _keep_generated(value) -> bool:
    # A stable one-in-eight choice, so a run is reproducible from schemathesis's seed.
    return hashlib.sha256(repr(value).encode()).digest()[0] % 8 == 0


@schemathesis.hook
def map_path_parameters(ctx, path_parameters):
    if path_parameters is None or _keep_generated(path_parameters):
        return path_parameters
    path = ctx.operation.path
    if "botId" in path_parameters:
        path_parameters["botId"] = CHATLAYER_BOT if path.endswith("/chatlayer") else NATIVE_BOT
    if "providerId" in path_parameters:
        path_parameters["providerId"] = PROVIDER_ID
    return path_parameters


@schemathesis.hook
def before_call(ctx, case, kwargs):
    path = case.operation.path
    if path.endswith("/chatlayer"):
        # Chatlayer authenticates with its verify token in the query string, not a signature.
        query = dict(case.query or {})
        query.setdefault("challenge.verifyToken", VERIFY_TOKEN)
        case.query = query
    elif "/providers/" in path:
        kwargs["auth"] = HandoverSignature(PROVIDER_SECRET)
    else:
        kwargs["auth"] = HandoverSignature(PLATFORM_SECRET)
