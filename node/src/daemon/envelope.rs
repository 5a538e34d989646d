//! What travels in one transport message: an engine message, a hello, or
//! content locations.
//!
//! The hello is the node-level handshake after a connection. It says which
//! scopes the sender holds and wants, delivers the tokens it issued to the
//! receiver (grants made while they were apart), shows the tokens it holds
//! (so a relay can check its read rights), and carries revocations the
//! receiver should know of. Everything in it is checked by the receiver;
//! nothing in it is trusted for being in a hello.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest hello accepted (the transport carries up to 4 MiB).
const MAX_HELLO: usize = 2 << 20;
/// Most tokens of one kind in a hello: a lab may grant a peer one token
/// per shared collection. A token is ~300 B (4 KiB at most, 8 blocks), so
/// a hello stays well under `MAX_HELLO` in practice; one over it is refused
/// whole, and the sender's grants then reach the peer by `token add`.
pub const MAX_HELLO_TOKENS: usize = 2048;
/// Most scopes in a hello.
pub const MAX_HELLO_SCOPES: usize = 4096;
/// Most (hash, holder) pairs in one locations message.
pub const MAX_LOCATIONS: usize = 4096;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's instance uid and name, for `subscribe <peer> instance`.
    pub instance_uid: String,
    pub name: String,
    /// Scopes the sender holds (its own shares and its subscriptions): the
    /// two sides sync the scopes both hold, each sending only what the
    /// other may read.
    pub holds: Vec<String>,
    /// Scopes the sender subscribes to.
    pub subscriptions: Vec<String>,
    /// Tokens the sender issued to the receiver.
    pub offers: Vec<String>,
    /// Tokens the sender holds for the scopes it subscribes to.
    pub presents: Vec<String>,
    /// Revocations the receiver should know of.
    pub revocations: Vec<RevocationNotice>,
}

/// A revoked block, with the token that contains it (so the receiver can
/// check that the sender may revoke it) and when it was revoked.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationNotice {
    pub token: String,
    pub block: String,
    pub revoked_at: i64,
    pub reason: Option<String>,
}

/// Content held by a node, by BLAKE3 hash (hex) and holder (PeerId).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Location {
    pub hash: String,
    pub holder: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Envelope {
    Engine(Vec<u8>),
    Hello(Box<Hello>),
    Locations(Vec<Location>),
    /// "Send me your summaries of these scopes now": a one-shot round that
    /// has caught up asks, instead of waiting for the peer's next timer,
    /// to learn that both sides agree.
    Check(Vec<String>),
}

const ENGINE: u8 = 1;
const HELLO: u8 = 2;
const LOCATIONS: u8 = 3;
const CHECK: u8 = 4;

