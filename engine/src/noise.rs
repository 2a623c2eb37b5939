//! Where the flow-matching sampler gets its Gaussian noise: a seeded generator for users, or a
//! replay of the noise the official implementation drew, for parity.

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, StandardNormal};

use crate::error::{Error, Result};

/// Supplies one `[feat_dim × patch_size]` block of standard normal noise per generated patch.
pub trait NoiseSource {
    /// Noise for the next patch, `len` values in `[D, P]` row-major order.
    fn next_patch(&mut self, len: usize) -> Result<Vec<f32>>;
}

/// Reproducible noise from a seed (ChaCha8, stable across platforms and releases).
pub struct SeededNoise {
    rng: ChaCha8Rng,
}

impl SeededNoise {
    pub fn new(seed: u64) -> Self {
        SeededNoise { rng: ChaCha8Rng::seed_from_u64(seed) }
    }
}

impl NoiseSource for SeededNoise {
    fn next_patch(&mut self, len: usize) -> Result<Vec<f32>> {
        Ok((0..len).map(|_| StandardNormal.sample(&mut self.rng)).collect())
    }
}

/// Replays recorded noise, patch by patch, and fails once it runs out.
pub struct ReplayNoise {
    values: Vec<f32>,
    patch_len: usize,
    next: usize,
}

impl ReplayNoise {
    /// `values` holds `patches × patch_len` numbers.
    pub fn new(values: Vec<f32>, patch_len: usize) -> Self {
        ReplayNoise { values, patch_len, next: 0 }
    }

    pub fn patches(&self) -> usize {
        self.values.len() / self.patch_len.max(1)
    }
}

impl NoiseSource for ReplayNoise {
    fn next_patch(&mut self, len: usize) -> Result<Vec<f32>> {
        if len != self.patch_len {
            return Err(Error::InvalidInput(format!(
                "recorded noise has {} values per patch, the model needs {len}",
                self.patch_len
            )));
        }
        let start = self.next * len;
        let Some(block) = self.values.get(start..start + len) else {
            return Err(Error::InvalidInput(format!(
                "recorded noise covers {} patches, generation needs more",
                self.patches()
            )));
        };
        self.next += 1;
        Ok(block.to_vec())
    }
}
