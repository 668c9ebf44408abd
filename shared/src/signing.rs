//! The HMAC scheme of the native contract and the generic webhook provider:
//! `X-Handover-Signature: v1=<hex HMAC-SHA256(secret, "{timestamp}.{raw body}")>` with
//! `X-Handover-Timestamp` in unix seconds, refused outside a 300 s window to stop replays.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

pub const TIMESTAMP_HEADER: &str = "x-handover-timestamp";
pub const SIGNATURE_HEADER: &str = "x-handover-signature";
pub const REPLAY_WINDOW_SECS: i64 = 300;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("missing X-Handover-Timestamp or X-Handover-Signature header")]
    Missing,
    #[error("malformed X-Handover-Timestamp or X-Handover-Signature header")]
    Malformed,
    #[error("timestamp outside the {REPLAY_WINDOW_SECS} s window")]
    Stale,
    #[error("signature does not match")]
    Mismatch,
}

fn mac(secret: &[u8], timestamp: i64, body: &[u8]) -> Hmac<Sha256> {
    let mut m = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts keys of any length");
    m.update(timestamp.to_string().as_bytes());
    m.update(b".");
    m.update(body);
    m
}

/// The value of the signature header for `body` sent at `timestamp`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    format!(
        "v1={}",
        hex::encode(mac(secret, timestamp, body).finalize().into_bytes())
    )
}

/// Both headers, ready to attach to a request.
pub fn headers(secret: &[u8], timestamp: i64, body: &[u8]) -> [(&'static str, String); 2] {
    [
        (TIMESTAMP_HEADER, timestamp.to_string()),
        (SIGNATURE_HEADER, sign(secret, timestamp, body)),
    ]
}

/// The most values the signature header may carry (several are sent while a secret is being
/// rotated); more is refused as malformed before any MAC is computed.
pub const MAX_SIGNATURE_VALUES: usize = 8;

/// Checks the window first (cheap), then computes the MAC once and compares every `v1=` value
/// with it in constant time; several values may be sent while a secret is being rotated, at
/// most [`MAX_SIGNATURE_VALUES`].
pub fn verify(
    secret: &[u8],
    timestamp: Option<&str>,
    signature: Option<&str>,
    body: &[u8],
    now_unix: i64,
) -> Result<(), SignatureError> {
    let (Some(ts), Some(sig)) = (timestamp, signature) else {
        return Err(SignatureError::Missing);
    };
    let ts: i64 = ts.trim().parse().map_err(|_| SignatureError::Malformed)?;
    // `abs_diff`: the timestamp is outside input, and i64 arithmetic on it could overflow.
    if now_unix.abs_diff(ts) > REPLAY_WINDOW_SECS.unsigned_abs() {
        return Err(SignatureError::Stale);
    }
    if sig.split(',').count() > MAX_SIGNATURE_VALUES {
        return Err(SignatureError::Malformed);
    }
    let expected = mac(secret, ts, body).finalize().into_bytes();
    let mut any = false;
    let mut matched = subtle::Choice::from(0);
    for part in sig.split(',').map(str::trim) {
        let Some(hexsig) = part.strip_prefix("v1=") else {
            continue;
        };
        let Ok(bytes) = hex::decode(hexsig) else {
            continue;
        };
        any = true;
        // Every value is compared, so the time taken says nothing about which one matched.
        if bytes.len() == expected.len() {
            matched |= subtle::ConstantTimeEq::ct_eq(expected.as_slice(), bytes.as_slice());
        }
    }
    if bool::from(matched) {
        Ok(())
    } else if any {
        Err(SignatureError::Mismatch)
    } else {
        Err(SignatureError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_number_of_signature_values_is_capped() {
        let good = sign(b"s3cret", 1_000, b"{}");
        let bad = sign(b"other", 1_000, b"{}");
        let within = [vec![bad.as_str(); MAX_SIGNATURE_VALUES - 1], vec![good.as_str()]].concat();
        assert_eq!(
            verify(b"s3cret", Some("1000"), Some(&within.join(",")), b"{}", 1_000),
            Ok(()),
            "a rotation's values within the cap"
        );
        let over = [vec![bad.as_str(); MAX_SIGNATURE_VALUES], vec![good.as_str()]].concat();
        assert_eq!(
            verify(b"s3cret", Some("1000"), Some(&over.join(",")), b"{}", 1_000),
            Err(SignatureError::Malformed),
            "more values than the cap, even with a good one among them"
        );
    }

    #[test]
    fn signed_body_verifies() {
        let sig = sign(b"s3cret", 1_000, b"{}");
        assert_eq!(verify(b"s3cret", Some("1000"), Some(&sig), b"{}", 1_100), Ok(()));
    }

    #[test]
    fn tampered_body_wrong_secret_and_stale_time_are_refused() {
        let sig = sign(b"s3cret", 1_000, b"{}");
        assert_eq!(
            verify(b"s3cret", Some("1000"), Some(&sig), b"{ }", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"other", Some("1000"), Some(&sig), b"{}", 1_000),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(b"s3cret", Some("1000"), Some(&sig), b"{}", 1_301),
            Err(SignatureError::Stale)
        );
        assert_eq!(
            verify(b"s3cret", Some("1000"), None, b"{}", 1_000),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(b"s3cret", Some("x"), Some(&sig), b"{}", 1_000),
            Err(SignatureError::Malformed)
        );
    }

    #[test]
    fn rotation_accepts_any_listed_signature() {
        let sig = format!("{}, {}", sign(b"old", 5, b"x"), sign(b"new", 5, b"x"));
        assert_eq!(verify(b"new", Some("5"), Some(&sig), b"x", 5), Ok(()));
    }
}
