//! Behaviour every [`Store`] must show, whoever implements it: the guest's [`MemStore`] (on which
//! every guest test and the handler fuzz target run) and each host backend, seen through the
//! host's tenant-scoped adapter. One suite for all, so the test store cannot drift from the
//! stores that serve production. Compiled for this crate's tests and, with the `conformance`
//! feature, for the guest's and the host's.
//!
//! [`MemStore`]: crate::MemStore

use crate::{Check, Entry, Scan, Store, StoreError, Write};

/// A put of `value` (text) at `key`.
pub fn put(key: &str, value: &str) -> Write {
    Write::Put(key.into(), value.as_bytes().to_vec())
}

/// The check that `key` is still absent.
pub fn absent(key: &str) -> Check {
    Check {
        key: key.into(),
        version: None,
    }
}

/// The check that `key` still has `version`.
pub fn at(key: &str, version: u64) -> Check {
    Check {
        key: key.into(),
        version: Some(version),
    }
}

/// A range read with values.
pub fn scan(start: &str, end: &str, skip: u64, limit: u32, descending: bool) -> Scan {
    Scan {
        start: start.into(),
        end: end.into(),
        skip,
        limit,
        descending,
        keys_only: false,
    }
}

/// The keys of `entries`, in order.
pub fn keys(entries: &[Entry]) -> Vec<&str> {
    entries.iter().map(|e| e.key.as_str()).collect()
}

/// Runs every case against an empty store.
pub fn run_all(s: &dyn Store) {
    commit_is_atomic(s);
    absent_checks(s);
    versions_increase(s);
    scans(s);
    counts(s);
    malformed_calls(s);
    events_need_writes(s);
}

fn commit_is_atomic(s: &dyn Store) {
    let v1 = s.commit(&[], &[put("a/1", "x")]).unwrap();
    let err = s
        .commit(
            &[at("a/1", v1 + 1)],
            &[put("a/2", "y"), Write::Delete("a/1".into())],
        )
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict);
    assert_eq!(s.get("a/2").unwrap(), None);
    assert_eq!(s.get("a/1").unwrap().unwrap().value, b"x");
    // One failing check among passing ones still vetoes the whole commit.
    let err = s
        .commit(&[at("a/1", v1), absent("a/1")], &[put("a/3", "z")])
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict);
    assert_eq!(s.get("a/3").unwrap(), None);
    let v2 = s
        .commit(
            &[at("a/1", v1)],
            &[put("a/2", "y"), Write::Delete("a/1".into())],
        )
        .unwrap();
    assert!(v2 > v1);
    assert_eq!(s.get("a/1").unwrap(), None);
    assert_eq!(s.get("a/2").unwrap().unwrap().version, v2);
}

fn absent_checks(s: &dyn Store) {
    let v = s.commit(&[absent("u/1")], &[put("u/1", "x")]).unwrap();
    let err = s.commit(&[absent("u/1")], &[put("u/1", "y")]).unwrap_err();
    assert_eq!(err, StoreError::Conflict);
    assert_eq!(s.get("u/1").unwrap().unwrap().value, b"x");
    // Deleting an absent key is fine, and a deleted key passes an absence check again.
    s.commit(&[at("u/1", v)], &[Write::Delete("u/1".into())])
        .unwrap();
    s.commit(&[], &[Write::Delete("u/1".into())]).unwrap();
    s.commit(&[absent("u/1")], &[put("u/1", "z")]).unwrap();
    // Checks without writes verify and change nothing, not even the sequence.
    let now = s.commit(&[], &[put("u/2", "w")]).unwrap();
    assert_eq!(s.commit(&[at("u/2", now)], &[]).unwrap(), now);
    assert_eq!(s.commit(&[], &[]).unwrap(), now);
    assert_eq!(
        s.commit(&[absent("u/2")], &[]),
        Err(StoreError::Conflict),
        "a failing check fails a commit without writes too"
    );
    let next = s.commit(&[], &[put("u/3", "v")]).unwrap();
    assert!(next > now);
    assert_eq!(s.get("u/2").unwrap().unwrap().version, now);
}

fn versions_increase(s: &dyn Store) {
    let mut last = 0;
    for i in 0..5 {
        let v = s
            .commit(&[], &[put("v/k", &i.to_string()), put("v/other", "o")])
            .unwrap();
        assert!(v > last, "sequence must grow: {v} after {last}");
        let e = s.get("v/k").unwrap().unwrap();
        assert_eq!(e.version, v);
        assert_eq!(e.value, i.to_string().as_bytes());
        assert_eq!(s.get("v/other").unwrap().unwrap().version, v);
        last = v;
    }
    let got = s
        .get_many(&["v/k".into(), "v/none".into(), "v/other".into()])
        .unwrap();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].as_ref().unwrap().key, "v/k");
    assert_eq!(got[1], None);
    assert_eq!(got[2].as_ref().unwrap().value, b"o");
    assert!(s.get_many(&[]).unwrap().is_empty());
}

