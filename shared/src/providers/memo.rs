//! A small bounded map held by one adapter instance: what the adapter learnt from its provider
//! (a token, a customer id, where a conversation came from) and may need again while its bot
//! stays loaded. It lives and dies with the adapter, so nothing outlives a configuration
//! change; it is cleared when full, so it never grows without bound.

use std::collections::HashMap;
use std::sync::Mutex;

pub struct Memo<V> {
    max: usize,
    map: Mutex<HashMap<String, V>>,
}

impl<V: Clone> Memo<V> {
    pub fn new(max: usize) -> Self {
        Memo {
            max: max.max(1),
            map: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, V>> {
        // A panic while holding the lock cannot leave a half-written entry: keep using it.
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub fn get(&self, key: &str) -> Option<V> {
        self.lock().get(key).cloned()
    }

    pub fn insert(&self, key: String, value: V) {
        let mut map = self.lock();
        if map.len() >= self.max && !map.contains_key(&key) {
            map.clear();
        }
        map.insert(key, value);
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
        self.lock().remove(key)
    }

    pub fn values(&self) -> Vec<V> {
        self.lock().values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().len()
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
}
