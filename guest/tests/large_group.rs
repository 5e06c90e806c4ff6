//! Okta replaces a group with all its members on every change: `PUT /Groups/{id}` with 100 000
//! members, measured for time and for the heap the guest code holds (the store's own memory,
//! which is the host's in the component, is left out).

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use common::request;
use scimlet_guest::http::{handle, large_body_routes};
use scimlet_guest::store::{
    Check, Entry, Event, EventKind, MemStore, Scan, Store, StoreError, Write,
};
use scimlet_guest::Kind;
use scimlet_guest::Membership;
use serde_json::json;

/// Counts live heap bytes allocated outside the store. Each block carries a header saying
/// whether it was counted, so a block the store allocated is never subtracted.
struct Counting;

const HEADER: usize = 16;
static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static IN_STORE: Cell<bool> = const { Cell::new(false) };
}

fn wide(layout: Layout) -> Layout {
    Layout::from_size_align(layout.size() + HEADER, layout.align().max(HEADER)).unwrap()
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let base = unsafe { System.alloc(wide(layout)) };
        if base.is_null() {
            return base;
        }
        let counted = !IN_STORE.with(Cell::get);
        unsafe { *base = counted as u8 };
        if counted {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        unsafe { base.add(HEADER) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let base = unsafe { ptr.sub(HEADER) };
        if unsafe { *base } == 1 {
            LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
        }
        unsafe { System.dealloc(base, wide(layout)) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

fn in_store<T>(f: impl FnOnce() -> T) -> T {
    IN_STORE.with(|s| s.set(true));
    let out = f();
    IN_STORE.with(|s| s.set(false));
    out
}

/// The in-memory store, its answers copied into counted memory as the component's host
/// import lowers them into guest memory.
struct Measured<'a>(&'a MemStore);

impl Store for Measured<'_> {
    fn get(&self, key: &str) -> Result<Option<Entry>, StoreError> {
        let r = in_store(|| self.0.get(key));
        let out = r.clone();
        in_store(|| drop(r));
        out
    }
    fn get_many(&self, keys: &[String]) -> Result<Vec<Option<Entry>>, StoreError> {
        let r = in_store(|| self.0.get_many(keys));
        let out = r.clone();
        in_store(|| drop(r));
        out
    }
    fn scan(&self, s: &Scan) -> Result<Vec<Entry>, StoreError> {
        let r = in_store(|| self.0.scan(s));
        let out = r.clone();
        in_store(|| drop(r));
        out
    }
    fn count(&self, start: &str, end: &str) -> Result<u64, StoreError> {
        in_store(|| self.0.count(start, end))
    }
    fn commit_events(
        &self,
        checks: Vec<Check>,
        writes: Vec<Write>,
        events: Vec<Event>,
    ) -> Result<u64, StoreError> {
        in_store(|| self.0.commit_events(checks, writes, events))
    }
}

fn user_id(i: usize) -> String {
    format!("0190c0de-0000-7000-8000-{i:012}")
}

fn put_body(members: impl Iterator<Item = usize>) -> Vec<u8> {
    let members: Vec<_> = members
        .map(|i| json!({"value": user_id(i), "display": format!("user{i}")}))
        .collect();
    json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"], "displayName": "All staff", "members": members})
        .to_string()
        .into_bytes()
}

/// Runs one PUT; answers the status, the peak of counted heap during the call (the body
/// included) and the time taken.
fn put(store: &MemStore, gid: &str, body: Vec<u8>) -> (u16, usize, f64) {
    let mut req = request(
        "PUT",
        &format!("/Groups/{gid}?excludedAttributes=members"),
        None,
        &[("content-type", "application/scim+json")],
        "",
    );
    let measured = Measured(store);
    let started = Instant::now();
    req.body = body;
    // The body counts: the guest receives it into its own memory.
    let base = LIVE.load(Ordering::Relaxed) - req.body.capacity();
    PEAK.store(LIVE.load(Ordering::Relaxed), Ordering::Relaxed);
    let status = {
        let resp = handle(&measured, &req).collect().unwrap();
        resp.status
    };
    drop(req);
    let peak = PEAK.load(Ordering::Relaxed) - base;
    (status, peak, started.elapsed().as_secs_f64())
}

fn members(store: &MemStore, gid: &str) -> Vec<String> {
    Membership::new(store).members(gid).unwrap()
}

#[test]
fn a_group_of_100_000_is_replaced_in_bounded_memory_writing_only_the_difference() {
    const N: usize = 100_000;
    assert!(large_body_routes()
        .iter()
        .any(|r| r.method == "PUT" && r.endpoint == "Groups"));
    let store = MemStore::new();
    let users: Vec<Write> = (0..N + 1000)
        .map(|i| {
            let doc = json!({"id": user_id(i), "userName": format!("user{i}"), "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"]});
            Write::Put(Kind::User.resource_key(&user_id(i)), doc.to_string().into_bytes())
        })
        .collect();
    store.commit(&[], &users).unwrap();
    drop(users);
    let t = common::Tenant {
        store,
        policy: String::new(),
    };
    let gid = t.ok("POST", "/Groups", Some(json!({"displayName": "All staff"})))["id"]
        .as_str()
        .unwrap()
        .to_string();

    let body = put_body(0..N);
    let size = body.len();
    let (status, peak, secs) = put(&t.store, &gid, body);
    eprintln!(
        "PUT of {N} new members ({size} bytes): {status}, peak guest heap {} KiB, {secs:.2} s",
        peak / 1024
    );
    assert_eq!(status, 200);
    let want: Vec<String> = (0..N).map(user_id).collect();
    assert_eq!(members(&t.store, &gid), want);
    // One change event per member added, committed with the edges.
    let events = t.store.events();
    let added = events
        .iter()
        .filter(|(_, e)| e.kind == EventKind::GroupMemberAdded)
        .count();
    let bytes: usize = events.iter().map(|(_, e)| e.data.len()).sum();
    eprintln!(
        "  {added} group.member_added events, {} KiB of event data",
        bytes / 1024
    );
    assert_eq!(added, N);
    let seen = events.len();

    // The same minus the first 1000, plus 1000 others.
    let (status, peak, secs) = put(&t.store, &gid, put_body(1000..N + 1000));
    eprintln!(
        "PUT changing 2000 of {N} members: {status}, peak guest heap {} KiB, {secs:.2} s",
        peak / 1024
    );
    assert_eq!(status, 200);
    let want: Vec<String> = (1000..N + 1000).map(user_id).collect();
    assert_eq!(members(&t.store, &gid), want);
    let kinds: Vec<EventKind> = t.store.events()[seen..]
        .iter()
        .map(|(_, e)| e.kind)
        .collect();
    assert_eq!(kinds.len(), 2000);
    assert_eq!(
        kinds
            .iter()
            .filter(|k| **k == EventKind::GroupMemberRemoved)
            .count(),
        1000
    );
    assert!(
        peak < 48 << 20,
        "a replacement holds at most the body and a page or so: {peak} bytes"
    );
    // Reverse edges follow.
    let first = Membership::new(&t.store).groups_of(&user_id(0)).unwrap();
    let last = Membership::new(&t.store)
        .groups_of(&user_id(N + 999))
        .unwrap();
    assert_eq!((first.len(), last), (0, vec![gid.clone()]));

    // An unknown member refuses the whole replacement.
    let mut body = put_body(0..10);
    let text = String::from_utf8(body)
        .unwrap()
        .replace(&user_id(3), "nobody");
    body = text.into_bytes();
    let (status, _, _) = put(&t.store, &gid, body);
    assert_eq!(status, 400);
    assert_eq!(members(&t.store, &gid).len(), N);
}
