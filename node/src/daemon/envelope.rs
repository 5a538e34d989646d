//! What travels in one transport message: an engine message, or a hello.
//!
//! The hello is the node-level handshake after a connection: which of the
//! peer's scopes this node subscribes to, and the tokens this node issued
//! to the peer (delivering grants made while the peer was away).

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Largest hello accepted (tokens are at most 4 KiB each).
const MAX_HELLO: usize = 256 << 10;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    /// The sender's instance uid and name, for `subscribe <peer> instance`.
    pub instance_uid: String,
    pub name: String,
    /// Scopes of the receiver the sender subscribes to.
    pub subscriptions: Vec<String>,
    /// Tokens the sender issued to the receiver.
    pub offers: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Envelope {
    Engine(Vec<u8>),
    Hello(Hello),
}

const ENGINE: u8 = 1;
const HELLO: u8 = 2;

impl Envelope {
    pub fn encode(&self) -> Vec<u8> {
        match self {
            Envelope::Engine(bytes) => {
                let mut out = Vec::with_capacity(bytes.len() + 1);
                out.push(ENGINE);
                out.extend_from_slice(bytes);
                out
            }
            Envelope::Hello(h) => {
                let mut out = vec![HELLO];
                out.extend(serde_json::to_vec(h).unwrap_or_default());
                out
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Result<Envelope> {
        let bad =
            |why: &str| Error::InvalidArgument(format!("malformed message from a peer: {why}"));
        match bytes.split_first() {
            Some((&ENGINE, rest)) => Ok(Envelope::Engine(rest.to_vec())),
            Some((&HELLO, rest)) if rest.len() <= MAX_HELLO => serde_json::from_slice(rest)
                .map(Envelope::Hello)
                .map_err(|_| bad("a hello that is not valid")),
            Some((&HELLO, _)) => Err(bad("a hello that is too large")),
            Some((tag, _)) => Err(bad(&format!("unknown kind {tag}"))),
            None => Err(bad("empty")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_garbage() {
        let h = Envelope::Hello(Hello {
            instance_uid: "u".into(),
            name: "n".into(),
            subscriptions: vec!["s".into()],
            offers: vec![],
        });
        assert_eq!(Envelope::decode(&h.encode()).unwrap(), h);
        let e = Envelope::Engine(vec![9, 9]);
        assert_eq!(Envelope::decode(&e.encode()).unwrap(), e);
        for bad in [&[][..], &[7, 1][..], &[2, b'{'][..]] {
            assert!(Envelope::decode(bad).is_err());
        }
    }
}
