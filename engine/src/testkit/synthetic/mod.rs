//! Random-weight checkpoints in the official layout, for benchmarks and loader tests at sizes
//! too large to commit (up to the released 2.29 B-parameter shapes).
//!
//! The tensor list comes from the model's own loader ([`VoxCpm::tensor_inventory`]), so a
//! synthetic checkpoint has exactly the names and shapes the official one has.

mod presets;
pub mod pth;

use std::io::{BufWriter, Write};
use std::path::Path;

use crate::config::VoxCpmConfig;
use crate::error::{Error, Result};
use crate::model::VoxCpm;

pub use presets::{Preset, preset_config};

/// Element type of `model.safetensors` (the VAE is always f32, as released).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightDtype {
    F32,
    BF16,
}

/// Writes `config.json`, `model.safetensors`, `audiovae.pth` and the tokenizer files (copied
/// from `tokenizer_dir`) into `dir`. Values are uniform with a fan-in scale; norms, gains and
/// Snake alphas sit near 1 so activations stay finite.
pub fn write_checkpoint(
    config_json: &serde_json::Value,
    dir: &Path,
    dtype: WeightDtype,
    tokenizer_dir: &Path,
    seed: u64,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::write(dir, e))?;
    let config_path = dir.join("config.json");
    let text = serde_json::to_string_pretty(config_json).expect("a JSON value serialises");
    std::fs::write(&config_path, text).map_err(|e| Error::write(&config_path, e))?;
    let config = VoxCpmConfig::load(&config_path)?;
    for name in ["tokenizer.json", "tokenizer_config.json"] {
        let (from, to) = (tokenizer_dir.join(name), dir.join(name));
        std::fs::copy(&from, &to).map_err(|e| Error::io(&from, e))?;
    }
    let (model_tensors, vae_tensors) = VoxCpm::tensor_inventory(&config);
    let mut rng = Rng(seed | 1);
    write_safetensors(&dir.join("model.safetensors"), &model_tensors, dtype, &mut rng)?;
    let boundaries = config.audio_vae_config.sr_bin_boundaries.clone().unwrap_or_default();
    let vae: Vec<pth::PthTensor> = vae_tensors
        .iter()
        .map(|(name, shape)| {
            if name == "decoder.sr_bin_boundaries" {
                pth::PthTensor::int32(name, shape, boundaries.iter().map(|&b| b as i32).collect())
            } else {
                pth::PthTensor::float32(name, shape, random_values(name, shape, &mut rng))
            }
        })
        .collect();
    pth::write_state_dict(&dir.join("audiovae.pth"), &vae)
}

/// Plausible random values for a tensor, chosen by its role.
fn random_values(name: &str, shape: &[usize], rng: &mut Rng) -> Vec<f32> {
    let n: usize = shape.iter().product();
    let near_one = name.ends_with("norm.weight")
        || name.ends_with(".alpha")
        || name.ends_with("weight_g")
        || name.contains("scale_embed");
    if near_one {
        return (0..n).map(|_| 1.0 + 0.1 * rng.symmetric()).collect();
    }
    let fan_in: usize = if shape.len() > 1 { shape[1..].iter().product() } else { shape[0] };
    let scale = (3.0 / fan_in.max(1) as f32).sqrt();
    (0..n).map(|_| scale * rng.symmetric()).collect()
}

/// Streams a safetensors file without holding all tensors in memory.
fn write_safetensors(path: &Path, tensors: &[(String, Vec<usize>)], dtype: WeightDtype, rng: &mut Rng) -> Result<()> {
    let width = if dtype == WeightDtype::BF16 { 2 } else { 4 };
    let mut header = serde_json::Map::new();
    let mut offset = 0usize;
    for (name, shape) in tensors {
        let bytes = shape.iter().product::<usize>() * width;
        header.insert(
            name.clone(),
            serde_json::json!({
                "dtype": if width == 2 { "BF16" } else { "F32" },
                "shape": shape,
                "data_offsets": [offset, offset + bytes],
            }),
        );
        offset += bytes;
    }
    let mut header = serde_json::to_vec(&serde_json::Value::Object(header)).expect("JSON");
    header.resize(header.len().div_ceil(8) * 8, b' ');
    let io = |e| Error::write(path, e);
    let mut out = BufWriter::new(std::fs::File::create(path).map_err(io)?);
    out.write_all(&(header.len() as u64).to_le_bytes()).map_err(io)?;
    out.write_all(&header).map_err(io)?;
    for (name, shape) in tensors {
        let values = random_values(name, shape, rng);
        let bytes: Vec<u8> = match dtype {
            WeightDtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            WeightDtype::BF16 => values.iter().flat_map(|v| half::bf16::from_f32(*v).to_le_bytes()).collect(),
        };
        out.write_all(&bytes).map_err(io)?;
    }
    out.flush().map_err(io)
}

/// xorshift64*: fast, seedable, good enough for random weights.
struct Rng(u64);

impl Rng {
    /// Uniform in [-1, 1).
    fn symmetric(&mut self) -> f32 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
        bits as f32 / (1u64 << 23) as f32 - 1.0
    }
}
