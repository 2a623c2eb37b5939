//! `voxcpm bench --concurrency 1,2,4,8`: what continuous batching gains. For each concurrency C,
//! the same C lines go, submitted at once, first to a `max_batch = 1` server (one at a time:
//! the baseline) and then to a server whose running batch takes them all; each is timed as its
//! client sees it (lines per minute, audio seconds per wall second, each line's first chunk, the
//! peak resident memory). Then C shorter lines run again while one more line joins them, to
//! time a late arrival's first chunk. Both servers live in one process and take turns, so that
//! a ratio's two sides meet the same swings of a shared machine's load. Last, the stages of one
//! step are timed at each C ([`batch_stages`]), to show where the time goes.
//!
//! Every line speaks the same text with its own seed, and its length is fixed (min_len =
//! max_len patches): a random-weight checkpoint's stop head would not end a line naturally.

use std::path::Path;
use std::time::{Duration, Instant};

use voxcpm_engine::config::VoxCpmConfig;
use voxcpm_engine::runtime::{GenerateOptions, ResolvedDevice, Server, ServerOptions};
use voxcpm_engine::tokenizer::TextTokenizer;

use super::batch_stages;
use super::lines::{self, Late, Run};
use super::machine::{self, CpuMeter};
use super::memory;
use super::{LINE, stream_options};
use crate::args::EngineArgs;

/// What to measure.
pub struct Settings {
    /// Concurrencies, ascending, without repeats.
    pub concurrency: Vec<usize>,
    /// Audio per line, rounded up to whole patches.
    pub line_seconds: f64,
    pub timesteps: usize,
}

/// Patches of the batch lines while a line joins: enough that the batch is still running
/// when the late line's first patch comes.
const JOIN_BATCH_PATCHES: usize = 6;
/// The late line is submitted once the batch's first line has this many chunks.
const JOIN_AFTER_CHUNKS: usize = 2;
/// Patches of the late line (only its first chunk is timed).
const JOIN_LINE_PATCHES: usize = 2;

/// A line's shape: its patches and the KV-cache memory it needs.
struct LineShape {
    patches: usize,
    patch_seconds: f64,
    text_tokens: usize,
    /// Positions in each LM cache at the end of a line.
    positions: usize,
    kv_cache: serde_json::Value,
}

impl LineShape {
    fn of(dir: &Path, line_seconds: f64) -> anyhow::Result<Self> {
        let config = VoxCpmConfig::load(&dir.join("config.json"))?;
        let vae = &config.audio_vae_config;
        let patch_seconds = (config.patch_size * vae.decoder_hop()) as f64 / f64::from(vae.out_sample_rate);
        let patches = ((line_seconds / patch_seconds).ceil() as usize).max(1);
        let text_tokens = TextTokenizer::load(&dir.join("tokenizer.json"))?.encode(LINE)?.len();
        // Both LMs keep keys and values of every position: the text tokens, the audio-start
        // token and every patch but the last.
        let lm = &config.lm_config;
        let layers = lm.num_hidden_layers + config.residual_lm_num_layers;
        let head_dim = lm.kv_channels.unwrap_or(lm.hidden_size / lm.num_attention_heads);
        let positions = text_tokens + patches;
        let kv_cache_bytes = (layers * 2 * lm.num_key_value_heads * head_dim * positions * 4) as u64;
        let kv_cache = serde_json::json!({
            "formula": "layers x 2 x kv_heads x head_dim x positions x 4 bytes",
            "layers": layers,
            "kv_heads": lm.num_key_value_heads,
            "head_dim": head_dim,
            "positions": positions,
            "bytes_per_line": kv_cache_bytes,
        });
        Ok(LineShape { patches, patch_seconds, text_tokens, positions, kv_cache })
    }
}

