//! A view of the store that answers point reads from entries fetched ahead, many keys in one
//! `get-many` call. An import batch reads each row's userName index entry and user document;
//! one store call per read would cross the component boundary (and reach SQLite) thousands of
//! times per batch. Scans and commits go straight through, and the commit's optimistic checks
//! still hold the plan to the versions read, so a prefetched entry that went stale makes the
//! commit conflict and the batch be planned again, never applied on old data.

use std::cell::RefCell;
use std::collections::HashMap;

use super::store::{Check, Entry, Event, Scan, Store, StoreError, Write};

/// `store`, with the entries of the keys passed to [`Prefetched::fetch`] remembered.
pub(crate) struct Prefetched<'s> {
    store: &'s dyn Store,
    /// Every key fetched ahead, with its entry or `None` when absent.
    known: RefCell<HashMap<String, Option<Entry>>>,
}

impl<'s> Prefetched<'s> {
    pub(crate) fn new(store: &'s dyn Store) -> Self {
        Prefetched {
            store,
            known: RefCell::new(HashMap::new()),
        }
    }

    /// Reads `keys` in one call and remembers what each holds; answers the entries found.
    pub(crate) fn fetch(&self, keys: Vec<String>) -> Result<Vec<Entry>, StoreError> {
        let found = self.store.get_many(&keys)?;
        let mut known = self.known.borrow_mut();
        let mut entries = Vec::new();
        for (key, entry) in keys.into_iter().zip(found) {
            entries.extend(entry.clone());
            known.insert(key, entry);
        }
        Ok(entries)
    }
}

impl Store for Prefetched<'_> {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        if let Some(entry) = self.known.borrow().get(key) {
            return Ok(entry.clone());
        }
        self.store.get(key)
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        // The keys not fetched ahead are read together, in one call, as `get_many` promises.
        let unknown: Vec<String> = {
            let known = self.known.borrow();
            keys.iter()
                .filter(|k| !known.contains_key(*k))
                .cloned()
                .collect()
        };
        let mut read = if unknown.is_empty() {
            Vec::new()
        } else {
            self.store.get_many(&unknown)?
        }
        .into_iter();
        let known = self.known.borrow();
        Ok(keys
            .iter()
            .map(|k| match known.get(k) {
                Some(entry) => entry.clone(),
                None => read.next().flatten(),
            })
            .collect())
    }
    fn scan(&self, scan: &Scan) -> Result<Vec<Entry>, StoreError> {
        self.store.scan(scan)
    }
    fn count(&self, start: &str, end: &str) -> Result<u64, StoreError> {
        self.store.count(start, end)
    }
    fn commit_events(
        &self,
        checks: Vec<Check>,
        writes: Vec<Write>,
        events: Vec<Event>,
    ) -> Result<u64, StoreError> {
        self.store.commit_events(checks, writes, events)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::persist::store::MemStore;

    #[test]
    fn fetched_keys_are_answered_from_memory_and_others_from_the_store() {
        let store = MemStore::new();
        store
            .commit(&[], &[Write::Put("a".into(), b"1".to_vec())])
            .unwrap();
        let view = Prefetched::new(&store);
        let found = view.fetch(vec!["a".into(), "b".into()]).unwrap();
        assert_eq!(found.len(), 1);
        // Changed behind the view's back: the fetched value stands (the commit check guards it).
        store
            .commit(&[], &[Write::Put("a".into(), b"2".to_vec())])
            .unwrap();
        assert_eq!(view.get("a").unwrap().unwrap().value, b"1");
        assert_eq!(view.get("b").unwrap(), None);
        store
            .commit(&[], &[Write::Put("c".into(), b"3".to_vec())])
            .unwrap();
        assert_eq!(view.get("c").unwrap().unwrap().value, b"3");
        let values: Vec<Option<Vec<u8>>> = view
            .get_many(&["c".into(), "a".into(), "d".into(), "b".into()])
            .unwrap()
            .into_iter()
            .map(|e| e.map(|e| e.value))
            .collect();
        assert_eq!(
            values,
            [Some(b"3".to_vec()), Some(b"1".to_vec()), None, None]
        );
    }
}
