//! Preallocated key/value cache of one causal stack (architecture doc §4.3): written in place
//! one position at a time, read up to the current length.

use burn::tensor::{Device, Tensor};

use crate::error::{Error, Result};

#[derive(Debug)]
pub struct KvCache {
    /// Per layer `[B, kv_heads, capacity, head_dim]`.
    keys: Vec<Tensor<4>>,
    values: Vec<Tensor<4>>,
    len: usize,
    capacity: usize,
}

impl KvCache {
    pub fn new(layers: usize, kv_heads: usize, head_dim: usize, capacity: usize, device: &Device) -> Self {
        let empty = || (0..layers).map(|_| Tensor::zeros([1, kv_heads, capacity, head_dim], device)).collect();
        KvCache { keys: empty(), values: empty(), len: 0, capacity }
    }

    /// Positions filled so far; the next step writes at this index.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Forgets every position from `len` on (the next write goes there).
    pub fn truncate(&mut self, len: usize) {
        self.len = self.len.min(len);
    }

    /// Fails before a write that would overflow, like the reference's `StaticKVCache.step`.
    pub fn check_room(&self, new_positions: usize) -> Result<()> {
        if self.len + new_positions > self.capacity {
            return Err(Error::InvalidInput(format!(
                "sequence of {} positions exceeds the KV cache (config max_length {})",
                self.len + new_positions,
                self.capacity
            )));
        }
        Ok(())
    }

    /// Stores `k`, `v` `[B, kv_heads, T, d]` of `layer` at positions `len..len+T`.
    pub fn write(&mut self, layer: usize, k: Tensor<4>, v: Tensor<4>) {
        let t = k.dims()[2];
        let range = self.len..self.len + t;
        for (cache, new) in [(&mut self.keys[layer], k), (&mut self.values[layer], v)] {
            let [b, h, _, d] = new.dims();
            cache.inplace(|c| c.slice_assign([0..b, 0..h, range.clone(), 0..d], new));
        }
    }

    /// Keys and values of `layer` for positions `0..upto`.
    pub fn read(&self, layer: usize, upto: usize) -> (Tensor<4>, Tensor<4>) {
        let k = self.keys[layer].clone().slice_dim(2, 0..upto);
        let v = self.values[layer].clone().slice_dim(2, 0..upto);
        (k, v)
    }

    /// Advances the length once every layer has written `t` new positions.
    pub fn advance(&mut self, t: usize) {
        self.len += t;
    }
}
