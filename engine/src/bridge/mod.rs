//! A drop-in replacement for VoxCPMEx's Python bridge: the v2.1 protocol (length-prefixed
//! msgpack maps over stdin/stdout) served by the native runtime. See
//! `shared/docs/voxcpmex-protocol.md` §2 for the contract this module keeps.

mod frame;
mod protocol;
mod replies;
mod session;

pub use frame::{FrameError, MAX_FRAME_BYTES, decode_map, read_frame, write_frame};
pub use protocol::{REQUEST_KEYS, Request, parse, reply};
pub use session::{Event, Shutdown, serve, spawn_reader};
