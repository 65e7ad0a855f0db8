//! leakbench: drive websocket or HTTP sessions against a service, let it
//! settle, and judge from its runtime counters and profiles whether memory,
//! goroutines or descriptors failed to come back.
//!
//! The binary is a thin shell over [`run::run`]; every stage is a module:
//! [`scenario`] validates input, [`load`] drives sessions, [`probe`] reads the
//! target, [`settle`] waits for it, [`verdict`] judges, [`report`] writes.

pub mod alloc;
pub mod cli;
pub mod commands;
pub mod exit;
pub mod load;
pub mod pprof;
pub mod probe;
pub mod progress;
pub mod prom;
pub mod redact;
pub mod report;
pub mod run;
pub mod scenario;
pub mod settle;
pub mod signal;
pub mod sources;
pub mod suggest;
pub mod suspects;
pub mod target;
pub mod verdict;
