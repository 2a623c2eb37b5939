//! Native VoxCPM2 text-to-speech: loads official checkpoints and runs the whole model on burn.
//!
//! The map of the crate is in ARCHITECTURE.md at the repository root.

pub mod audio_io;
pub mod bridge;
pub mod clip;
pub mod config;
pub mod denoise;
pub mod error;
pub mod hub;
pub mod kernels;
pub mod model;
pub mod noise;
pub mod parity;
pub mod pipeline;
pub mod resample;
pub mod runtime;
pub mod script;
pub mod synthetic;
pub mod text;
pub mod tokenizer;
pub mod wav;
pub mod weights;
pub mod whole_file;

pub use error::{Error, Result};
