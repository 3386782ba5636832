//! The handshake's secret: kept out of logs, checked in constant time.
//!
//! An adapter proves it knows `CLARA_GATEWAY_SECRET` in its `hello`, either by
//! sending it (`secret`) or, better, by sending
//! `proof = hex(HMAC-SHA256(key = secret, message = challenge nonce))`, which
//! never puts the secret on the wire and cannot be replayed on another
//! connection (each gets a fresh nonce).

use crate::frames::Hello;
use clara_core::Secret;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The gateway's shared secret (`CLARA_GATEWAY_SECRET`). It is a [`Secret`], so
/// Debug prints `[redacted]`; there is no Display. On the wire (a `hello`'s
/// `secret`) it is a plain string, taken as sent.
#[derive(Clone, Debug)]
pub struct GatewaySecret(Secret);

impl GatewaySecret {
    /// Wraps a secret: a [`Secret`] from the configuration, or a string.
    pub fn new(secret: impl Into<Secret>) -> Self {
        Self(secret.into())
    }

    /// The proof of this secret for a challenge `nonce`: lower-case hex
    /// HMAC-SHA256 keyed with the secret.
    pub fn proof(&self, nonce: &str) -> String {
        let mut mac = hmac_for(self.expose());
        mac.update(nonce.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `proof` is this secret's proof for `nonce`, in constant time.
    pub fn accepts_proof(&self, nonce: &str, proof: &str) -> bool {
        let Some(bytes) = unhex(proof.trim()) else {
            return false;
        };
        let mut mac = hmac_for(self.expose());
        mac.update(nonce.as_bytes());
        mac.verify_slice(&bytes).is_ok()
    }

    /// Whether `other` is the same secret, in constant time. Both are hashed
    /// first, so not even the length is compared early.
    pub fn matches(&self, other: &GatewaySecret) -> bool {
        let mine = Sha256::digest(self.expose().as_bytes());
        let theirs = Sha256::digest(other.expose().as_bytes());
        mine.as_slice().ct_eq(theirs.as_slice()).into()
    }

    /// The secret's text, to hand to a client library. Never log it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

impl From<Secret> for GatewaySecret {
    fn from(secret: Secret) -> Self {
        Self(secret)
    }
}

/// The text itself: an adapter that sends the secret in its `hello` (rather
/// than a proof) puts it on the wire.
impl Serialize for GatewaySecret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose())
    }
}

/// Exactly as sent, not trimmed: a `hello`'s secret must match to the byte.
impl<'de> Deserialize<'de> for GatewaySecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

/// Equality in constant time, so no comparison of secrets leaks timing.
impl PartialEq for GatewaySecret {
    fn eq(&self, other: &Self) -> bool {
        self.matches(other)
    }
}

/// Why a `hello` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// The gateway has a secret and the hello carried neither it nor a proof.
    #[error("This gateway requires the secret: send \"proof\" (or \"secret\") in the hello.")]
    Missing,
    /// The secret or proof does not match.
    #[error("The secret in the hello is wrong.")]
    Wrong,
}

/// Checks a `hello` against the gateway's secret (`None`: none is required) and
/// the nonce of its connection's challenge. A proof, when given, is what counts.
pub fn check_hello(
    expected: Option<&GatewaySecret>,
    nonce: &str,
    hello: &Hello,
) -> Result<(), AuthError> {
    let Some(expected) = expected else {
        return Ok(());
    };
    let ok = match (&hello.proof, &hello.secret) {
        (Some(proof), _) => expected.accepts_proof(nonce, proof),
        (None, Some(secret)) => expected.matches(secret),
        (None, None) => return Err(AuthError::Missing),
    };
    if ok { Ok(()) } else { Err(AuthError::Wrong) }
}

fn hmac_for(secret: &str) -> Hmac<Sha256> {
    // Invariant: HMAC takes keys of any length (long keys are hashed), so this
    // never fails.
    #[allow(clippy::expect_used)]
    <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()).expect("HMAC accepts any key")
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(DIGITS[usize::from(b >> 4)]));
        out.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    let digits = text.as_bytes();
    if !digits.len().is_multiple_of(2) {
        return None;
    }
    let value = |d: u8| {
        char::from(d)
            .to_digit(16)
            .and_then(|v| u8::try_from(v).ok())
    };
    digits
        .chunks_exact(2)
        .map(|pair| Some(value(pair[0])? << 4 | value(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::Capabilities;

    fn hello(secret: Option<&str>, proof: Option<String>) -> Hello {
        Hello {
            platform: "test".into(),
            secret: secret.map(GatewaySecret::new),
            proof,
            capabilities: Capabilities {
                max_message_chars: 100,
                can_edit: false,
                edit_cooldown_ms: None,
                streaming: true,
            },
            adapter: None,
        }
    }

    #[test]
    fn the_proof_is_rfc_4231_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let secret = GatewaySecret::new("Jefe");
        assert_eq!(
            secret.proof("what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn proofs_and_secrets_are_checked() {
        let secret = GatewaySecret::new("s3cret");
        let nonce = "abc123";
        let good = secret.proof(nonce);
        assert_eq!(
            check_hello(Some(&secret), nonce, &hello(None, Some(good.clone()))),
            Ok(())
        );
        assert_eq!(
            check_hello(
                Some(&secret),
                nonce,
                &hello(None, Some(good.to_uppercase()))
            ),
            Ok(())
        );
        assert_eq!(
            check_hello(Some(&secret), "another nonce", &hello(None, Some(good))),
            Err(AuthError::Wrong),
            "a proof is bound to its connection's nonce"
        );
        assert_eq!(
            check_hello(Some(&secret), nonce, &hello(Some("s3cret"), None)),
            Ok(())
        );
        assert_eq!(
            check_hello(Some(&secret), nonce, &hello(Some("s3cret!"), None)),
            Err(AuthError::Wrong)
        );
        assert_eq!(
            check_hello(Some(&secret), nonce, &hello(None, Some("zz".into()))),
            Err(AuthError::Wrong)
        );
        assert_eq!(
            check_hello(Some(&secret), nonce, &hello(None, None)),
            Err(AuthError::Missing)
        );
        assert_eq!(check_hello(None, nonce, &hello(None, None)), Ok(()));
    }

    #[test]
    fn the_secret_never_shows_in_debug() {
        let h = hello(Some("hunter2"), None);
        assert!(!format!("{h:?}").contains("hunter2"));
        let shown = format!("{:?}", GatewaySecret::new("hunter2"));
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("[redacted]"), "{shown}");
    }

    #[test]
    fn hex_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        assert_eq!(unhex(&hex(&bytes)).unwrap(), bytes);
        assert_eq!(unhex("abc"), None);
        assert_eq!(unhex("gg"), None);
        assert_eq!(unhex("+1"), None);
    }
}
