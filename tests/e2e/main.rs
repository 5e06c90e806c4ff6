//! End-to-end tests: the real `scimlet` binary over HTTP.

mod support;
/// The library's own PostgreSQL test-schema helper, the very same file.
#[path = "../../host/src/store/postgres/testdb.rs"]
mod testdb;

mod administration;
mod connections;
mod console;
mod contract;
mod copy;
mod events;
mod foundation;
mod groups;
mod operations;
mod product;
mod reliability;
mod scale_out;
mod scale_out_webhooks;
mod vectors;
mod webhooks;
