//! `voxcpm batch`: a script of voice lines rendered to one WAV per line.
//!
//! The script is TSV or CSV (by extension) with a header row naming its columns: `id` and
//! `text` are required; `voice`, `prompt_wav`, `prompt_text`, `seed`, `cfg`, `steps`,
//! `min_len` and `max_len` are optional per line (blank = the command-line default). Relative
//! paths are relative to the script. A line without a seed gets one derived from its id and
//! text, so re-rendering it gives the same take. The reading is the library's
//! [`voxcpm_engine::script`]; this file renders.
//!
//! `manifest.json` in the output directory records every line: its file, seed, duration, and
//! a key hashing everything that shapes the audio (text, options, the bytes of its clips, the
//! model). A line whose key and file are unchanged is skipped on the next run. A bad line is
//! recorded with its error and the batch goes on; the exit status is
//! [`SOME_LINES_FAILED`] if any failed, so a job runner can tell a finished script with failed
//! lines (listed in the manifest) from a run that stopped (exit status 1).
//! Up to `--jobs` lines are in flight at once, generated together ([`jobs`]); the manifest
//! keeps script order whatever order they finish in.
//!
//! A long script is spread over machines with `--shard I/N` (each renders its share into its
//! own folder; [`shard`] says which lines) and joined with `--merge` ([`merge`]).

mod jobs;
mod merge;
mod shard;

/// The exit status of a batch or merge that finished but has failed lines.
pub const SOME_LINES_FAILED: u8 = 3;

/// Success, or [`SOME_LINES_FAILED`] when `failed` lines are listed as failed.
fn finished_with(failed: usize) -> ExitCode {
    if failed == 0 { ExitCode::SUCCESS } else { ExitCode::from(SOME_LINES_FAILED) }
}

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use voxcpm_engine::runtime::{GenerateOptions, Server, model_key, request_key};
use voxcpm_engine::script::{Line, Row, read_script};
use voxcpm_engine::wav::write_float_file;
use voxcpm_engine::{Error, whole_file};

use crate::args::{EngineArgs, VoiceArgs};
use crate::setup;

#[derive(clap::Args)]
pub struct BatchArgs {
    /// The script: a .tsv or .csv file with a header row (id, text, and optional columns).
    #[arg(required_unless_present = "merge")]
    script: Option<PathBuf>,
    /// Output directory: <id>.wav per line and manifest.json.
    #[arg(short, long)]
    output: PathBuf,
    /// Render every line, even those already rendered unchanged.
    #[arg(long)]
    force: bool,
    /// Lines in flight at once (1 to 64), generated together as one batch: the same files,
    /// sooner.
    #[arg(long, short, value_name = "N", default_value_t = jobs::Jobs::default())]
    jobs: jobs::Jobs,
    #[command(flatten)]
    sharding: shard::ShardArgs,
    /// Defaults for lines that leave an option blank.
    #[command(flatten)]
    voice_args: VoiceArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

/// The manifest's name in every output folder.
const MANIFEST: &str = "manifest.json";

pub fn run(args: BatchArgs) -> anyhow::Result<ExitCode> {
    // clap requires a script unless --merge is given, and refuses both.
    let Some(script) = &args.script else {
        return merge::run(&args.sharding.merge, &args.output);
    };
    let defaults = GenerateOptions {
        speech: args.voice_args.speech_options(),
        normalize: args.voice_args.normalize,
        denoise: args.voice_args.denoise,
        ..GenerateOptions::default()
    };
    let rows = read_script(script, &defaults)?;
    let (rows, shard_record) = match args.sharding.shard {
        None => (rows, None),
        Some(shard) => {
            let rows: Vec<Row> = rows.into_iter().filter(|row| shard.owns(row.id.as_deref())).collect();
            let bytes = std::fs::read(script).with_context(|| format!("reading {}", script.display()))?;
            let record = shard.record(rows.len(), &bytes);
            (rows, Some(record))
        }
    };
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let manifest_path = args.output.join(MANIFEST);
    let previous = previous_entries(&manifest_path);

    // The runtime batches at most `max_batch` requests: room for every line in flight.
    let engine = EngineArgs { max_batch: args.engine.max_batch.max(args.jobs.get()), ..args.engine.clone() };
    let (server, choice) = setup::start_server(&engine, args.voice_args.denoise)?;
    let model_dir = server.info().model_dir.context("the server did not report its checkpoint directory")?;
    let model_key = model_key(&model_dir, args.engine.lora.as_deref())?;
    let bar = ProgressBar::new(rows.len() as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} lines {msg} [{elapsed}]").expect("valid template"),
    );
    // Each row's entry, in script order, once its line is done (lines finish in any order).
    let mut slots: Vec<Option<Value>> = vec![None; rows.len()];
    let (mut failed, mut skipped) = (0, 0);
    let render_row = |row: &Row| {
        bar.set_message(row.id.clone().unwrap_or_default());
        match &row.line {
            Err(error) => Err(error.clone()),
            Ok(line) => render(&server, line, &args, &model_key, &previous),
        }
    };
    jobs::for_each_concurrently(&rows, args.jobs, render_row, |index, entry| {
        let row = &rows[index];
        let mut entry = entry.unwrap_or_else(|error| {
            bar.suspend(|| eprintln!("row {}: {error}", row.number));
            json!({ "id": row.id, "status": "failed", "error": error })
        });
        // Every entry has its row (also one kept from a run before lines moved): a merge of
        // shards puts them back in script order by it.
        entry["row"] = json!(row.number);
        match entry["status"].as_str() {
            Some("failed") => failed += 1,
            Some("skipped") => skipped += 1,
            _ => {}
        }
        slots[index] = Some(entry);
        bar.inc(1);
        // Written after every line, so an interrupted batch keeps what it rendered.
        let entries: Vec<Value> = slots.iter().flatten().cloned().collect();
        write_manifest(&manifest_path, script, &choice.model, shard_record.as_ref(), &entries)
    })?;
    let entries: Vec<Value> = slots.into_iter().flatten().collect();
    if entries.is_empty() {
        // A shard that owns no line still says so, or its merge would miss it.
        write_manifest(&manifest_path, script, &choice.model, shard_record.as_ref(), &entries)?;
    }
    bar.finish_and_clear();
    let rendered = entries.len() - failed - skipped;
    eprintln!("{rendered} rendered, {skipped} unchanged, {failed} failed; manifest: {}", manifest_path.display());
    Ok(finished_with(failed))
}

