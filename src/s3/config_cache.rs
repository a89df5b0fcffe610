//! Parsed bucket configuration (policies, CORS rules), cached by bucket so
//! that authorizing a request does not parse JSON or XML each time.
//!
//! Only buckets that exist are cached, and the cache is bounded, so
//! requests naming made-up buckets cannot grow it. A change bumps a
//! generation number; a fill that started before a change is dropped, so
//! a stale document can never be put back after it was replaced.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Buckets kept before the cache starts over.
const MAX_ENTRIES: usize = 4096;

pub struct ConfigCache<T> {
    state: Mutex<State<T>>,
}

struct State<T> {
    entries: HashMap<String, Option<Arc<T>>>,
    generation: u64,
}

impl<T> Default for ConfigCache<T> {
    fn default() -> Self {
        ConfigCache { state: Mutex::new(State { entries: HashMap::new(), generation: 0 }) }
    }
}

impl<T> ConfigCache<T> {
    fn state(&self) -> std::sync::MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|poison| poison.into_inner())
    }

    /// The cached entry, if any, and the generation to fill under.
    pub fn get(&self, bucket: &str) -> (Option<Option<Arc<T>>>, u64) {
        let state = self.state();
        (state.entries.get(bucket).cloned(), state.generation)
    }

    /// Stores what was read, unless something changed since `generation`.
    pub fn fill(&self, bucket: &str, value: Option<Arc<T>>, generation: u64) {
        let mut state = self.state();
        if state.generation != generation {
            return;
        }
        if state.entries.len() >= MAX_ENTRIES {
            state.entries.clear();
        }
        state.entries.insert(bucket.to_string(), value);
    }

    /// Forgets a bucket's entry after its configuration changed.
    pub fn forget(&self, bucket: &str) {
        let mut state = self.state();
        state.generation += 1;
        state.entries.remove(bucket);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fill_that_raced_a_change_is_dropped() {
        let cache: ConfigCache<u32> = ConfigCache::default();
        let (entry, generation) = cache.get("b");
        assert!(entry.is_none());
        cache.forget("b");
        cache.fill("b", Some(Arc::new(1)), generation);
        assert!(cache.get("b").0.is_none(), "the stale fill must not land");
        let (_, generation) = cache.get("b");
        cache.fill("b", Some(Arc::new(2)), generation);
        assert_eq!(cache.get("b").0.flatten().as_deref(), Some(&2));
    }
}
