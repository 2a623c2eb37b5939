//! The engine's behaviour as callers meet it: the runtime, the pipeline in every prompting
//! mode, bad input, the tokenizer, the normaliser and the denoiser against their references,
//! synthetic checkpoints, and the bridge's frame reader under property tests.
//!
//! One test binary for all of them: linking is most of a cold test build.

#[path = "../common/mod.rs"]
mod common;

mod bad_input;
mod batching;
mod bridge_batching;
mod bridge_fuzz;
mod denoise;
mod hub_download;
mod normalize;
mod pipeline;
mod runtime;
mod runtime_v1;
mod synthetic_checkpoint;
mod tokenizer;
