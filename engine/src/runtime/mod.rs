//! The speech runtime: the model on its own thread behind an API that mirrors
//! `VoxCPMEx.Server` (start, await_ready, info, generate, generate_streaming with next_chunk
//! and collect, load_lora, unload_lora, save, stop).
//!
//! ```no_run
//! use std::time::Duration;
//! use voxcpm_engine::runtime::{GenerateOptions, Server, ServerOptions};
//!
//! let server = Server::start(ServerOptions::new("openbmb/VoxCPM2"))?;
//! server.await_ready(Duration::from_secs(120))?;
//! let speech = server.generate("Hello there.", &GenerateOptions::default())?;
//! voxcpm_engine::runtime::save(&speech.to_wav(), "hello.wav".as_ref())?;
//! # Ok::<(), voxcpm_engine::Error>(())
//! ```

mod batch;
mod device;
mod options;
mod render_key;
mod server;
mod stream;

pub use device::{DeviceRequest, Precision, ResolvedDevice, resolve as resolve_device};
pub use options::{DEFAULT_MAX_BATCH, GenerateOptions, ServerOptions};
pub use render_key::{model_key, request_key};
pub use server::{Server, ServerInfo, Speech, Status, save};
pub use stream::SpeechStream;
