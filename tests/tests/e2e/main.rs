//! End-to-end tests: the real app over real HTTP, on SQLite by default and
//! on PostgreSQL with `FERRY_TEST_DB=postgres`.

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
mod redirects;
mod runs;
mod sandbox;
mod smtp;
mod storage;
mod users;
mod vault;
mod workflows;
