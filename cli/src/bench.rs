//! `voxcpm bench`: load time, peak memory and time per patch of each stage, as JSON; with
//! `--concurrency`, the throughput of the runtime's running batch instead ([`throughput`]).

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::Context;
use burn::tensor::Tensor;
use voxcpm_engine::LoadOptions;
use voxcpm_engine::config::Architecture;
use voxcpm_engine::hub;
use voxcpm_engine::model::VoxCpm;
use voxcpm_engine::model::cfm::{self, CfmSettings};
use voxcpm_engine::model::nn::to_vec;
use voxcpm_engine::noise::{NoiseSource, SeededNoise};
use voxcpm_engine::pipeline::SpeechOptions;
use voxcpm_engine::runtime::{DeviceRequest, GenerateOptions, ResolvedDevice, Server, ServerOptions, resolve_device};
use voxcpm_engine::wav::write_float_file;

use crate::args::EngineArgs;
use crate::setup;
use memory::peak_rss_bytes;

mod batch_stages;
mod lines;
mod machine;
mod memory;
mod throughput;

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

/// Forces pending work (lazy backends) by reading one value back.
fn sync<const D: usize>(t: Tensor<D>) -> anyhow::Result<()> {
    to_vec(t.flatten::<1>(0, D - 1).slice(0..1))?;
    Ok(())
}

#[derive(clap::Args)]
pub struct BenchArgs {
    /// The model, device (which must answer), precision and LoRA adapter to time.
    #[command(flatten)]
    engine: EngineArgs,
    /// Flow-matching steps per patch.
    #[arg(long, default_value_t = SpeechOptions::default().inference_timesteps)]
    steps: usize,
    /// Timed repetitions per stage (the median is reported).
    #[arg(long, default_value_t = 5)]
    runs: usize,
    /// Positions already in the LM caches when a step is timed.
    #[arg(long, default_value_t = 64)]
    context: usize,
    /// Patches of the streaming run through the runtime (0 skips it).
    #[arg(long, default_value_t = 4)]
    stream_patches: usize,
    /// Also stream lines of 100, 500 and 2,000 characters, and a line cloning 3, 10 and 30 s
    /// references (continuing 3, 10 and 30 s prompt clips on a v1 model), to show how the first
    /// chunk and later chunks grow with length.
    #[arg(long)]
    scaling: bool,
    /// Instead of the stage timings: lines per minute with this many lines at once (a
    /// comma-separated list, e.g. 1,2,4,8), through the runtime's running batch, against the
    /// same lines one at a time; also each line's first chunk, the peak memory, and the first
    /// chunk of a line that joins a running batch.
    #[arg(
        long,
        value_delimiter = ',',
        value_parser = clap::value_parser!(u16).range(1..),
        conflicts_with_all = ["runs", "context", "stream_patches", "scaling"]
    )]
    concurrency: Vec<u16>,
    /// Audio per line of --concurrency, rounded up to whole patches (each line's length is
    /// fixed: min_len = max_len).
    #[arg(long, default_value_t = 3.0, requires = "concurrency", value_parser = parse_line_seconds)]
    line_seconds: f64,
}

fn parse_line_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(seconds),
        _ => Err(format!("{text:?} is not a positive number of seconds")),
    }
}

pub fn run(args: BenchArgs) -> anyhow::Result<serde_json::Value> {
    let engine = &args.engine;
    let choice = setup::choose(engine.model.clone())?;
    let dir = hub::resolve(&choice.model)?;
    let request = DeviceRequest::parse(&engine.device)?;
    let resolved = resolve_device(&request, engine.precision);
    if let Some(reason) = &resolved.fallback_reason {
        anyhow::bail!("cannot bench on {} ({}): {reason}", engine.device, engine.precision.name());
    }
    if !args.concurrency.is_empty() {
        let mut concurrency: Vec<usize> = args.concurrency.iter().map(|&c| usize::from(c)).collect();
        concurrency.sort_unstable();
        concurrency.dedup();
        let settings = throughput::Settings { concurrency, line_seconds: args.line_seconds, timesteps: args.steps };
        return throughput::run(engine, &resolved, &choice.model, &dir, &settings);
    }
    let lora = engine.lora.as_deref();
    let mut report = stages(&dir, lora, &resolved, args.steps, args.runs.max(1), args.context.max(1))?;
    if args.stream_patches > 0 || args.scaling {
        // The stage model is dropped by now, so the runtime's copy is the only one in memory.
        let options = ServerOptions {
            device: engine.device.clone(),
            precision: engine.precision,
            ..ServerOptions::new(&choice.model)
        };
        let server = Server::start(options)?;
        server.await_ready(Duration::MAX)?;
        if let Some(dir) = lora {
            server.load_lora(dir)?;
        }
        let options = stream_options(args.steps, args.stream_patches.max(2));
        if args.stream_patches > 0 {
            report["streaming"] = stream_timing(&server, LINE, &options)?;
        }
        if args.scaling {
            report["scaling"] = scaling(&server, &options)?;
        }
    }
    Ok(report)
}

