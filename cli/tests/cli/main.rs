//! The `voxcpm` binary as users run it: its commands, and its bridge driven over pipes. One test
//! target for both, since linking a test executable is most of a cold build.

// The engine's test helpers and fixtures, shared rather than copied.
#[path = "../../../engine/tests/common/mod.rs"]
mod common;

mod bridge;
mod commands;
mod engine_options;
mod v1_models;

/// The binary under test, built by Cargo for this package's tests.
const VOXCPM: &str = env!("CARGO_BIN_EXE_voxcpm");