fn scans(s: &dyn Store) {
    let writes: Vec<Write> = (0..10).map(|i| put(&format!("s/{i}"), "v")).collect();
    s.commit(&[], &writes).unwrap();
    s.commit(&[], &[put("s", "before"), put("s0", "after")])
        .unwrap();
    let all = s.scan(&scan("s/", "s0", 0, 100, false)).unwrap();
    assert_eq!(
        keys(&all),
        (0..10).map(|i| format!("s/{i}")).collect::<Vec<_>>()
    );
    let page = s.scan(&scan("s/", "s0", 2, 3, false)).unwrap();
    assert_eq!(keys(&page), ["s/2", "s/3", "s/4"]);
    let page = s.scan(&scan("s/", "s0", 1, 3, true)).unwrap();
    assert_eq!(keys(&page), ["s/8", "s/7", "s/6"]);
    // The end bound is exclusive, the start bound inclusive.
    let page = s.scan(&scan("s/3", "s/5", 0, 10, true)).unwrap();
    assert_eq!(keys(&page), ["s/4", "s/3"]);
    assert!(s.scan(&scan("s/", "s0", 0, 0, false)).unwrap().is_empty());
    assert!(s.scan(&scan("s/", "s0", 10, 5, false)).unwrap().is_empty());
    assert!(s
        .scan(&scan("s/", "s0", u64::MAX, 5, true))
        .unwrap()
        .is_empty());
    assert!(s.scan(&scan("s/5", "s/5", 0, 5, false)).unwrap().is_empty());
    let mut ko = scan("s/", "s0", 0, 2, false);
    ko.keys_only = true;
    let got = s.scan(&ko).unwrap();
    assert_eq!(keys(&got), ["s/0", "s/1"]);
    assert!(got.iter().all(|e| e.value.is_empty() && e.version > 0));
    let full = s.scan(&scan("s/", "s0", 0, 2, false)).unwrap();
    assert_eq!(full[0].value, b"v");
    assert_eq!(full[0].version, got[0].version);
    // Order is bytewise UTF-8: 'Z' < 'a' < 'é' (0xC3 0xA9).
    s.commit(&[], &[put("o/a", ""), put("o/Z", ""), put("o/é", "")])
        .unwrap();
    let got = s.scan(&scan("o/", "o0", 0, 10, false)).unwrap();
    assert_eq!(keys(&got), ["o/Z", "o/a", "o/é"]);
}

fn counts(s: &dyn Store) {
    let writes: Vec<Write> = (0..7).map(|i| put(&format!("c/{i}"), "v")).collect();
    s.commit(&[], &writes).unwrap();
    assert_eq!(s.count("c/", "c0").unwrap(), 7);
    assert_eq!(s.count("c/2", "c/5").unwrap(), 3);
    assert_eq!(s.count("c/2", "c/2").unwrap(), 0);
    assert_eq!(s.count("c0", "c1").unwrap(), 0);
}

fn malformed_calls(s: &dyn Store) {
    let invalid = |r: Result<(), StoreError>| {
        assert!(matches!(r, Err(StoreError::Invalid(_))), "{r:?}");
    };
    invalid(s.scan(&scan("b", "a", 0, 1, false)).map(drop));
    invalid(s.count("b", "a").map(drop));
    invalid(s.get("").map(drop));
    invalid(s.get_many(&["x".into(), String::new()]).map(drop));
    invalid(s.commit(&[], &[put("", "x")]).map(drop));
    invalid(s.commit(&[absent("")], &[]).map(drop));
    invalid(
        s.commit(&[], &[put("ok", "x"), Write::Delete(String::new())])
            .map(drop),
    );
    assert_eq!(
        s.get("ok").unwrap(),
        None,
        "an invalid commit writes nothing"
    );
}

/// An event reports a change: a commit that writes nothing may not carry one, and a commit
/// whose check fails stores neither its writes nor its events.
fn events_need_writes(s: &dyn Store) {
    let event = || crate::Event {
        kind: crate::EventKind::UserCreated,
        data: "{}".into(),
        previous: None,
    };
    assert!(matches!(
        s.commit_events(Vec::new(), Vec::new(), vec![event()]),
        Err(StoreError::Invalid(_))
    ));
    let v = s
        .commit_events(Vec::new(), vec![put("e/1", "x")], vec![event()])
        .unwrap();
    assert_eq!(
        s.commit_events(vec![absent("e/1")], vec![put("e/1", "y")], vec![event()]),
        Err(StoreError::Conflict)
    );
    assert_eq!(s.get("e/1").unwrap().map(|e| e.version), Some(v));
}
