//! End-to-end tests: the real `scimlet` binary over HTTP.

mod support;

mod foundation;
mod operations;
mod vectors;
mod reliability;
