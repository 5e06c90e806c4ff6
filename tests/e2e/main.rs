//! End-to-end tests: the real `scimlet` binary over HTTP.

mod support;

mod foundation;
mod vectors;
mod reliability;
