//! How a provider authenticates its callbacks, as data ([`CallbackAuth`]).
//!
//! Providers do one of two things: send a shared token in a header (Zendesk's `X-API-Key`,
//! Engage's `X-Dimelo-Secret`, #Interact's configurable header), or sign the raw body with an
//! HMAC and put the MAC in a header, hex or base64, sometimes after a `sha1=` prefix (Intercom,
//! Genesys, Help Scout, Sparkcentral). An adapter states which, and [`CallbackAuth::verify`]
//! checks it the same way for all: in constant time, the header looked up case-insensitively,
//! a MAC that does not decode treated like one that does not match (telling the two apart
//! would only help a forger). [`CallbackAuth::sign`] makes the header value, so tests sign
//! exactly as the verifier checks.

use std::borrow::Cow;

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Digest;
use subtle::ConstantTimeEq;

/// The hash of an HMAC signature. SHA-1 is weak as a hash, not as an HMAC; Intercom and Help
/// Scout still sign with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    Sha1,
    Sha256,
}

/// How the MAC is written in the header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// Either case accepted; lowercase when signing.
    Hex,
    /// Standard alphabet, padded.
    Base64,
}

/// One provider's callback authentication.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallbackAuth {
    /// The secret itself, in `header`, after `scheme` and a space when there is one
    /// (`Authorization: Bearer <token>`; the scheme's case is ignored).
    SharedToken {
        header: Cow<'static, str>,
        scheme: Cow<'static, str>,
    },
    /// An HMAC of the raw body keyed with the secret, in `header`, after `prefix` (case
    /// ignored). With `compact_json_too`, a body with insignificant whitespace is also checked
    /// in its compact form (Genesys signs `JSON.stringify` of the parsed body).
    BodyHmac {
        header: Cow<'static, str>,
        algorithm: Algorithm,
        encoding: Encoding,
        prefix: &'static str,
        compact_json_too: bool,
    },
}

impl CallbackAuth {
    /// A token in a fixed header, without a scheme.
    pub const fn token_in(header: &'static str) -> Self {
        CallbackAuth::SharedToken {
            header: Cow::Borrowed(header),
            scheme: Cow::Borrowed(""),
        }
    }

    /// An HMAC of the body in a fixed header.
    pub const fn hmac(header: &'static str, algorithm: Algorithm, encoding: Encoding, prefix: &'static str) -> Self {
        CallbackAuth::BodyHmac {
            header: Cow::Borrowed(header),
            algorithm,
            encoding,
            prefix,
            compact_json_too: false,
        }
    }

    /// The header this authentication is read from.
    pub fn header(&self) -> &str {
        match self {
            CallbackAuth::SharedToken { header, .. } | CallbackAuth::BodyHmac { header, .. } => header,
        }
    }

    /// Whether the request carries this authentication, valid for `secret`. An empty secret
    /// authenticates nobody: a MAC keyed with it is one anyone can compute.
    pub fn verify(&self, secret: &[u8], request: &CallbackRequest<'_>) -> Result<(), CallbackError> {
        let name = self.header();
        if secret.is_empty() {
            return Err(CallbackError::Unauthenticated("the provider's secret is empty".into()));
        }
        let given = request
            .header(name)
            .ok_or_else(|| CallbackError::Unauthenticated(format!("missing {name} header")))?;
        if self.matches(secret, given, request.body) {
            Ok(())
        } else {
            Err(CallbackError::Unauthenticated(match self {
                CallbackAuth::SharedToken { .. } => format!("{name} does not match the secret"),
                CallbackAuth::BodyHmac { .. } => format!("{name} does not match the body"),
            }))
        }
    }

    /// Whether the header value `given` is valid for `secret` and `body`.
    pub fn matches(&self, secret: &[u8], given: &str, body: &[u8]) -> bool {
        match self {
            CallbackAuth::SharedToken { scheme, .. } => same_secret(secret, strip_prefix(given.trim(), scheme, true)),
            CallbackAuth::BodyHmac {
                algorithm,
                encoding,
                prefix,
                compact_json_too,
                ..
            } => {
                let given = strip_prefix(given.trim(), prefix, false);
                let Some(mac) = decode(*encoding, given) else {
                    return false;
                };
                if same(&hmac(*algorithm, secret, body), &mac) {
                    return true;
                }
                if !compact_json_too {
                    return false;
                }
                let compact = compact_json(body);
                compact.as_slice() != body && same(&hmac(*algorithm, secret, &compact), &mac)
            }
        }
    }

    /// The header value a provider would send for `body`: what tests sign callbacks with.
    pub fn sign(&self, secret: &[u8], body: &[u8]) -> String {
        match self {
            CallbackAuth::SharedToken { scheme, .. } => {
                let token = String::from_utf8_lossy(secret);
                if scheme.is_empty() {
                    token.into_owned()
                } else {
                    format!("{scheme} {token}")
                }
            }
            CallbackAuth::BodyHmac {
                algorithm,
                encoding,
                prefix,
                ..
            } => {
                let mac = hmac(*algorithm, secret, body);
                let text = match encoding {
                    Encoding::Hex => hex::encode(mac),
                    Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(mac),
                };
                format!("{prefix}{text}")
            }
        }
    }
}

