//! End-to-end tests: the real app over real HTTP, on SQLite by default and
//! on PostgreSQL with `FERRY_TEST_DB=postgres`.

mod access;
mod auth;
mod browser;
mod conformance;
mod connections;
mod demo;
mod hooks;
mod invites;
mod kill;
mod operator;
mod pages;
mod privacy;
mod redirects;
mod runs;
mod sandbox;
mod sandbox_access;
mod smtp;
mod storage;
mod users;
mod vault;
mod workflows;
