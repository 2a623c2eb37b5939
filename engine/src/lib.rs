//! Native VoxCPM text-to-speech: loads official checkpoints and runs the whole model on burn.
//!
//! Start with the types re-exported here: a [`Server`] runs a model on its own thread with the
//! VoxCPMEx.Server API ([`ServerOptions`] to start it, [`GenerateOptions`] per request, a
//! [`Speech`] or a [`SpeechStream`] back); [`TextToSpeech`] is the model and pipeline without a
//! thread ([`SpeechRequest`], [`SpeechOptions`], loaded with [`LoadOptions`]). The modules
//! below are the parts the CLI, the plugin and the fuzzers build on; [`testkit`] is test and
//! benchmark support, not speech API.
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
pub mod pipeline;
pub mod resample;
pub mod runtime;
pub mod script;
pub mod testkit;
pub mod text;
pub mod tokenizer;
pub mod wav;
pub mod weights;
pub mod whole_file;

pub use error::{Error, Result};
pub use model::LoadOptions;
pub use pipeline::{SpeechOptions, SpeechRequest, TextToSpeech};
pub use runtime::{GenerateOptions, Server, ServerOptions, Speech, SpeechStream};