/// Whether `given` is the shared secret, compared in constant time; an empty value never is.
/// Digests first: equal lengths, so the comparison says nothing about the secret's length
/// either. Also for secrets that travel elsewhere than in a header (Engage's
/// `hub.verify_token` query parameter).
pub fn same_secret(secret: &[u8], given: &str) -> bool {
    !given.is_empty()
        && bool::from(
            sha2::Sha256::digest(given.as_bytes())
                .as_slice()
                .ct_eq(sha2::Sha256::digest(secret).as_slice()),
        )
}

/// `value` without `prefix` (case ignored). A scheme must be followed by whitespace; without
/// the prefix the value is taken whole for a scheme (a bare token) and refused for a MAC prefix.
fn strip_prefix<'a>(value: &'a str, prefix: &str, scheme: bool) -> &'a str {
    if prefix.is_empty() {
        return value;
    }
    let head = value.get(..prefix.len());
    let rest = value.get(prefix.len()..).unwrap_or_default();
    match head {
        Some(h) if h.eq_ignore_ascii_case(prefix) && !scheme => rest,
        Some(h) if h.eq_ignore_ascii_case(prefix) && rest.starts_with(char::is_whitespace) => rest.trim(),
        _ if scheme => value,
        _ => "",
    }
}

fn decode(encoding: Encoding, text: &str) -> Option<Vec<u8>> {
    match encoding {
        Encoding::Hex => hex::decode(text.trim()).ok(),
        Encoding::Base64 => base64::engine::general_purpose::STANDARD.decode(text.trim()).ok(),
    }
}

fn hmac(algorithm: Algorithm, key: &[u8], body: &[u8]) -> Vec<u8> {
    match algorithm {
        Algorithm::Sha1 => {
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC accepts keys of any length");
            mac.update(body);
            mac.finalize().into_bytes().to_vec()
        }
        Algorithm::Sha256 => {
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
            mac.update(body);
            mac.finalize().into_bytes().to_vec()
        }
    }
}

/// Constant-time equality; the length of a MAC is public (it is fixed by the hash).
fn same(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len() && bool::from(expected.ct_eq(given))
}

/// Removes whitespace outside JSON strings (what `JSON.stringify(JSON.parse(body))` does to
/// layout; escapes and number forms are left as they are).
pub fn compact_json(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in body {
        if in_string {
            out.push(b);
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
        } else if !matches!(b, b' ' | b'\n' | b'\r' | b'\t') {
            if b == b'"' {
                in_string = true;
            }
            out.push(b);
        }
    }
    out
}

/// An inbound callback, as raw as it arrived: verification needs the exact bytes.
#[derive(Debug, Clone)]
pub struct CallbackRequest<'a> {
    pub method: &'a str,
    pub headers: &'a lambda_http::http::HeaderMap,
    pub query: &'a [(String, String)],
    pub body: &'a [u8],
}