pub fn run(
    engine: &EngineArgs,
    resolved: &ResolvedDevice,
    model: &str,
    dir: &Path,
    settings: &Settings,
) -> anyhow::Result<serde_json::Value> {
    let shape = LineShape::of(dir, settings.line_seconds)?;
    let date = machine::utc_now();
    let load_average_before = machine::load_average();
    let meter = CpuMeter::start();
    let largest = *settings.concurrency.last().expect("at least one concurrency");
    let line = |seed: usize, patches: usize| GenerateOptions {
        seed: Some(seed as u64),
        ..stream_options(settings.timesteps, patches)
    };
    let lines = |count: usize| (0..count).map(|seed| line(seed, shape.patches)).collect::<Vec<_>>();

    // Both servers stay up, and each concurrency runs on one and then the other, so that a
    // swing of the machine's load falls on both sides of a ratio alike.
    let (single, single_load_seconds) = start(engine, model, 1, settings.timesteps)?;
    let rss_one_server = memory::rss_bytes();
    // Room for the late line beside the largest batch.
    let max_batch = largest + 1;
    let (server, load_seconds) = start(engine, model, max_batch, settings.timesteps)?;
    let rss_reference = memory::rss_bytes();
    let mut rows = Vec::new();
    for &concurrency in &settings.concurrency {
        let baseline = one_at_a_time(&single, &lines(concurrency))?;
        let mut row = batched(&server, &lines(concurrency), &baseline, rss_reference)?;
        let batch = (0..concurrency).map(|seed| line(seed, JOIN_BATCH_PATCHES)).collect::<Vec<_>>();
        let late = Late { options: line(concurrency, JOIN_LINE_PATCHES), after_chunks: JOIN_AFTER_CHUNKS };
        row["joining_line"] = joining(&server, &batch, late, &row)?;
        row["one_at_a_time"] = baseline.report;
        rows.push(row);
    }
    let single_peak_batch = single.info().peak_batch;
    let peak_batch = server.info().peak_batch;
    drop((single, server));
    let lora = engine.lora.as_deref();
    let stages = batch_stages::time(dir, lora, resolved, settings.timesteps, shape.positions, &settings.concurrency)?;

    Ok(serde_json::json!({
        "date": date,
        "machine": machine::describe(),
        "commit": machine::commit(),
        "command": std::env::args().collect::<Vec<_>>().join(" "),
        "load_average_before": load_average_before,
        "load_average_after": machine::load_average(),
        "machine_during_run": meter.finish(),
        "options": {
            "model": dir.display().to_string(),
            "device": engine.device,
            "precision": engine.precision.name(),
            "products": format!("{:?}", engine.precision.cpu_products()),
            "timesteps": settings.timesteps,
            "text": LINE,
            "text_tokens": shape.text_tokens,
            "line_patches": shape.patches,
            "line_audio_seconds": shape.patches as f64 * shape.patch_seconds,
            "line_length": "fixed: min_len = max_len = line_patches (a random-weight stop head would not end a line)",
            "seeds": "line i of a run uses seed i",
            "concurrency": settings.concurrency,
            "joining_line": {
                "batch_line_patches": JOIN_BATCH_PATCHES,
                "submitted_after_first_line_chunks": JOIN_AFTER_CHUNKS,
                "patches": JOIN_LINE_PATCHES,
            },
        },
        "kv_cache": shape.kv_cache,
        "one_at_a_time_server": { "max_batch": 1, "load_seconds": single_load_seconds, "peak_batch": single_peak_batch },
        "batching_server": { "max_batch": max_batch, "load_seconds": load_seconds, "peak_batch": peak_batch },
        // Resident memory with the first server loaded, and with both (what growth counts from).
        "rss_one_server_bytes": rss_one_server,
        "rss_reference_bytes": rss_reference,
        "runs": rows,
        "rss_growth_per_added_line_bytes": growth_per_added_line(&rows),
        "stages_per_step": stages,
    }))
}

/// Starts a server of `max_batch` and runs a short line on it alone (the first generation pays
/// for page faults and the thread pool's start); returns it with its load time.
fn start(engine: &EngineArgs, model: &str, max_batch: usize, timesteps: usize) -> anyhow::Result<(Server, f64)> {
    let started = Instant::now();
    let options = ServerOptions {
        device: engine.device.clone(),
        precision: engine.precision,
        max_batch,
        ..ServerOptions::new(model)
    };
    let server = Server::start(options)?;
    server.await_ready(Duration::MAX)?;
    let load_seconds = started.elapsed().as_secs_f64();
    if let Some(adapter) = engine.lora.as_deref() {
        server.load_lora(adapter)?;
    }
    lines::run(&server, LINE, &[stream_options(timesteps, 2)], None)?;
    Ok((server, load_seconds))
}

/// The baseline's numbers, and what the batched rows compare against.
struct Baseline {
    lines_per_minute: f64,
    report: serde_json::Value,
}

/// The lines submitted at once to a server that serves one at a time.
fn one_at_a_time(server: &Server, lines: &[GenerateOptions]) -> anyhow::Result<Baseline> {
    let (run, conditions) = measured(|| lines::run(server, LINE, lines, None))?;
    let alone = &run.lines[0];
    let period = alone.chunk_period().unwrap_or(f64::NAN);
    let mut report = summary(&run);
    report["time_to_first_chunk_alone_seconds"] = alone.first_chunk().into();
    report["seconds_per_patch_alone"] = period.into();
    // Its first chunk less one chunk period, as it ran alone (a later chunk also pays the LM
    // steps over the previous patch, which the first does not).
    report["prefill_seconds_estimate"] = (alone.first_chunk() - period).into();
    report["conditions"] = conditions;
    Ok(Baseline { lines_per_minute: lines_per_minute(&run), report })
}

