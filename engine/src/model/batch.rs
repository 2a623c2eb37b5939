//! Continuous batching of the patch loop (§6.3): several requests, each with its own prefix,
//! KV caches, settings and noise, generate their next patch together.
//!
//! The batch dimension is the first dimension of every activation: request `r` is row `r` of
//! the LM hidden states `[B, H]`, of LocEnc's patches `[B, 1, P, D]` and of the CFM solver's
//! `[B, D, P]` (`2·B` rows in LocDiT: both guidance branches). Every linear layer therefore
//! streams its weights once per step for all requests. What differs per request runs per
//! request: attention scores over its own KV cache ([`MiniCpmStack::step_batch`]), the CFM
//! schedule and the CFG-Zero* projection ([`cfm::solve_batch`]), the noise, the stop decision.
//! The CPU products compute every row with the same sums in the same order whatever the
//! batch, so a request's patches in a batch equal its patches alone, bit for bit.

use burn::tensor::{Tensor, TensorData};

use super::cfm::{self, CfmSettings};
use super::kv_cache::KvCache;
use super::nn::to_vec;
use super::voxcpm::{GenerationSettings, VoxCpm};
use crate::error::{Error, Result, ensure_finite};
use crate::noise::NoiseSource;

/// One request's place in the patch loop: its caches after prefill and every patch so far,
/// and what the next patch is conditioned on. Made by [`VoxCpm::start`], moved on by
/// [`VoxCpm::step`].
#[derive(Debug)]
pub struct Generation {
    pub(super) base_cache: KvCache,
    pub(super) residual_cache: KvCache,
    /// The base LM's (quantised) last hidden state `[1, H]`.
    pub(super) lm_hidden: Tensor<2>,
    /// The residual LM's last hidden state `[1, H]`.
    pub(super) residual_hidden: Tensor<2>,
    /// The previous patch `[1, D, P]`: the DiT's condition, and what the LMs read next.
    pub(super) cond: Tensor<3>,
    pub(super) settings: GenerationSettings,
    /// `settings.max_len`, cut where the model's context is full.
    pub(super) max_len: usize,
    pub(super) patches: usize,
    pub(super) phase: Phase,
    /// Why the request ends at its next step (its stop head went non-finite).
    pub(super) failure: Option<Error>,
}

/// What a generation does at its next step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Phase {
    /// Its hidden states are current: sample the next patch.
    Sample,
    /// The LMs have yet to read the last patch, then sample. (Deferred to the next step so
    /// that a request dropped after its patch never pays for the LM steps.)
    Advance,
    /// It stopped or failed.
    Done,
}

/// A generated patch.
#[derive(Debug, Clone, PartialEq)]
pub struct Patch {
    /// `[P, D]` row-major.
    pub values: Vec<f32>,
    /// Whether it is the request's last (stop head, `max_len`, or the context is full).
    pub last: bool,
}

impl Generation {
    /// Patches generated so far.
    pub fn patches(&self) -> usize {
        self.patches
    }

    /// Whether the request has stopped (or failed): it must leave the batch.
    pub fn is_done(&self) -> bool {
        self.phase == Phase::Done
    }

    /// Takes the sampled patch `[1, D, P]` (`values` as `[P, D]`) and the stop logits; ends
    /// the request on non-finite output.
    fn take_patch(&mut self, patch: Tensor<3>, values: Vec<f32>, logits: &[f32]) -> Result<Patch> {
        self.phase = Phase::Done;
        ensure_finite(&values, "a generated patch")?;
        if let Err(error) = ensure_finite(logits, "the stop head") {
            // The patch itself is sound and goes out; the request ends at its next step, as
            // the loop alone reads the stop head after handing the patch over.
            self.patches += 1;
            self.failure = Some(error);
            self.phase = Phase::Sample;
            return Ok(Patch { values, last: false });
        }
        let i = self.patches;
        self.patches += 1;
        self.cond = patch;
        // argmax == 1; a tie is argmax 0 (§5.8).
        let stop = logits[1] > logits[0];
        let last = (i > self.settings.min_len && stop) || i + 1 == self.max_len;
        if last && i + 1 == self.max_len && self.max_len < self.settings.max_len && !stop {
            tracing::warn!(max_len = self.max_len, "the take was cut where the model's context (max_length) is full");
        }
        if !last {
            self.phase = Phase::Advance;
        }
        Ok(Patch { values, last })
    }
}

