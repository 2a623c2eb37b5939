//! The VoxCPM network (v1 and VoxCPM2), one file per part (see `voxcpm2-architecture.md`
//! §4-§6 and, for v1's differences, tools/golden/V1_NOTES.md).

pub mod audio_vae;
pub mod batch;
pub mod cfm;
mod conv;
pub mod embedding;
pub mod fsq;
pub mod kv_cache;
mod load_options;
pub mod loc_dit;
pub mod loc_enc;
pub mod lora;
pub mod minicpm;
pub mod nn;
pub mod rope;
pub mod sequence;
mod snake;
pub mod voxcpm;

pub use batch::{Generation, Patch};
pub use cfm::CfmSettings;
pub use load_options::LoadOptions;
pub use sequence::{AUDIO_START, DEFAULT_RATIO_THRESHOLD, REF_AUDIO_END, REF_AUDIO_START, Sequence, patch_cap};
pub use voxcpm::{GenerationSettings, VoxCpm};
