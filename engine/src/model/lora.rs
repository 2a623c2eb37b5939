//! LoRA adapters as the official fine-tuning writes them: `lora_weights.safetensors` (or
//! `lora_weights.ckpt`) holding `<linear>.lora_A` `[r, in]` and `<linear>.lora_B` `[out, r]`
//! under the official parameter names, and `lora_config.json` (the official `LoRAConfig`:
//! `r`, `alpha`, ...). A layer with an adapter computes `base(x) + (x·Aᵀ·Bᵀ)·alpha/r`, as the
//! official `LoRALinear` does at inference. The base weights are never touched, so removing
//! the adapter restores the model bit for bit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::tensor::module::linear;
use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Error, Result};
use crate::weights::WeightFile;

/// The low-rank update of one linear layer, stored ready for `linear` (`[in, r]`, `[r, out]`).
#[derive(Debug, Clone)]
pub struct LoraDelta {
    down: Tensor<2>,
    up: Tensor<2>,
    scaling: f32,
}

impl LoraDelta {
    /// `(x·Aᵀ·Bᵀ)·scaling`.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        linear(linear(x, self.down.clone(), None), self.up.clone(), None) * self.scaling
    }
}

/// An adapter read from disk: every tensor of its weight file by name, and its scale.
#[derive(Debug)]
pub struct LoraAdapter {
    pub path: PathBuf,
    tensors: BTreeMap<String, (Vec<f32>, Vec<usize>)>,
    pub rank: usize,
    pub alpha: f64,
}

#[derive(serde::Deserialize)]
struct ConfigFields {
    r: usize,
    alpha: f64,
}

impl LoraAdapter {
    /// Reads an adapter directory.
    pub fn read(dir: &Path) -> Result<Self> {
        let bad = |message: String| Error::InvalidInput(format!("LoRA adapter {}: {message}", dir.display()));
        if !dir.is_dir() {
            return Err(bad("not a directory".into()));
        }
        let config_path = dir.join("lora_config.json");
        let text = std::fs::read_to_string(&config_path).map_err(|e| Error::io(&config_path, e))?;
        let json: serde_json::Value =
            serde_json::from_str(&text).map_err(|e| bad(format!("lora_config.json is not valid JSON ({e})")))?;
        // The fields at top level (LoRAConfig.model_dump()), or nested under "lora_config".
        let fields = json.get("lora_config").cloned().unwrap_or(json);
        let ConfigFields { r, alpha } = serde_json::from_value(fields)
            .map_err(|e| bad(format!("lora_config.json needs an integer r and a number alpha ({e})")))?;
        if r == 0 || !alpha.is_finite() {
            return Err(bad(format!("lora_config.json has r = {r} and alpha = {alpha}; r must be positive")));
        }
        let weights = ["lora_weights.safetensors", "lora_weights.ckpt", "lora_weights.pth"]
            .iter()
            .map(|f| dir.join(f))
            .find(|p| p.is_file())
            .ok_or_else(|| bad("holds no lora_weights.safetensors (or lora_weights.ckpt)".into()))?;
        let file = WeightFile::open(&weights)?;
        let mut tensors = BTreeMap::new();
        for (name, tensor) in &file.tensors {
            let values = tensor.to_f32().map_err(|e| bad(format!("{name}: {e}")))?;
            tensors.insert(name.clone(), (values, tensor.shape.clone()));
        }
        Ok(LoraAdapter { path: dir.to_owned(), tensors, rank: r, alpha })
    }

    /// Number of tensors in the weight file.
    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// The delta for `layer` (a linear `[d_in → d_out]`) if the adapter names it, checking
    /// that both halves are there with the shapes the layer and `r` require.
    pub fn delta(&self, layer: &str, d_in: usize, d_out: usize, device: &Device) -> Result<Option<LoraDelta>> {
        let (a, b) = (self.tensors.get(&format!("{layer}.lora_A")), self.tensors.get(&format!("{layer}.lora_B")));
        let bad = |m: String| Error::InvalidInput(format!("LoRA adapter {}: {layer}: {m}", self.path.display()));
        let (a, b) = match (a, b) {
            (None, None) => return Ok(None),
            (Some(a), Some(b)) => (a, b),
            _ => return Err(bad("has only one of lora_A and lora_B".into())),
        };
        let r = self.rank;
        if a.1 != [r, d_in] {
            return Err(bad(format!("lora_A has shape {:?}; the layer needs [{r}, {d_in}] (r = {r})", a.1)));
        }
        if b.1 != [d_out, r] {
            return Err(bad(format!("lora_B has shape {:?}; the layer needs [{d_out}, {r}] (r = {r})", b.1)));
        }
        let tensor =
            |values: &[f32], shape: [usize; 2]| Tensor::<2>::from_data(TensorData::new(values.to_vec(), shape), device);
        Ok(Some(LoraDelta {
            down: tensor(&a.0, [r, d_in]).transpose(),
            up: tensor(&b.0, [d_out, r]).transpose(),
            scaling: (self.alpha / r as f64) as f32,
        }))
    }
}