/// The line every streaming measurement speaks (repeated for the longer ones).
const LINE: &str = "This line measures how soon streamed speech starts.";

fn stream_options(timesteps: usize, patches: usize) -> GenerateOptions {
    GenerateOptions {
        speech: SpeechOptions {
            min_len: patches,
            max_len: patches,
            inference_timesteps: timesteps,
            ..SpeechOptions::default()
        },
        seed: Some(0),
        ..GenerateOptions::default()
    }
}

/// Streaming timings as the text and the reference clip grow. The first chunk carries the
/// prefill (every text token and reference patch through the LMs); later chunks carry one patch
/// each, whose attention reads a longer cache.
fn scaling(server: &Server, options: &GenerateOptions) -> anyhow::Result<serde_json::Value> {
    let text_of = |chars: usize| {
        let mut text = String::new();
        while text.len() < chars {
            text.push_str(LINE);
            text.push(' ');
        }
        text.truncate(chars);
        text
    };
    let mut texts = Vec::new();
    for chars in [100, 500, 2000] {
        let mut row = stream_timing(server, &text_of(chars), options)?;
        row["text_chars"] = chars.into();
        texts.push(row);
    }
    let mut references = Vec::new();
    for seconds in [3, 10, 30] {
        let clip = std::env::temp_dir().join(format!("voxcpm-bench-reference-{}-{seconds}s.wav", std::process::id()));
        write_reference(&clip, seconds)?;
        let cloning = clip_options(server, &clip, options);
        let timing = stream_timing(server, &text_of(100), &cloning);
        std::fs::remove_file(&clip).ok();
        let mut row = timing?;
        row["reference_seconds"] = seconds.into();
        row["text_chars"] = 100.into();
        references.push(row);
    }
    Ok(serde_json::json!({ "texts": texts, "references": references }))
}

/// `options` with `clip` as the voice: a reference clip on VoxCPM2; on v1, which has no reference
/// mode, a continuation prompt (the clip and a transcript), whose patches the prefill carries alike.
fn clip_options(server: &Server, clip: &Path, options: &GenerateOptions) -> GenerateOptions {
    match server.info().architecture {
        Some(Architecture::V1) => GenerateOptions {
            prompt_wav_path: Some(clip.to_owned()),
            prompt_text: Some(LINE.into()),
            ..options.clone()
        },
        _ => GenerateOptions { audio_prompt: Some(clip.to_owned()), ..options.clone() },
    }
}

/// A speech-like stand-in reference (a gliding tone with a syllable-rate envelope), 16 kHz.
fn write_reference(path: &Path, seconds: usize) -> anyhow::Result<()> {
    let rate = 16_000;
    let samples: Vec<f32> = (0..seconds * rate)
        .map(|i| {
            let t = i as f32 / rate as f32;
            let envelope = (std::f32::consts::PI * 4.0 * t).sin().abs();
            0.3 * envelope * (2.0 * std::f32::consts::PI * (150.0 + 50.0 * (0.5 * t).sin()) * t).sin()
        })
        .collect();
    write_float_file(path, &samples, rate as u32).with_context(|| format!("writing {}", path.display()))
}

/// Time to first chunk and per-chunk time of one streaming generation through the runtime,
/// measured from the `generate_streaming` call as a client sees it.
fn stream_timing(server: &Server, text: &str, options: &GenerateOptions) -> anyhow::Result<serde_json::Value> {
    let start = Instant::now();
    let mut stream = server.generate_streaming(text, options)?;
    let (mut arrivals, mut samples) = (Vec::new(), 0);
    while let Some(chunk) = stream.next_chunk()? {
        arrivals.push(start.elapsed().as_secs_f64());
        samples += chunk.len();
    }
    let audio_seconds = samples as f64 / stream.sample_rate().context("the stream never started")? as f64;
    let first = *arrivals.first().context("the stream produced no chunk")?;
    let per_chunk = if arrivals.len() > 1 {
        (arrivals[arrivals.len() - 1] - first) / (arrivals.len() - 1) as f64
    } else {
        f64::NAN
    };
    Ok(serde_json::json!({
        "chunks": arrivals.len(),
        "time_to_first_chunk_seconds": first,
        "seconds_per_later_chunk": per_chunk,
        "audio_seconds": audio_seconds,
    }))
}

