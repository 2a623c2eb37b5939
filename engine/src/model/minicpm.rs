//! The MiniCPM-4 transformer stack (architecture doc §4), used four times: base LM, residual
//! LM (no RoPE in VoxCPM2), LocEnc and LocDiT (bidirectional). No stack has an LM head.

use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Bool, Tensor};

use super::kv_cache::KvCache;
use super::nn::{Linear, RmsNorm, in_f32};
use super::rope::Rope;
use crate::config::StackConfig;
use crate::error::Result;
use crate::weights::WeightLoader;

#[derive(Debug, Clone)]
struct Attention {
    q_proj: Linear,
    k_proj: Linear,
    v_proj: Linear,
    o_proj: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

#[derive(Debug, Clone)]
struct Mlp {
    gate_proj: Linear,
    up_proj: Linear,
    down_proj: Linear,
}

#[derive(Debug, Clone)]
struct DecoderLayer {
    input_layernorm: RmsNorm,
    self_attn: Attention,
    post_attention_layernorm: RmsNorm,
    mlp: Mlp,
}

/// A stack of pre-norm decoder layers with its final norm.
#[derive(Debug, Clone)]
pub struct MiniCpmStack {
    layers: Vec<DecoderLayer>,
    norm: RmsNorm,
    rope: Option<Rope>,
    residual_scale: f64,
    config: StackConfig,
}

/// Where a forward pass takes its keys from and whether it may look ahead.
enum Context<'a, 'c> {
    /// Bidirectional attention over the input alone (LocEnc, LocDiT).
    Full,
    /// Causal attention; keys are appended to the cache, which may already hold a prefix.
    Cached(&'a mut KvCache),
    /// One decode step of several requests: input row `r` is one position of the request whose
    /// cache is `caches[r]` (each of its own length).
    Batch(&'a mut [&'c mut KvCache]),
}

impl MiniCpmStack {
    /// Loads `{prefix}.layers.{i}.*` and `{prefix}.norm.weight`.
    pub fn load(w: &mut WeightLoader, prefix: &str, config: &StackConfig, rope: Option<Rope>) -> Self {
        let c = config;
        let (h, q_dim, kv_dim) = (c.hidden_size, c.num_heads * c.head_dim, c.num_kv_heads * c.head_dim);
        let layers = (0..c.num_layers)
            .map(|i| {
                let p = format!("{prefix}.layers.{i}");
                DecoderLayer {
                    input_layernorm: RmsNorm::load(w, &format!("{p}.input_layernorm"), h, c.rms_norm_eps),
                    self_attn: Attention {
                        q_proj: Linear::load(w, &format!("{p}.self_attn.q_proj"), h, q_dim, false),
                        k_proj: Linear::load(w, &format!("{p}.self_attn.k_proj"), h, kv_dim, false),
                        v_proj: Linear::load(w, &format!("{p}.self_attn.v_proj"), h, kv_dim, false),
                        o_proj: Linear::load(w, &format!("{p}.self_attn.o_proj"), q_dim, h, false),
                        heads: c.num_heads,
                        kv_heads: c.num_kv_heads,
                        head_dim: c.head_dim,
                    },
                    post_attention_layernorm: RmsNorm::load(
                        w,
                        &format!("{p}.post_attention_layernorm"),
                        h,
                        c.rms_norm_eps,
                    ),
                    mlp: Mlp {
                        gate_proj: Linear::load(w, &format!("{p}.mlp.gate_proj"), h, c.intermediate_size, false),
                        up_proj: Linear::load(w, &format!("{p}.mlp.up_proj"), h, c.intermediate_size, false),
                        down_proj: Linear::load(w, &format!("{p}.mlp.down_proj"), c.intermediate_size, h, false),
                    },
                }
            })
            .collect();
        let norm = RmsNorm::load(w, &format!("{prefix}.norm"), h, c.rms_norm_eps);
        let rope = if c.use_rope { rope } else { None };
        MiniCpmStack { layers, norm, rope, residual_scale: c.residual_scale, config: c.clone() }
    }

