//! The VoxCPM2 network, one file per part (see `voxcpm2-architecture.md` §4-§6).

pub mod audio_vae;
pub mod cfm;
mod conv;
pub mod embedding;
pub mod fsq;
pub mod kv_cache;
pub mod loc_dit;
pub mod loc_enc;
pub mod lora;
pub mod minicpm;
pub mod nn;
pub mod rope;
pub mod sequence;
mod snake;
pub mod voxcpm2;

pub use cfm::CfmSettings;
pub use sequence::{
    AUDIO_START, CONTEXT_PATCHES, DEFAULT_RATIO_THRESHOLD, REF_AUDIO_END, REF_AUDIO_START, Sequence, patch_cap,
};
pub use voxcpm2::{GenerationSettings, VoxCpm2};
