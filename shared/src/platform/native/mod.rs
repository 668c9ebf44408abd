//! Our own signed JSON contract for bot platforms (docs/api.md, docs/openapi.yaml): `inbound`
//! reads the bot's events into the core's input, `outbound` posts our events to the bot's
//! `outboundUrl`; the answers and the session read are here.

mod inbound;
mod outbound;

use serde_json::{Value, json};

use crate::domain::{Reply, Session};
use crate::platform::PlatformRoute;

pub use inbound::{
    EVENT_TYPES, FieldProblem, MAX_ID_LEN, MAX_TEXT_LEN, NativeEvent, NativeMessage, NativePort,
    session_read_signed_bytes,
};
pub use outbound::{NativePlatform, outbound_body};

/// The native contract's routes: signed events, and the signed read of a session.
pub const ROUTES: &[PlatformRoute] = &[
    PlatformRoute {
        method: "POST",
        path: "/v1/bots/{botId}/events",
    },
    PlatformRoute {
        method: "GET",
        path: "/v1/bots/{botId}/sessions/{sessionId}",
    },
];

/// The field of the bot's platform secret that signs both ways.
pub const SIGNING_SECRET_FIELD: &str = "signingSecret";

/// The JSON answer of the contract for a reply.
pub fn reply_body(reply: &Reply) -> Value {
    match reply {
        Reply::Message { control, state } => json!({ "control": control, "state": state }),
        Reply::Handover {
            outcome,
            state,
            handover_id,
            dialog,
            next_opening,
            reason,
        } => {
            let mut v = json!({ "outcome": outcome, "state": state, "dialog": dialog });
            if let Some(id) = handover_id {
                v["handoverId"] = json!(id);
            }
            if let Some(at) = next_opening {
                v["nextOpening"] = json!(at);
            }
            if let Some(r) = reason {
                v["reason"] = json!(r);
            }
            v
        }
        Reply::Cancelled {
            state,
            handover_id,
            reason,
        } => {
            json!({ "state": state, "handoverId": handover_id, "reason": reason })
        }
        Reply::Accepted { .. } => json!({ "status": "ok" }),
    }
}

/// The session as `GET /v1/bots/{botId}/sessions/{sessionId}` shows it.
pub fn session_body(session: &Session) -> Value {
    let mut v = json!({
        "botId": session.bot_id,
        "sessionId": session.session_id,
        "state": session.state,
        "control": session.state.control(),
        "messages": session.seq,
        "updatedAt": session.updated_at,
    });
    if let Some(h) = &session.handover {
        v["handover"] = json!(h);
    }
    if let Some(h) = &session.last_handover {
        v["lastHandover"] = json!(h);
        if let Some(r) = h.end_reason {
            v["endReason"] = json!(r);
        }
    }
    v
}
