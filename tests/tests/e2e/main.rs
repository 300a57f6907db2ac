//! End-to-end tests: the real app over real HTTP, on SQLite by default and
//! on PostgreSQL with `FERRY_TEST_DB=postgres`.
//!
//! Helpers beside the tests assert with `unwrap`/`expect` like the tests do.
#![expect(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: a failed expectation is a failed test"
)]

mod access;
mod alerts;
mod auth;
mod batching;
mod browser;
mod builder;
mod conformance;
mod connections;
mod demo;
mod evidence;
mod hooks;
mod invites;
mod kill;
mod lifecycle;
mod operator;
mod pages;
mod privacy;
mod redirects;
mod runs;
mod runs_faults;
mod sandbox;
mod sandbox_access;
mod smtp;
mod storage;
mod users;
mod vault;
mod workflows;