    pub fn config(&self) -> &StackConfig {
        &self.config
    }

    /// Every linear layer, for adapters.
    pub fn linears_mut(&mut self) -> Vec<&mut Linear> {
        let mut out = Vec::new();
        for layer in &mut self.layers {
            let (a, m) = (&mut layer.self_attn, &mut layer.mlp);
            out.extend([&mut a.q_proj, &mut a.k_proj, &mut a.v_proj, &mut a.o_proj]);
            out.extend([&mut m.gate_proj, &mut m.up_proj, &mut m.down_proj]);
        }
        out
    }

    /// A cache sized for this stack.
    pub fn new_cache(&self, capacity: usize) -> KvCache {
        let c = &self.config;
        KvCache::new(c.num_layers, c.num_kv_heads, c.head_dim, capacity, &self.norm.weight.device())
    }

    /// Bidirectional pass over `x` `[B, T, H]` (LocEnc, LocDiT).
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        self.run(x, Context::Full)
    }

    /// Causal pass over `x` `[1, T, H]` that appends its keys to `cache` (prefill, and one
    /// decode step when T = 1).
    pub fn forward_cached(&self, x: Tensor<3>, cache: &mut KvCache) -> Result<Tensor<3>> {
        cache.check_room(x.dims()[1])?;
        let t = x.dims()[1];
        let out = self.run(x, Context::Cached(cache));
        cache.advance(t);
        Ok(out)
    }

    /// One decode step: `x` `[1, H]` at the cache's next position.
    pub fn step(&self, x: Tensor<2>, cache: &mut KvCache) -> Result<Tensor<2>> {
        self.step_batch(x, &mut [cache])
    }

    /// One decode step of several requests at once: row `r` of `x` `[B, H]` at the next
    /// position of `caches[r]`. Every linear layer multiplies all B rows in one product (the
    /// weights stream from memory once per step, not once per request); only the attention
    /// scores run per request, over that request's own cache. Row `r` of the answer is
    /// bit for bit what [`step`](Self::step) gives that request alone.
    pub fn step_batch(&self, x: Tensor<2>, caches: &mut [&mut KvCache]) -> Result<Tensor<2>> {
        let rows = x.dims()[0];
        if rows != caches.len() {
            return Err(crate::error::Error::InvalidInput(format!(
                "a batched step has {rows} input rows for {} caches",
                caches.len()
            )));
        }
        for cache in caches.iter() {
            cache.check_room(1)?;
        }
        let out = self.run(x.unsqueeze_dim(1), Context::Batch(caches));
        for cache in caches.iter_mut() {
            cache.advance(1);
        }
        Ok(out.squeeze_dim(1))
    }

    fn run(&self, mut x: Tensor<3>, mut context: Context) -> Tensor<3> {
        for (i, layer) in self.layers.iter().enumerate() {
            let attn_in = layer.input_layernorm.forward(x.clone());
            let attn_out = layer.self_attn.forward(attn_in, i, self.rope.as_ref(), &mut context);
            x = x + self.scaled(attn_out);
            let mlp_in = layer.post_attention_layernorm.forward(x.clone());
            x = x + self.scaled(layer.mlp.forward(mlp_in));
        }
        self.norm.forward(x)
    }

    fn scaled(&self, x: Tensor<3>) -> Tensor<3> {
        if self.residual_scale == 1.0 { x } else { x * self.residual_scale }
    }
}

