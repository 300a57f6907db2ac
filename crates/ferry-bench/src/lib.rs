//! Ferry's benchmarks as a library (the `ferry-bench` binary's commands):
//! kept out of the production crates, so nothing here ships in `ferry`.

pub mod alerts;
pub mod connector;
pub mod memory;
pub mod runs;
