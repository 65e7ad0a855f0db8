//! The captured profiles in `tests/fixtures/` (see `capture.sh` there):
//! a Go service before and after 200 calls that each leak one goroutine in
//! `main.leakyWorker` and retain 64 KiB via `main.retain`.

pub const HEAP_BASE: &[u8] = include_bytes!("../../tests/fixtures/heap-base.pb.gz");
pub const HEAP_AFTER: &[u8] = include_bytes!("../../tests/fixtures/heap-after.pb.gz");
pub const GOROUTINE_BASE: &[u8] = include_bytes!("../../tests/fixtures/goroutine-base.pb.gz");
pub const GOROUTINE_AFTER: &[u8] = include_bytes!("../../tests/fixtures/goroutine-after.pb.gz");
pub const GOROUTINE_DEBUG1: &str = include_str!("../../tests/fixtures/goroutine-after.debug1.txt");
pub const GOROUTINE_DEBUG2: &str = include_str!("../../tests/fixtures/goroutine-after.debug2.txt");
pub const GOROUTINE_LEAK: &[u8] = include_bytes!("../../tests/fixtures/goroutineleak-fanout.pb.gz");
pub const HEAP_DEBUG1: &str = include_str!("../../tests/fixtures/heap-after.debug1.txt");
