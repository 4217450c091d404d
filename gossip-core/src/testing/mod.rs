//! Conformance suites a `Transport` or `Storage` implementation must pass.
//! Enabled by the `testing` feature; run them from your own tests.

pub mod storage;
pub mod transport;
