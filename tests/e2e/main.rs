//! End-to-end tests: the real `scimlet` binary over HTTP.

mod support;

mod administration;
mod connections;
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
