//! Only for `benches/pipeline.rs`, which includes the test harness by path
//! (`#[path = "../tests/common/mod.rs"] mod common;`). The harness now lives
//! in `tests/integration/common/`: once the bench points there, delete this
//! file. The bench uses a part of the harness only, hence the `allow`s.

#[allow(dead_code, unused_imports)]
#[path = "../integration/common/mod.rs"]
mod harness;

#[allow(unused_imports)]
pub use harness::*;