impl Envelope {
    pub fn encode(&self) -> Vec<u8> {
        let (tag, body) = match self {
            Envelope::Engine(bytes) => {
                let mut out = Vec::with_capacity(bytes.len() + 1);
                out.push(ENGINE);
                out.extend_from_slice(bytes);
                return out;
            }
            Envelope::Hello(h) => (HELLO, serde_json::to_vec(h)),
            Envelope::Locations(l) => (LOCATIONS, serde_json::to_vec(l)),
            Envelope::Check(scopes) => (CHECK, serde_json::to_vec(scopes)),
        };
        let mut out = vec![tag];
        // Serializing plain strings and integers cannot fail.
        out.extend(body.unwrap_or_default());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<Envelope> {
        let bad =
            |why: &str| Error::InvalidArgument(format!("malformed message from a peer: {why}"));
        match bytes.split_first() {
            Some((&ENGINE, rest)) => Ok(Envelope::Engine(rest.to_vec())),
            Some((&HELLO | &LOCATIONS | &CHECK, rest)) if rest.len() > MAX_HELLO => {
                Err(bad("a hello or location list that is too large"))
            }
            Some((&HELLO, rest)) => {
                let hello: Hello =
                    serde_json::from_slice(rest).map_err(|_| bad("a hello that is not valid"))?;
                let too_many = hello.holds.len() > MAX_HELLO_SCOPES
                    || hello.subscriptions.len() > MAX_HELLO_SCOPES
                    || hello.offers.len() > MAX_HELLO_TOKENS
                    || hello.presents.len() > MAX_HELLO_TOKENS
                    || hello.revocations.len() > MAX_HELLO_TOKENS;
                if too_many {
                    return Err(bad("a hello with too many entries"));
                }
                Ok(Envelope::Hello(Box::new(hello)))
            }
            Some((&LOCATIONS, rest)) => {
                let list: Vec<Location> = serde_json::from_slice(rest)
                    .map_err(|_| bad("a location list that is not valid"))?;
                if list.len() > MAX_LOCATIONS {
                    return Err(bad("a location list with too many entries"));
                }
                Ok(Envelope::Locations(list))
            }
            Some((&CHECK, rest)) => {
                let scopes: Vec<String> =
                    serde_json::from_slice(rest).map_err(|_| bad("a check that is not valid"))?;
                if scopes.len() > MAX_HELLO_SCOPES {
                    return Err(bad("a check of too many scopes"));
                }
                Ok(Envelope::Check(scopes))
            }
            Some((tag, _)) => Err(bad(&format!("unknown kind {tag}"))),
            None => Err(bad("empty")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hello() -> Hello {
        Hello {
            instance_uid: "u".into(),
            name: "n".into(),
            holds: vec!["instance:x".into()],
            subscriptions: vec!["s".into()],
            offers: vec![],
            presents: vec![],
            revocations: vec![RevocationNotice {
                token: "t".into(),
                block: "b".into(),
                revoked_at: 5,
                reason: None,
            }],
        }
    }

    #[test]
    fn round_trips_and_refuses_garbage() {
        let h = Envelope::Hello(Box::new(hello()));
        assert_eq!(Envelope::decode(&h.encode()).unwrap(), h);
        let e = Envelope::Engine(vec![9, 9]);
        assert_eq!(Envelope::decode(&e.encode()).unwrap(), e);
        let c = Envelope::Check(vec!["instance:x".into()]);
        assert_eq!(Envelope::decode(&c.encode()).unwrap(), c);
        let l = Envelope::Locations(vec![Location {
            hash: "ab".into(),
            holder: "p".into(),
        }]);
        assert_eq!(Envelope::decode(&l.encode()).unwrap(), l);
        for bad in [&[][..], &[7, 1][..], &[2, b'{'][..], &[3, b'['][..]] {
            assert!(Envelope::decode(bad).is_err());
        }
    }

    proptest::proptest! {
        /// Bytes from a peer never panic the decoder, and whatever decodes
        /// encodes back to something that decodes the same.
        #[test]
        fn hostile_bytes_never_panic(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..512),
                                      tag in 0u8..6) {
            let mut framed = vec![tag];
            framed.extend_from_slice(&bytes);
            if let Ok(e) = Envelope::decode(&framed) {
                proptest::prop_assert_eq!(Envelope::decode(&e.encode()).ok(), Some(e));
            }
        }

        /// Well-formed JSON of the wrong shape is refused, not trusted.
        #[test]
        fn json_of_another_shape_is_refused(n in 0i64..1000, text in "[a-z]{0,12}") {
            for body in [
                format!("{{\"instance_uid\": {n}}}"),
                format!("[{{\"hash\": {n}, \"holder\": \"{text}\"}}]"),
                format!("{{\"{text}\": [{n}]}}"),
            ] {
                for tag in [HELLO, LOCATIONS] {
                    let mut framed = vec![tag];
                    framed.extend_from_slice(body.as_bytes());
                    let decoded = Envelope::decode(&framed);
                    proptest::prop_assert!(
                        decoded.is_err() || matches!(decoded, Ok(Envelope::Locations(ref l)) if l.is_empty()),
                        "{body} decoded as {decoded:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn refuses_oversized_and_overfull_hellos() {
        let mut big = vec![HELLO];
        big.extend(std::iter::repeat_n(b' ', MAX_HELLO + 1));
        assert!(Envelope::decode(&big).is_err());
        let mut h = hello();
        h.offers = vec!["x".into(); MAX_HELLO_TOKENS + 1];
        let bytes = Envelope::Hello(Box::new(h)).encode();
        let err = Envelope::decode(&bytes).unwrap_err().to_string();
        assert!(err.contains("too many"), "{err}");
    }
}
