//! Bounded binary reading and writing.
//!
//! Integers are big-endian and fixed width; variable fields carry a length
//! prefix. The reader checks that the input holds a field before touching
//! it and that a count fits in the remaining bytes before allocating, so a
//! decoder never allocates more than its input justifies.

use labmesh_crypto::PublicKey;

use crate::error::WireError;
use crate::ids::{RecordUid, ScopeId};

/// A cursor over untrusted bytes.
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.buf.len()
    }

    pub(crate) fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        if self.buf.len() < n {
            return Err(WireError::Truncated { what });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn array<const N: usize>(
        &mut self,
        what: &'static str,
    ) -> Result<[u8; N], WireError> {
        let mut out = [0u8; N];
        out.copy_from_slice(self.take(N, what)?);
        Ok(out)
    }

    pub(crate) fn u8(&mut self, what: &'static str) -> Result<u8, WireError> {
        Ok(self.array::<1>(what)?[0])
    }

    pub(crate) fn u16(&mut self, what: &'static str) -> Result<u16, WireError> {
        Ok(u16::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u32(&mut self, what: &'static str) -> Result<u32, WireError> {
        Ok(u32::from_be_bytes(self.array(what)?))
    }

    pub(crate) fn u64(&mut self, what: &'static str) -> Result<u64, WireError> {
        Ok(u64::from_be_bytes(self.array(what)?))
    }

    /// A `u32`-length-prefixed byte string of at most `max` bytes.
    pub(crate) fn bytes(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], WireError> {
        let len = self.u32(what)? as usize;
        if len > max {
            return Err(WireError::TooLarge { what, len, max });
        }
        self.take(len, what)
    }

    /// A count of items, each at least `min_item` bytes, at most `max`.
    pub(crate) fn count(
        &mut self,
        max: usize,
        min_item: usize,
        what: &'static str,
    ) -> Result<usize, WireError> {
        let count = self.u32(what)? as usize;
        if count > max {
            return Err(WireError::TooMany { what, count, max });
        }
        if count.saturating_mul(min_item) > self.remaining() {
            return Err(WireError::Truncated { what });
        }
        Ok(count)
    }

    pub(crate) fn flag(&mut self, what: &'static str) -> Result<bool, WireError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(WireError::Invalid {
                what,
                reason: "a flag is 0 or 1",
            }),
        }
    }

    fn short_str(&mut self, what: &'static str) -> Result<&'a str, WireError> {
        let len = self.u8(what)? as usize;
        std::str::from_utf8(self.take(len, what)?).map_err(|_| WireError::Invalid {
            what,
            reason: "not UTF-8",
        })
    }

    pub(crate) fn scope(&mut self) -> Result<ScopeId, WireError> {
        Ok(ScopeId::new(self.short_str("scope")?)?)
    }

    pub(crate) fn uid(&mut self) -> Result<RecordUid, WireError> {
        Ok(RecordUid::new(self.short_str("uid")?)?)
    }

    pub(crate) fn opt_uid(&mut self) -> Result<Option<RecordUid>, WireError> {
        Ok(if self.flag("uid present")? {
            Some(self.uid()?)
        } else {
            None
        })
    }

    pub(crate) fn key(&mut self, what: &'static str) -> Result<PublicKey, WireError> {
        parse_key(&self.array(what)?).ok_or(WireError::Invalid {
            what,
            reason: "not a valid ed25519 public key",
        })
    }

    pub(crate) fn finish(self) -> Result<(), WireError> {
        match self.buf.len() {
            0 => Ok(()),
            n => Err(WireError::TrailingBytes(n)),
        }
    }
}

/// Keys recently parsed on this thread. Parsing decompresses a curve point
/// (a field square root, ~10 µs), and the same few dozen origins appear in
/// every message of a mesh; caching a pure function changes no decision.
const KEY_CACHE: usize = 4096;

thread_local! {
    static KEYS: std::cell::RefCell<std::collections::HashMap<[u8; 32], Option<PublicKey>>> =
        std::cell::RefCell::new(std::collections::HashMap::new());
}

/// Parses (and validates) a public key, memoized per thread.
pub(crate) fn parse_key(bytes: &[u8; 32]) -> Option<PublicKey> {
    KEYS.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(key) = cache.get(bytes) {
            return *key;
        }
        if cache.len() >= KEY_CACHE {
            cache.clear();
        }
        let key = PublicKey::from_bytes(bytes).ok();
        cache.insert(*bytes, key);
        key
    })
}

/// Appends fields in the reader's format.
#[derive(Default)]
pub(crate) struct Writer {
    pub(crate) buf: Vec<u8>,
}

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.buf.push(v);
    }
    pub(crate) fn u16(&mut self, v: u16) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u32(&mut self, v: u32) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn u64(&mut self, v: u64) {
        self.buf.extend_from_slice(&v.to_be_bytes());
    }
    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.buf.extend_from_slice(v);
    }
    /// Lengths are bounded by the protocol limits, far below `u32::MAX`.
    pub(crate) fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).unwrap_or(u32::MAX));
    }
    pub(crate) fn bytes(&mut self, v: &[u8]) {
        self.len(v.len());
        self.raw(v);
    }
    pub(crate) fn flag(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    /// Scope ids and uids are at most 80 bytes (validated on construction).
    fn short_str(&mut self, v: &str) {
        self.u8(u8::try_from(v.len()).unwrap_or(u8::MAX));
        self.raw(v.as_bytes());
    }
    pub(crate) fn scope(&mut self, v: &ScopeId) {
        self.short_str(v.as_str());
    }
    pub(crate) fn uid(&mut self, v: &RecordUid) {
        self.short_str(v.as_str());
    }
    pub(crate) fn opt_uid(&mut self, v: Option<&RecordUid>) {
        self.flag(v.is_some());
        if let Some(v) = v {
            self.uid(v);
        }
    }
    pub(crate) fn key(&mut self, v: &PublicKey) {
        self.raw(v.as_bytes());
    }
}