impl Attention {
    fn forward(&self, x: Tensor<3>, layer: usize, rope: Option<&Rope>, context: &mut Context) -> Tensor<3> {
        let [b, t, _] = x.dims();
        let (h, kv, d) = (self.heads, self.kv_heads, self.head_dim);
        let split = |y: Tensor<3>, n: usize| y.reshape([b, t, n, d]).swap_dims(1, 2);
        let [q, k, v]: [Tensor<3>; 3] = Linear::forward_group(&[&self.q_proj, &self.k_proj, &self.v_proj], x)
            .try_into()
            .expect("three layers in, three outputs");
        let (q, k, v) = (split(q, h), split(k, kv), split(v, kv));
        let out = match context {
            Context::Full => {
                let (q, k) = rotate(rope, q, k, 0);
                self.attend(q, k, v, None)
            }
            Context::Cached(cache) => self.attend_cached(q, k, v, layer, rope, cache),
            Context::Batch(caches) => {
                let row = |x: &Tensor<4>, r: usize| x.clone().slice_dim(0, r..r + 1);
                let outs = caches
                    .iter_mut()
                    .enumerate()
                    .map(|(r, cache)| self.attend_cached(row(&q, r), row(&k, r), row(&v, r), layer, rope, cache))
                    .collect();
                Tensor::cat(outs, 0)
            }
        };
        let out = out.reshape([b, h, t, d]).swap_dims(1, 2).reshape([b, t, h * d]);
        self.o_proj.forward(out)
    }

    /// Causal attention of `q`, `k`, `v` (one request, `T` new positions) after the prefix in
    /// `cache`, to which the new keys and values are appended.
    fn attend_cached(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        layer: usize,
        rope: Option<&Rope>,
        cache: &mut KvCache,
    ) -> Tensor<4> {
        let (t, start) = (q.dims()[2], cache.len());
        let (q, k) = rotate(rope, q, k, start);
        cache.write(layer, k, v);
        let (k, v) = cache.read(layer, start + t);
        let mask = (t > 1).then(|| causal_mask(self.heads / self.kv_heads, t, start, &q.device()));
        self.attend(q, k, v, mask)
    }

    /// Scores, softmax and the weighted values: `q` `[B, heads, T, d]` against `k`, `v`
    /// `[B, kv_heads, S, d]`, as `[B, kv_heads, group·T, d]`.
    fn attend(&self, q: Tensor<4>, k: Tensor<4>, v: Tensor<4>, mask: Option<Tensor<2, Bool>>) -> Tensor<4> {
        let [b, _, t, d] = q.dims();
        // GQA without copying K/V: query head h reads KV head h / group, so the group's
        // queries become extra rows of one [group·T, S] score matrix per KV head.
        let (kv, group) = (self.kv_heads, self.heads / self.kv_heads);
        let q = q.reshape([b, kv, group * t, d]);
        let scale = 1.0 / (d as f64).sqrt();
        let mut scores = q.matmul(k.swap_dims(2, 3)) * scale;
        if let Some(mask) = mask {
            scores = scores.mask_fill(mask.unsqueeze::<4>(), f32::NEG_INFINITY);
        }
        in_f32(scores, |scores| softmax(scores, 3)).matmul(v)
    }
}

/// Queries and keys with RoPE applied from position `start` (unchanged without RoPE).
fn rotate(rope: Option<&Rope>, q: Tensor<4>, k: Tensor<4>, start: usize) -> (Tensor<4>, Tensor<4>) {
    match rope {
        Some(rope) => (rope.apply(q, start), rope.apply(k, start)),
        None => (q, k),
    }
}

/// `[group·T, start+T]`, true where row `(g, i)` (query position `start+i`) must not see key `j`.
fn causal_mask(group: usize, t: usize, start: usize, device: &burn::tensor::Device) -> Tensor<2, Bool> {
    let s = start + t;
    let data: Vec<bool> = (0..group * t).flat_map(|row| (0..s).map(move |j| j > start + row % t)).collect();
    Tensor::from_data(burn::tensor::TensorData::new(data, [group * t, s]), device)
}

impl Mlp {
    fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [gate, up]: [Tensor<3>; 2] =
            Linear::forward_group(&[&self.gate_proj, &self.up_proj], x).try_into().expect("two layers in, two outputs");
        self.down_proj.forward(silu(gate) * up)
    }
}