impl CallbackRequest<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("callback not authenticated: {0}")]
    Unauthenticated(String),
    #[error("malformed callback: {0}")]
    Malformed(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231 test case 2 (HMAC-SHA256) and RFC 2202 test case 2 (HMAC-SHA1): key "Jefe",
    // data "what do ya want for nothing?".
    const RFC4231_SHA256: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    const RFC2202_SHA1: &str = "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79";
    const KEY: &[u8] = b"Jefe";
    const DATA: &[u8] = b"what do ya want for nothing?";

    fn request<'a>(headers: &'a lambda_http::http::HeaderMap, body: &'a [u8]) -> CallbackRequest<'a> {
        CallbackRequest {
            method: "POST",
            headers,
            query: &[],
            body,
        }
    }

    fn with(name: &'static str, value: &str) -> lambda_http::http::HeaderMap {
        let mut h = lambda_http::http::HeaderMap::new();
        h.insert(name, value.parse().unwrap());
        h
    }

    #[test]
    fn macs_match_the_published_test_vectors() {
        let sha256 = CallbackAuth::hmac("x-sig", Algorithm::Sha256, Encoding::Hex, "");
        assert_eq!(sha256.sign(KEY, DATA), RFC4231_SHA256);
        let sha1 = CallbackAuth::hmac("x-sig", Algorithm::Sha1, Encoding::Hex, "sha1=");
        assert_eq!(sha1.sign(KEY, DATA), format!("sha1={RFC2202_SHA1}"));
    }

    #[test]
    fn an_empty_secret_authenticates_nobody() {
        let auth = CallbackAuth::hmac("x-sig", Algorithm::Sha256, Encoding::Hex, "");
        // Anyone can compute a MAC keyed with nothing.
        let forged = auth.sign(b"", DATA);
        assert!(auth.verify(b"", &request(&with("x-sig", &forged), DATA)).is_err());
        let token = CallbackAuth::token_in("x-api-key");
        assert!(token.verify(b"", &request(&with("x-api-key", ""), DATA)).is_err());
    }

    #[test]
    fn a_body_hmac_accepts_only_its_own_signature() {
        for auth in [
            CallbackAuth::hmac("x-sig", Algorithm::Sha256, Encoding::Hex, ""),
            CallbackAuth::hmac("x-sig", Algorithm::Sha1, Encoding::Hex, "sha1="),
            CallbackAuth::hmac("x-sig", Algorithm::Sha256, Encoding::Base64, "sha256="),
            CallbackAuth::hmac("x-sig", Algorithm::Sha1, Encoding::Base64, ""),
        ] {
            let good = auth.sign(KEY, DATA);
            let h = with("x-sig", &good);
            assert_eq!(auth.verify(KEY, &request(&h, DATA)), Ok(()), "{auth:?}");
            let h = with("X-SIG", &format!(" {} ", good.to_uppercase().replace("SHA", "sha")));
            if matches!(
                auth,
                CallbackAuth::BodyHmac {
                    encoding: Encoding::Hex,
                    ..
                }
            ) {
                assert_eq!(auth.verify(KEY, &request(&h, DATA)), Ok(()), "hex in either case");
            }
            // Tampered body, wrong secret, missing header, garbage, truncated.
            assert!(
                auth.verify(KEY, &request(&with("x-sig", &good), b"what do ya want for something?"))
                    .is_err()
            );
            assert!(auth.verify(b"other", &request(&with("x-sig", &good), DATA)).is_err());
            let missing = auth.verify(KEY, &request(&lambda_http::http::HeaderMap::new(), DATA));
            assert_eq!(
                missing,
                Err(CallbackError::Unauthenticated("missing x-sig header".into()))
            );
            assert!(auth.verify(KEY, &request(&with("x-sig", "%%%"), DATA)).is_err());
            assert!(
                auth.verify(KEY, &request(&with("x-sig", &good[..good.len() - 2]), DATA))
                    .is_err()
            );
        }
    }

    #[test]
    fn a_prefix_is_required_when_there_is_one() {
        let auth = CallbackAuth::hmac("x-sig", Algorithm::Sha1, Encoding::Hex, "sha1=");
        assert!(!auth.matches(KEY, RFC2202_SHA1, DATA));
        assert!(auth.matches(KEY, &format!("SHA1={RFC2202_SHA1}"), DATA));
    }

    #[test]
    fn compact_json_is_checked_only_when_asked() {
        let mut auth = CallbackAuth::hmac("x-sig", Algorithm::Sha256, Encoding::Base64, "sha256=");
        let signed = auth.sign(KEY, br#"{"a":"b c","d":[1,2]}"#);
        let pretty = b"{ \"a\": \"b c\",\n  \"d\": [1, 2] }";
        assert!(!auth.matches(KEY, &signed, pretty));
        if let CallbackAuth::BodyHmac { compact_json_too, .. } = &mut auth {
            *compact_json_too = true;
        }
        assert!(auth.matches(KEY, &signed, pretty));
        assert!(
            !auth.matches(KEY, &signed, b"{ \"a\": \"bc\", \"d\": [1, 2] }"),
            "inside strings, spaces count"
        );
    }

    #[test]
    fn a_shared_token_is_compared_whole_after_its_scheme() {
        let plain = CallbackAuth::token_in("x-api-key");
        assert_eq!(plain.sign(b"s3cret", b"ignored"), "s3cret");
        assert!(plain.matches(b"s3cret", " s3cret ", b""));
        assert!(!plain.matches(b"s3cret", "s3cre", b""));
        assert!(!plain.matches(b"s3cret", "s3cret2", b""));
        assert!(!plain.matches(b"", "", b""), "an empty token never matches");
        let bearer = CallbackAuth::SharedToken {
            header: "authorization".into(),
            scheme: "Bearer".into(),
        };
        assert_eq!(bearer.sign(b"t", b""), "Bearer t");
        assert!(bearer.matches(b"t", "bearer t", b""));
        assert!(bearer.matches(b"t", "t", b""), "a bare token is taken whole");
        assert!(!bearer.matches(b"t", "Bearer", b""));
        assert!(!bearer.matches(b"t", "Basic t", b""));
        assert!(bearer.matches(b"t", "Bearer   t ", b""), "blanks around the token");
        assert!(
            bearer.matches(b"Bearert", "Bearert", b""),
            "the scheme word must be followed by a blank to count as one"
        );
        let h = with("authorization", "Bearer nope");
        assert_eq!(
            bearer.verify(b"t", &request(&h, b"")),
            Err(CallbackError::Unauthenticated(
                "authorization does not match the secret".into()
            ))
        );
    }
}
