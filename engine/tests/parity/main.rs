//! The engine against the official implementation: goldens recorded from `voxcpm==2.0.3` by
//! `tools/golden/` (in `fixtures/`), on every backend, precision and CPU kernel level.
//!
//! One test binary for all of them: linking is most of a cold test build.

#[path = "../common/mod.rs"]
mod common;

mod batching;
mod cpu_bf16_parity;
mod end_to_end;
mod kernel_levels;
mod lora;
mod module_parity;
mod pipeline_parity;
mod v1_parity;
mod wgpu_parity;