/// Seconds of reference audio the VAE-encoder stage encodes.
const REFERENCE_SECONDS: usize = 5;

/// Load time (with the LoRA adapter applied, if any), memory, the median time of each stage of
/// one patch, and the VAE encoder's time per second of reference.
fn stages(
    dir: &Path,
    lora: Option<&Path>,
    resolved: &ResolvedDevice,
    timesteps: usize,
    runs: usize,
    context: usize,
) -> anyhow::Result<serde_json::Value> {
    let start = Instant::now();
    let device = &resolved.device;
    let mut model = VoxCpm::load(dir, &LoadOptions::on(device).with_products(resolved.precision.cpu_products()))
        .with_context(|| format!("loading {}", dir.display()))?;
    let lora = match lora {
        Some(adapter) => {
            let (loaded, skipped) =
                model.load_lora(adapter).with_context(|| format!("applying {}", adapter.display()))?;
            serde_json::json!({ "adapter": adapter.display().to_string(), "loaded": loaded, "skipped": skipped })
        }
        None => serde_json::Value::Null,
    };
    let load_seconds = start.elapsed().as_secs_f64();
    let rss_after_load = peak_rss_bytes();
    let config = model.config().clone();
    let (h, p, d) = (config.lm_config.hidden_size, config.patch_size, config.feat_dim);
    let mut noise = SeededNoise::new(0);
    let mut random = |shape: Vec<usize>| -> anyhow::Result<Vec<f32>> { Ok(noise.next_patch(shape.iter().product())?) };

    // LM steps run with `context` positions already in the cache, like mid-utterance decoding.
    let prefix =
        Tensor::<3>::from_data(burn::tensor::TensorData::new(random(vec![context * h])?, [1, context, h]), device);
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
    // The DiT's condition as the model shapes it: [1, H_dit] in v1, [1, 2·H_dit] in VoxCPM2.
    let mu = model.dit_condition(step_input.clone(), step_input.clone());
    let z = Tensor::<3>::from_data(burn::tensor::TensorData::new(random(vec![d * p])?, [1, d, p]), device);
    let settings = CfmSettings { timesteps, cfg_value: 2.0 };
    let dit_solve =
        median_seconds(runs, || sync(cfm::solve(model.loc_dit(), z.clone(), mu.clone(), z.clone(), settings)))?;
    let latents = z.clone();
    let vae_decode = median_seconds(runs, || sync(model.audio_vae().decode(latents.clone())))?;
    let peak_rss_generating = peak_rss_bytes();
    // The encoder's cost per second of reference (a voice clip goes through it once), last:
    // its activations for a whole clip would otherwise set the generation's memory peak.
    let vae = &config.audio_vae_config;
    let clip_samples = REFERENCE_SECONDS * vae.sample_rate as usize;
    let clip = Tensor::<3>::from_data(
        burn::tensor::TensorData::new(random(vec![clip_samples])?, [1, 1, clip_samples]),
        device,
    );
    let vae_encode = median_seconds(runs, || sync(model.audio_vae().encode(clip.clone())?))?;

    let per_patch = base_lm_step + residual_lm_step + loc_enc + dit_solve;
    let patch_seconds =
        p as f64 * config.audio_vae_config.decoder_hop() as f64 / config.audio_vae_config.out_sample_rate as f64;
    Ok(serde_json::json!({
        "model": dir.display().to_string(),
        "device": format!("{device:?} computing in {:?}", device.settings().float_dtype),
        "threads": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        "timesteps": timesteps,
        "context_positions": context,
        "load_seconds": load_seconds,
        "lora": lora,
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
        "vae_encode_seconds_per_reference_second": vae_encode / REFERENCE_SECONDS as f64,
        "real_time_factor": (per_patch + vae_decode) / patch_seconds,
        "peak_rss_bytes": peak_rss_generating,
        "peak_rss_bytes_with_encoder": peak_rss_bytes(),
    }))
}
