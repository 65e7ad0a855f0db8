//! leakbench: drive websocket or HTTP sessions against a service, let it
//! settle, and judge from its runtime counters and profiles whether memory,
//! goroutines or descriptors failed to come back.
//!
//! Data flows one way, and each stage is a module:
//! [`scenario`] validates input; [`protocol`] runs the phases, driving
//! [`load`], reading [`sources`] and waiting in [`settle`]; [`verdict`]
//! judges; [`suspects`] attributes; [`report::model`] holds the findings that
//! the renderers in [`report`] turn into text, and [`output`] writes them.
//! [`signal`] and [`exit`] are the vocabulary and the exit-code contract
//! every stage shares; [`commands`] holds one module per subcommand, and
//! [`cli`] parses the command line into them. `tests/architecture.rs`
//! fails on any import that runs against this flow.

pub mod alloc;
pub mod cli;
pub mod commands;
pub mod curve;
pub mod exit;
pub mod fleet;
pub mod load;
pub mod output;
pub mod pprof;
pub mod probe;
pub mod progress;
pub mod prom;
pub mod protocol;
pub mod redact;
pub mod remote;
pub mod report;
pub mod scenario;
pub mod settle;
pub mod signal;
pub mod sources;
pub mod suspects;
pub mod target;
pub mod verdict;
