//! Where a batched step's time goes: each stage of one patch loop step with C requests' rows
//! (the base and residual LM steps over C caches, LocEnc over C patches, the CFM solve's
//! LocDiT calls over 2·C branches), so that the gain of batching can be read per stage: a
//! stage bound by streaming its weights costs about the same at any C, one bound by arithmetic
//! costs C times as much.

use std::path::Path;

use anyhow::Context;
use burn::tensor::{Tensor, TensorData};
use voxcpm_engine::LoadOptions;
use voxcpm_engine::model::VoxCpm;
use voxcpm_engine::model::audio_vae::DecoderStream;
use voxcpm_engine::model::cfm::{self, CfmSettings};
use voxcpm_engine::model::kv_cache::KvCache;
use voxcpm_engine::noise::{NoiseSource, SeededNoise};
use voxcpm_engine::runtime::ResolvedDevice;

use super::{median_seconds, memory, sync};

/// Timed repetitions per stage and concurrency (the median is reported).
const RUNS: usize = 3;

/// Stage times of one step at each of `concurrency` (ascending), with `context` positions in
/// every request's caches.
pub fn time(
    dir: &Path,
    lora: Option<&Path>,
    resolved: &ResolvedDevice,
    timesteps: usize,
    context: usize,
    concurrency: &[usize],
) -> anyhow::Result<serde_json::Value> {
    let device = &resolved.device;
    let mut model = VoxCpm::load(dir, &LoadOptions::on(device).with_products(resolved.precision.cpu_products()))
        .with_context(|| format!("loading {}", dir.display()))?;
    if let Some(adapter) = lora {
        model.load_lora(adapter).with_context(|| format!("applying {}", adapter.display()))?;
    }
    let config = model.config().clone();
    let (h, p, d) = (config.lm_config.hidden_size, config.patch_size, config.feat_dim);
    let mut noise = SeededNoise::new(0);
    let mut random = |shape: [usize; 4]| -> anyhow::Result<TensorData> {
        Ok(TensorData::new(noise.next_patch(shape.iter().product())?, shape))
    };

    // Every request's caches hold `context` positions, as mid-line.
    let largest = *concurrency.last().context("no concurrency")?;
    let prefix = Tensor::<4>::from_data(random([1, 1, context, h])?, device).squeeze_dim::<3>(0);
    let mut base_caches = Vec::with_capacity(largest);
    let mut residual_caches = Vec::with_capacity(largest);
    for _ in 0..largest {
        let mut cache = model.base_lm().new_cache(context + 1);
        sync(model.base_lm().forward_cached(prefix.clone(), &mut cache)?)?;
        base_caches.push(cache);
        let mut cache = model.residual_lm().new_cache(context + 1);
        sync(model.residual_lm().forward_cached(prefix.clone(), &mut cache)?)?;
        residual_caches.push(cache);
    }

    let mut rows = Vec::new();
    for &c in concurrency {
        let hidden = Tensor::<4>::from_data(random([1, 1, c, h])?, device).reshape([c, h]);
        let step = |caches: &mut [KvCache], stack: &dyn Fn(&mut [&mut KvCache]) -> voxcpm_engine::Result<Tensor<2>>| {
            median_seconds(RUNS, || {
                let mut batch: Vec<&mut KvCache> = caches[..c].iter_mut().collect();
                let out = stack(&mut batch)?;
                batch.iter_mut().for_each(|cache| cache.truncate(context));
                sync(out)
            })
        };
        let base_lm_step = step(&mut base_caches, &|caches| model.base_lm().step_batch(hidden.clone(), caches))?;
        let residual_lm_step =
            step(&mut residual_caches, &|caches| model.residual_lm().step_batch(hidden.clone(), caches))?;
        let patches = Tensor::<4>::from_data(random([c, 1, p, d])?, device);
        let loc_enc = median_seconds(RUNS, || sync(model.loc_enc().forward(patches.clone())))?;
        let mu = model.dit_condition(hidden.clone(), hidden.clone());
        let z = Tensor::<4>::from_data(random([c, d, p, 1])?, device).squeeze_dim::<3>(3);
        let settings = vec![CfmSettings { timesteps, cfg_value: 2.0 }; c];
        let dit_calls = median_seconds(RUNS, || {
            sync(cfm::solve_batch(model.loc_dit(), z.clone(), mu.clone(), z.clone(), &settings))
        })?;
        let total = base_lm_step + residual_lm_step + loc_enc + dit_calls;
        rows.push(serde_json::json!({
            "concurrency": c,
            "base_lm_step": base_lm_step,
            "residual_lm_step": residual_lm_step,
            "loc_enc": loc_enc,
            "dit_calls": dit_calls,
            "total": total,
            "total_per_line": total / c as f64,
        }));
    }
    Ok(serde_json::json!({
        "what": "seconds of one batched step per stage (medians), every request's caches at context_positions; \
                 the VAE decode is per request and not included",
        "context_positions": context,
        "steps": rows,
        "decoder_state_bytes_per_line": decoder_state_bytes(&model, largest)?,
    }))
}

/// The resident memory a streaming line's decoder keeps between chunks (the causal tails of
/// its convolutions), averaged over `lines` streams that each decoded one patch.
fn decoder_state_bytes(model: &VoxCpm, lines: usize) -> anyhow::Result<Option<f64>> {
    let config = model.config();
    let patch = SeededNoise::new(1).next_patch(config.patch_size * config.feat_dim)?;
    let before = memory::rss_bytes();
    let mut streams = Vec::with_capacity(lines);
    for _ in 0..lines {
        let mut stream = DecoderStream::new();
        sync(model.audio_vae().decode_chunk(model.patches_to_latents(&patch), &mut stream))?;
        streams.push(stream);
    }
    let after = memory::rss_bytes();
    Ok(before.zip(after).map(|(before, after)| after.saturating_sub(before) as f64 / lines as f64))
}
