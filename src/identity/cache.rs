//! The optional session cache: answers of a session endpoint kept for a short time, keyed by
//! a SHA-256 digest of the whole subrequest (so the credential itself is never stored, and
//! two requests share an entry only if they would have sent the same bytes).
//!
//! An entry never outlives the session's `expires_at`. Denials (401, 403) are kept for at
//! most `MAX_DENIAL_TTL`, so a user who just logged in is not turned away for long. Other
//! answers and failures are never cached. The cache delays the effect of a logout by up to
//! its `ttl`, which is why it is off unless configured.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::access::json;
use crate::access::rules::SessionCacheSettings;
use crate::access::session::{parse_rfc3339, SubResult};

/// Longest time a 401 or 403 answer is reused.
const MAX_DENIAL_TTL: Duration = Duration::from_secs(2);

/// A SHA-256 digest of a subrequest.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Key([u8; 32]);

impl Hash for Key {
    /// Feeds the map the digest's first eight bytes. A digest is already uniformly
    /// distributed, and no client can choose credentials whose digests collide in the map, so
    /// hashing it again with SipHash would only cost time.
    fn hash<H: Hasher>(&self, state: &mut H) {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        state.write_u64(u64::from_le_bytes(first));
    }
}

/// The hasher of the cache's map: the value that [`Key::hash`] feeds it.
#[derive(Default)]
struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }

    /// Only `Key` is hashed with this hasher, and it writes one `u64`. Other input is folded
    /// in anyway, so that the hasher stays correct if that ever changes.
    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(byte);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

struct Entry {
    result: Arc<SubResult>,
    expires: Instant,
}

#[derive(Default)]
pub struct SessionCache {
    entries: HashMap<Key, Entry, BuildHasherDefault<DigestHasher>>,
    /// Insertion order, for evicting the oldest entry when full.
    order: VecDeque<Key>,
}

fn key(bytes: &[u8]) -> Key {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut key = [0u8; 32];
    key.copy_from_slice(digest.as_ref());
    Key(key)
}

impl SessionCache {
    pub fn get(&mut self, request: &[u8], now: Instant) -> Option<Arc<SubResult>> {
        let key = key(request);
        match self.entries.get(&key) {
            Some(entry) if entry.expires > now => Some(Arc::clone(&entry.result)),
            Some(_) => {
                self.entries.remove(&key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&mut self, request: &[u8], result: &SubResult, settings: SessionCacheSettings, now: Instant) {
        let Ok(response) = result else { return };
        let ttl = match response.status {
            200 => {
                let mut ttl = settings.ttl;
                let expires_at = json::RawJson::parse_prefix(&response.body)
                    .and_then(|document| document.get("expires_at"))
                    .and_then(|value| value.as_str())
                    .and_then(|text| parse_rfc3339(text.as_ref()));
                if let Some(expires_at) = expires_at {
                    match expires_at.duration_since(SystemTime::now()) {
                        Ok(left) => ttl = ttl.min(left),
                        Err(_) => return,
                    }
                }
                ttl
            }
            401 | 403 => settings.ttl.min(MAX_DENIAL_TTL),
            _ => return,
        };
        if ttl.is_zero() {
            return;
        }
        let key = key(request);
        while self.entries.len() >= settings.max_entries {
            match self.order.pop_front() {
                Some(oldest) => {
                    self.entries.remove(&oldest);
                }
                None => break,
            }
        }
        if self.entries.insert(key, Entry { result: Arc::new(result.clone()), expires: now + ttl }).is_none() {
            self.order.push_back(key);
        }
        // Entries replaced or expired leave stale keys behind; keep the queue bounded.
        if self.order.len() > settings.max_entries.saturating_mul(2) {
            self.order.retain(|k| self.entries.contains_key(k));
        }
    }
}
