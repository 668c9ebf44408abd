//! A small bounded map held by one adapter instance: what the adapter learnt from its provider
//! (a token, a customer id, where a conversation came from) and may need again while its bot
//! stays loaded. It lives and dies with the adapter, so nothing outlives a configuration
//! change; it is cleared when full, so it never grows without bound.

use std::collections::HashMap;
use std::sync::Mutex;

pub struct Memo<V> {
    max: usize,
    /// The most bytes the entries may hold together, as `size` counts them (keys included).
    max_bytes: usize,
    size: fn(&V) -> usize,
    map: Mutex<Entries<V>>,
}

struct Entries<V> {
    map: HashMap<String, (V, usize)>,
    bytes: usize,
}

impl<V: Clone> Memo<V> {
    /// At most `max` entries; values are small and of fixed size.
    pub fn new(max: usize) -> Self {
        Self::bounded(max, usize::MAX, |_| 0)
    }

    /// At most `max` entries holding at most `max_bytes` together, each value counted by
    /// `size`: a count alone lets a few large values (a session with a long `channel`) take
    /// the whole function's memory.
    pub fn bounded(max: usize, max_bytes: usize, size: fn(&V) -> usize) -> Self {
        Memo {
            max: max.max(1),
            max_bytes,
            size,
            map: Mutex::new(Entries {
                map: HashMap::new(),
                bytes: 0,
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries<V>> {
        // A panic while holding the lock cannot leave a half-written entry: keep using it.
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<V> {
        self.lock().map.get(key).map(|(v, _)| v.clone())
    }

    /// Stores `value`; when the entries would be over either bound they are all dropped first.
    /// A value larger than the whole byte bound is not kept.
    pub fn insert(&self, key: String, value: V) {
        let cost = (self.size)(&value).saturating_add(key.len());
        let mut e = self.lock();
        if let Some((_, old)) = e.map.remove(&key) {
            e.bytes -= old;
        }
        if cost > self.max_bytes {
            return;
        }
        if e.map.len() >= self.max || e.bytes.saturating_add(cost) > self.max_bytes {
            e.map.clear();
            e.bytes = 0;
        }
        e.bytes += cost;
        e.map.insert(key, (value, cost));
    }

    /// The bytes the entries hold, as counted by the memo's `size`.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// The value under `key`, created with `make` when absent.
    pub fn get_or_insert_with(&self, key: String, make: impl FnOnce() -> V) -> V {
        if let Some(v) = self.get(&key) {
            return v;
        }
        let v = make();
        self.insert(key, v.clone());
        v
    }

    /// Removes and returns the value under `key`.
    pub fn take(&self, key: &str) -> Option<V> {
        let mut e = self.lock();
        let (v, cost) = e.map.remove(key)?;
        e.bytes -= cost;
        Some(v)
    }

    pub fn values(&self) -> Vec<V> {
        self.lock().map.values().map(|(v, _)| v.clone()).collect()
    }

    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_takes_once_and_clears_when_full() {
        let m: Memo<u64> = Memo::new(2);
        m.insert("a".into(), 1);
        m.insert("b".into(), 2);
        assert_eq!(m.get("a"), Some(1));
        assert_eq!(m.take("a"), Some(1));
        assert_eq!(m.take("a"), None, "taken once");
        m.insert("c".into(), 3);
        m.insert("d".into(), 4);
        assert!(m.len() <= 2, "bounded");
        assert_eq!(m.get("d"), Some(4));
        assert_eq!(m.get_or_insert_with("e".into(), || 5), 5);
        assert_eq!(m.get_or_insert_with("e".into(), || 6), 5, "kept");
    }

    #[test]
    fn a_byte_bound_holds_whatever_the_count() {
        let m: Memo<String> = Memo::bounded(10_000, 1_000, String::len);
        for i in 0..100 {
            m.insert(format!("k{i}"), "v".repeat(300));
            assert!(m.bytes() <= 1_000, "{} bytes after {i}", m.bytes());
        }
        assert!(m.len() <= 3);
        m.insert("huge".into(), "v".repeat(5_000));
        assert_eq!(m.get("huge"), None, "larger than the bound: not kept");
        m.insert("k".into(), "v".repeat(10));
        m.insert("k".into(), "w".repeat(20));
        assert_eq!(m.take("k").as_deref().map(str::len), Some(20));
        assert!(m.bytes() <= 1_000);
    }
}
