//! The base LM's token embedding (§3.2), kept in the checkpoint's precision: only the rows a
//! prompt uses are ever widened to f32, so the 73k-row table costs half the memory in bf16.

use std::sync::Arc;

use burn::tensor::{Device, Tensor, TensorData};

use crate::kernels::WeightElement;
use crate::weights::{NativeValues, WeightLoader};

#[derive(Debug, Clone)]
pub struct TokenEmbedding {
    rows: Arc<NativeValues>,
    dim: usize,
    /// MiniCPM's `scale_emb`, applied to each looked-up row in f32 (as scaling the f32 table).
    scale: f32,
    device: Device,
}

impl TokenEmbedding {
    pub fn load(w: &mut WeightLoader, name: &str, vocab: usize, dim: usize, scale: f32) -> Self {
        let rows = w.native_values(name, &[vocab, dim]).unwrap_or_else(|| NativeValues::F32(vec![0.0; vocab * dim]));
        TokenEmbedding { rows: Arc::new(rows), dim, scale, device: w.device().clone() }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// `[1, T, dim]` for token ids the caller has checked against the vocabulary.
    pub fn lookup(&self, ids: &[i64]) -> Tensor<3> {
        let d = self.dim;
        let mut out = Vec::with_capacity(ids.len() * d);
        for &id in ids {
            let row = id as usize * d..(id as usize + 1) * d;
            match self.rows.as_ref() {
                NativeValues::F32(v) => out.extend(v[row].iter().map(|x| x * self.scale)),
                NativeValues::Bf16(v) => out.extend(v[row].iter().map(|b| b.widen() * self.scale)),
            }
        }
        Tensor::from_data(TensorData::new(out, [1, ids.len(), d]), &self.device)
    }
}
