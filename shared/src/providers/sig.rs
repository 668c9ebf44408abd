//! Small signature helpers shared by the provider adapters.
//!
//! Most providers sign a callback with an HMAC of the raw body and put the MAC in a header,
//! hex- or base64-encoded. The adapters differ in the key (raw text, hex-decoded, …), the
//! hash and the header syntax, which stay in each adapter; computing the MAC and comparing it
//! with what the header says live here, so every adapter compares in constant time the same
//! way.
//!
//! A header that does not decode (wrong alphabet, odd length) simply does not match: callers
//! answer "unauthenticated" either way, and telling the two apart would only help a forger.

use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use subtle::ConstantTimeEq;

/// HMAC-SHA256 of `body` under `key` (any key length).
pub fn hmac_sha256(key: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// HMAC-SHA1 of `body` under `key` (any key length). SHA-1 is weak as a hash, not as an HMAC;
/// some providers (Intercom, Help Scout) still sign with it.
pub fn hmac_sha1(key: &[u8], body: &[u8]) -> Vec<u8> {
    let mut mac = Hmac::<sha1::Sha1>::new_from_slice(key).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Whether `given_hex` (either case, surrounding whitespace ignored) encodes exactly
/// `expected_mac`. Constant time in the MAC's content.
pub fn matches_hex(expected_mac: &[u8], given_hex: &str) -> bool {
    match hex::decode(given_hex.trim()) {
        Ok(given) => same(expected_mac, &given),
        Err(_) => false,
    }
}

/// Whether `given_b64` (standard alphabet, padded; surrounding whitespace ignored) encodes
/// exactly `expected_mac`. Constant time in the MAC's content.
pub fn matches_base64(expected_mac: &[u8], given_b64: &str) -> bool {
    match base64::engine::general_purpose::STANDARD.decode(given_b64.trim()) {
        Ok(given) => same(expected_mac, &given),
        Err(_) => false,
    }
}

/// Constant-time equality; the length of a MAC is public (it is fixed by the hash).
fn same(expected: &[u8], given: &[u8]) -> bool {
    expected.len() == given.len() && bool::from(expected.ct_eq(given))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 4231, test case 2: key "Jefe", data "what do ya want for nothing?".
    const RFC4231_SHA256: &str = "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";
    // RFC 2202, test case 2 (HMAC-SHA1), same key and data.
    const RFC2202_SHA1: &str = "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79";
    const KEY: &[u8] = b"Jefe";
    const DATA: &[u8] = b"what do ya want for nothing?";

    #[test]
    fn macs_match_the_published_test_vectors() {
        assert_eq!(hex::encode(hmac_sha256(KEY, DATA)), RFC4231_SHA256);
        assert_eq!(hex::encode(hmac_sha1(KEY, DATA)), RFC2202_SHA1);
    }

    #[test]
    fn hex_comparison_accepts_only_the_same_mac() {
        let mac = hmac_sha256(KEY, DATA);
        assert!(matches_hex(&mac, RFC4231_SHA256));
        assert!(matches_hex(&mac, &RFC4231_SHA256.to_uppercase()));
        assert!(matches_hex(&mac, &format!(" {RFC4231_SHA256}\t")));
        let mut other = RFC4231_SHA256.to_owned();
        other.replace_range(0..1, "6");
        assert!(!matches_hex(&mac, &other));
        assert!(!matches_hex(&mac, &RFC4231_SHA256[..62]), "shorter");
        assert!(!matches_hex(&mac, &format!("{RFC4231_SHA256}00")), "longer");
        assert!(!matches_hex(&mac, "not hex at all"));
        assert!(!matches_hex(&mac, ""));
        assert!(!matches_hex(&hmac_sha256(b"other", DATA), RFC4231_SHA256));
    }

    #[test]
    fn base64_comparison_accepts_only_the_same_mac() {
        let mac = hmac_sha1(KEY, DATA);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&mac);
        assert!(matches_base64(&mac, &b64));
        assert!(matches_base64(&mac, &format!("{b64}\n")));
        assert!(
            !matches_base64(&mac, &hex::encode(&mac)),
            "hex is not base64 of the MAC"
        );
        assert!(!matches_base64(&hmac_sha1(b"other", DATA), &b64));
        assert!(!matches_base64(&mac, "%%%"));
        assert!(!matches_base64(&mac, ""));
    }
}