/// Renders one line unless its unchanged rendering exists; returns its manifest entry.
fn render(
    server: &Server,
    line: &Line,
    args: &BatchArgs,
    model_key: &str,
    previous: &HashMap<String, Value>,
) -> Result<Value, String> {
    if line.options.audio_prompt.is_some() {
        setup::check_reference_clip(server, "the voice column")?;
    }
    let key = request_key(model_key, &line.text, &line.options).map_err(|e| e.to_string())?;
    let file = args.output.join(format!("{}.wav", line.id));
    if let Some(old) = previous.get(&line.id)
        && !args.force
        && old["key"].as_str() == Some(key.as_str())
        && file.is_file()
    {
        let mut entry = old.clone();
        entry["status"] = json!("skipped");
        return Ok(entry);
    }
    let speech = server.generate(&line.text, &line.options).map_err(|e| e.to_string())?;
    // Written beside the target and renamed, so a file named <id>.wav is always complete.
    write_float_file(&file, &speech.samples, speech.sample_rate).map_err(|e| e.to_string())?;
    Ok(json!({
        "id": line.id,
        "text": line.text,
        "file": file.file_name().map(|f| f.to_string_lossy().into_owned()),
        "seed": speech.seed,
        "duration_secs": speech.duration_secs(),
        "key": key,
        "status": "rendered",
    }))
}

/// The previous run's renderings by id; an unreadable manifest just means nothing is skipped.
fn previous_entries(path: &Path) -> HashMap<String, Value> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return HashMap::new();
    };
    let Ok(manifest) = serde_json::from_str::<Value>(&text) else {
        eprintln!("warning: {} is not valid JSON; every line will be rendered", path.display());
        return HashMap::new();
    };
    let lines = manifest["lines"].as_array().cloned().unwrap_or_default();
    // Only renderings count: a failed row (a duplicate id, say) has no key and must not hide one.
    lines
        .into_iter()
        .filter(|entry| entry["key"].is_string())
        .filter_map(|entry| Some((entry["id"].as_str()?.to_owned(), entry)))
        .collect()
}

/// The script, the model, the shard (in a `--shard` run) and every line's entry.
fn write_manifest(
    path: &Path,
    script: &Path,
    model: &str,
    shard: Option<&Value>,
    entries: &[Value],
) -> anyhow::Result<()> {
    let mut manifest = json!({ "script": script.display().to_string(), "model": model, "lines": entries });
    if let Some(shard) = shard {
        manifest["shard"] = shard.clone();
    }
    write_json(path, &manifest)
}

fn write_json(path: &Path, manifest: &Value) -> anyhow::Result<()> {
    let text = serde_json::to_string_pretty(manifest)?;
    // Replaced whole: a full disk leaves the last complete manifest, from which the next run
    // resumes.
    Ok(whole_file::replace(path, |partial| std::fs::write(partial, &text).map_err(|e| Error::write(partial, e)))?)
}