/// The lines submitted at once to the batching server.
fn batched(
    server: &Server,
    lines: &[GenerateOptions],
    baseline: &Baseline,
    rss_reference: Option<u64>,
) -> anyhow::Result<serde_json::Value> {
    let (run, conditions) = measured(|| lines::run(server, LINE, lines, None))?;
    let concurrency = lines.len();
    let mut row = summary(&run);
    row["concurrency"] = concurrency.into();
    row["speedup_lines_per_minute"] = (lines_per_minute(&run) / baseline.lines_per_minute).into();
    row["largest_batch_observed"] = run.largest_batch.into();
    let growth = conditions["peak_rss_bytes"].as_u64().zip(rss_reference).map(|(peak, base)| peak.saturating_sub(base));
    row["peak_rss_growth_bytes"] = growth.into();
    row["peak_rss_growth_per_line_bytes"] = growth.map(|g| g / concurrency as u64).into();
    row["conditions"] = conditions;
    Ok(row)
}

/// A line that arrives while a batch of `batch.len()` runs (just after a step began: the worst
/// moment), timed against the target of its prefill plus two steps of that batch (the step
/// measured by the throughput run in `row`). The batch's first line sees, in its chunk gaps,
/// the step the newcomer waits through, then the newcomer's prefill and the first step with it,
/// then a step with it: the prefill is the difference of the last two.
fn joining(
    server: &Server,
    batch: &[GenerateOptions],
    late: Late,
    row: &serde_json::Value,
) -> anyhow::Result<serde_json::Value> {
    let after = late.after_chunks;
    let run = lines::run(server, LINE, batch, Some(late))?;
    let first_chunk = run.late.as_ref().map(|l| l.first_chunk()).expect("the late line ran");
    let step = row["seconds_per_batch_step"].as_f64().unwrap_or(f64::NAN);
    let gaps: Vec<f64> = run.lines[0].arrivals.windows(2).map(|pair| pair[1] - pair[0]).collect();
    let gap = |i: usize| gaps.get(i).copied().unwrap_or(f64::NAN);
    let (waited, prefill_and_step, step_with_it) = (gap(after - 1), gap(after), gap(after + 1));
    let prefill = prefill_and_step - step_with_it;
    let bound = prefill + 2.0 * step;
    Ok(serde_json::json!({
        "time_to_first_chunk_seconds": first_chunk,
        "in_batch_steps": first_chunk / step,
        "waited_for_running_step_seconds": waited,
        "prefill_and_first_step_seconds": prefill_and_step,
        "batch_step_with_it_seconds": step_with_it,
        "prefill_seconds": prefill,
        "target_seconds": bound,
        "within_target": first_chunk <= bound,
        "first_batch_line_chunk_gaps_seconds": gaps,
    }))
}

/// Runs `f` with the peak memory reset before it, and reports the conditions it ran in.
fn measured<T>(f: impl FnOnce() -> anyhow::Result<T>) -> anyhow::Result<(T, serde_json::Value)> {
    let rss_before = memory::rss_bytes();
    let peak_reset = memory::reset_peak();
    let load_average_before = machine::load_average();
    let meter = CpuMeter::start();
    let value = f()?;
    let conditions = serde_json::json!({
        "rss_before_bytes": rss_before,
        // Without a reset the peak is the process's since start.
        "peak_rss_bytes": if peak_reset { memory::peak_rss_bytes() } else { None },
        "load_average_before": load_average_before,
        "load_average_after": machine::load_average(),
        "machine": meter.finish(),
    });
    Ok((value, conditions))
}

fn lines_per_minute(run: &Run) -> f64 {
    run.lines.len() as f64 * 60.0 / run.wall_seconds
}

/// Throughput and first chunks of a run.
fn summary(run: &Run) -> serde_json::Value {
    let first: Vec<f64> = run.lines.iter().map(|l| l.first_chunk()).collect();
    let periods = run.lines.iter().filter_map(|l| l.chunk_period()).collect();
    let audio: f64 = run.lines.iter().map(|l| l.audio_seconds).sum();
    let mean = |values: &[f64]| values.iter().sum::<f64>() / values.len() as f64;
    serde_json::json!({
        "lines": run.lines.len(),
        "wall_seconds": run.wall_seconds,
        "lines_per_minute": lines_per_minute(run),
        "audio_seconds": audio,
        "audio_seconds_per_wall_second": audio / run.wall_seconds,
        "first_chunk_seconds": {
            "each": first,
            "mean": mean(&first),
            "max": first.iter().copied().fold(0.0, f64::max),
        },
        // The lines' median chunk period: one step of the batch (one patch each). A line the
        // engine took before the others arrived has the others' prefills in its period.
        "seconds_per_batch_step": median(periods),
    })
}

fn median(mut values: Vec<f64>) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// Peak-memory growth per added line between consecutive concurrencies.
fn growth_per_added_line(rows: &[serde_json::Value]) -> Vec<serde_json::Value> {
    rows.windows(2)
        .filter_map(|pair| {
            let c = |row: &serde_json::Value| row["concurrency"].as_u64();
            let peak = |row: &serde_json::Value| row["conditions"]["peak_rss_bytes"].as_i64();
            let (from, to) = (c(&pair[0])?, c(&pair[1])?);
            let bytes = (peak(&pair[1])? - peak(&pair[0])?) as f64 / (to - from) as f64;
            Some(serde_json::json!({ "from": from, "to": to, "bytes": bytes }))
        })
        .collect()
}
