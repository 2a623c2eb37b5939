//! `voxcpm bench`: load time, peak memory and time per patch of each stage, as JSON.

use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use burn::tensor::{Device, Tensor};
use voxcpm_engine::model::cfm::{self, CfmSettings};
use voxcpm_engine::model::nn::to_vec;
use voxcpm_engine::model::VoxCpm2;
use voxcpm_engine::noise::{NoiseSource, SeededNoise};

/// Median seconds of `runs` calls of `f` (after one warm-up call).
fn median_seconds(runs: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<f64> {
    f()?;
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        f()?;
        times.push(start.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    Ok(times[times.len() / 2])
}

/// Peak resident memory of this process in bytes (Linux `VmHWM`), if known.
fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Forces pending work (lazy backends) by reading one value back.
fn sync<const D: usize>(t: Tensor<D>) -> anyhow::Result<()> {
    to_vec(t.flatten::<1>(0, D - 1).slice(0..1))?;
    Ok(())
}

pub fn run(dir: &Path, device: &Device, timesteps: usize, runs: usize, context: usize) -> anyhow::Result<serde_json::Value> {
    let start = Instant::now();
    let model = VoxCpm2::load(dir, device).with_context(|| format!("loading {}", dir.display()))?;
    let load_seconds = start.elapsed().as_secs_f64();
    let rss_after_load = peak_rss_bytes();
    let config = model.config().clone();
    let (h, p, d) = (config.lm_config.hidden_size, config.patch_size, config.feat_dim);
    let mut noise = SeededNoise::new(0);
    let mut random = |shape: Vec<usize>| -> anyhow::Result<Vec<f32>> { Ok(noise.next_patch(shape.iter().product())?) };

    // LM steps run with `context` positions already in the cache, like mid-utterance decoding.
    let prefix = Tensor::<3>::from_data(burn::tensor::TensorData::new(random(vec![context * h])?, [1, context, h]), device);
    let mut base_cache = model.base_lm().new_cache(config.max_length);
    sync(model.base_lm().forward_cached(prefix.clone(), &mut base_cache)?)?;
    let mut residual_cache = model.residual_lm().new_cache(config.max_length);
    sync(model.residual_lm().forward_cached(prefix, &mut residual_cache)?)?;
    let step_input = Tensor::<2>::from_data(burn::tensor::TensorData::new(random(vec![h])?, [1, h]), device);

    let base_lm_step = median_seconds(runs, || {
        let out = model.base_lm().step(step_input.clone(), &mut base_cache)?;
        base_cache.truncate(context);
        sync(out)
    })?;
    let residual_lm_step = median_seconds(runs, || {
        let out = model.residual_lm().step(step_input.clone(), &mut residual_cache)?;
        residual_cache.truncate(context);
        sync(out)
    })?;
    let patch = Tensor::<4>::from_data(burn::tensor::TensorData::new(random(vec![p * d])?, [1, 1, p, d]), device);
    let loc_enc = median_seconds(runs, || sync(model.loc_enc().forward(patch.clone())))?;
    let dit_h = config.dit_config.hidden_dim;
    let mu = Tensor::<2>::from_data(burn::tensor::TensorData::new(random(vec![2 * dit_h])?, [1, 2 * dit_h]), device);
    let z = Tensor::<3>::from_data(burn::tensor::TensorData::new(random(vec![d * p])?, [1, d, p]), device);
    let settings = CfmSettings { timesteps, cfg_value: 2.0 };
    let dit_solve = median_seconds(runs, || {
        sync(cfm::solve(model.loc_dit(), z.clone(), mu.clone(), z.clone(), settings))
    })?;
    let latents = z.clone();
    let vae_decode = median_seconds(runs, || sync(model.audio_vae().decode(latents.clone())))?;

    let per_patch = base_lm_step + residual_lm_step + loc_enc + dit_solve;
    let patch_seconds = p as f64 * config.audio_vae_config.decoder_hop() as f64 / config.audio_vae_config.out_sample_rate as f64;
    Ok(serde_json::json!({
        "model": dir.display().to_string(),
        "device": format!("{device:?}"),
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "timesteps": timesteps,
        "context_positions": context,
        "load_seconds": load_seconds,
        "peak_rss_bytes_after_load": rss_after_load,
        "seconds_per_patch": {
            "base_lm_step": base_lm_step,
            "residual_lm_step": residual_lm_step,
            "loc_enc": loc_enc,
            "dit_calls": dit_solve,
            "dit_calls_count": timesteps.saturating_sub(1),
            "vae_decode": vae_decode,
            "total_without_vae": per_patch,
        },
        "real_time_factor": (per_patch + vae_decode) / patch_seconds,
        "peak_rss_bytes": peak_rss_bytes(),
    }))
}