impl VoxCpm {
    /// The next patch of every request in `batch`, whose noise comes from `noise` (one source
    /// per request, in the same order). The answer holds one result per request: an error
    /// (non-finite output, noise that ran out) ends only that request. The outer error is for
    /// failures of the whole step. Requests that are done must have left the batch.
    pub fn step(
        &self,
        batch: &mut [&mut Generation],
        noise: &mut [&mut dyn NoiseSource],
    ) -> Result<Vec<Result<Patch>>> {
        if batch.len() != noise.len() {
            return Err(Error::InvalidInput(format!(
                "a batch of {} requests needs as many noise sources, got {}",
                batch.len(),
                noise.len()
            )));
        }
        if batch.iter().any(|generation| generation.is_done()) {
            return Err(Error::InvalidInput("a finished generation was stepped again".into()));
        }
        self.advance(batch)?;
        self.sample(batch, noise)
    }

    /// The LMs read the last patch of every request that has one pending (§6.3 steps 5-7).
    fn advance(&self, batch: &mut [&mut Generation]) -> Result<()> {
        let mut rows: Vec<&mut Generation> =
            batch.iter_mut().filter(|g| g.phase == Phase::Advance).map(|g| &mut **g).collect();
        if rows.is_empty() {
            return Ok(());
        }
        let patches = Tensor::cat(rows.iter().map(|g| g.cond.clone().swap_dims(1, 2)).collect(), 0);
        let step_embed = self.embed_patches(patches.unsqueeze_dim(1)).squeeze_dim::<2>(1);
        let mut caches: Vec<&mut KvCache> = rows.iter_mut().map(|g| &mut g.base_cache).collect();
        let lm_hidden = self.fsq().forward(self.base_lm().step_batch(step_embed.clone(), &mut caches)?);
        let residual_in = self.residual_input(lm_hidden.clone(), step_embed);
        let mut caches: Vec<&mut KvCache> = rows.iter_mut().map(|g| &mut g.residual_cache).collect();
        let residual_hidden = self.residual_lm().step_batch(residual_in, &mut caches)?;
        for (r, g) in rows.into_iter().enumerate() {
            g.lm_hidden = lm_hidden.clone().slice_dim(0, r..r + 1);
            g.residual_hidden = residual_hidden.clone().slice_dim(0, r..r + 1);
            g.phase = Phase::Sample;
        }
        Ok(())
    }

    /// One patch per request: noise, the CFM solve of all of them, the stop head.
    fn sample(&self, batch: &mut [&mut Generation], noise: &mut [&mut dyn NoiseSource]) -> Result<Vec<Result<Patch>>> {
        let (p, d) = (self.config().patch_size, self.config().feat_dim);
        let device = self.device();
        let mut results: Vec<Option<Result<Patch>>> = batch.iter().map(|_| None).collect();
        let mut live = Vec::new();
        let mut z = Vec::new();
        for (r, source) in noise.iter_mut().enumerate() {
            if let Some(error) = batch[r].failure.take() {
                batch[r].phase = Phase::Done;
                results[r] = Some(Err(error));
                continue;
            }
            match source.next_patch(d * p) {
                Ok(values) => {
                    live.push(r);
                    z.push(Tensor::<3>::from_data(TensorData::new(values, [1, d, p]), &device));
                }
                Err(e) => {
                    batch[r].phase = Phase::Done;
                    results[r] = Some(Err(e));
                }
            }
        }
        if !live.is_empty() {
            let rows = |f: &dyn Fn(&Generation) -> Tensor<2>| live.iter().map(|&r| f(batch[r])).collect::<Vec<_>>();
            let lm_hidden = Tensor::cat(rows(&|g| g.lm_hidden.clone()), 0);
            let residual_hidden = Tensor::cat(rows(&|g| g.residual_hidden.clone()), 0);
            let cond = Tensor::cat(live.iter().map(|&r| batch[r].cond.clone()).collect(), 0);
            let settings: Vec<CfmSettings> = live.iter().map(|&r| batch[r].settings.cfm).collect();
            let mu = self.dit_condition(lm_hidden.clone(), residual_hidden);
            let patches = cfm::solve_batch(self.loc_dit(), Tensor::cat(z, 0), mu, cond, &settings);
            let values = to_vec(patches.clone().swap_dims(1, 2))?;
            let logits = to_vec(self.stop_logits(lm_hidden))?;
            for (i, &r) in live.iter().enumerate() {
                let patch = patches.clone().slice_dim(0, i..i + 1);
                let patch_values = values[i * p * d..(i + 1) * p * d].to_vec();
                results[r] = Some(batch[r].take_patch(patch, patch_values, &logits[2 * i..2 * i + 2]));
            }
        }
        Ok(results.into_iter().map(|result| result.expect("every request answered above")).collect())
    }
}
