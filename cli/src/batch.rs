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
//! recorded with its error and the batch goes on; the exit status is non-zero if any failed.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use voxcpm_engine::runtime::{GenerateOptions, Server, model_key, request_key};
use voxcpm_engine::script::{Line, read_script};
use voxcpm_engine::wav::write_float_file;
use voxcpm_engine::{Error, whole_file};

use crate::args::{EngineArgs, VoiceArgs};
use crate::setup;

#[derive(clap::Args)]
pub struct BatchArgs {
    /// The script: a .tsv or .csv file with a header row (id, text, and optional columns).
    script: PathBuf,
    /// Output directory: <id>.wav per line and manifest.json.
    #[arg(short, long)]
    output: PathBuf,
    /// Render every line, even those already rendered unchanged.
    #[arg(long)]
    force: bool,
    /// Defaults for lines that leave an option blank.
    #[command(flatten)]
    voice_args: VoiceArgs,
    #[command(flatten)]
    engine: EngineArgs,
}

pub fn run(args: BatchArgs) -> anyhow::Result<ExitCode> {
    let defaults = GenerateOptions {
        speech: args.voice_args.speech_options(),
        normalize: args.voice_args.normalize,
        denoise: args.voice_args.denoise,
        ..GenerateOptions::default()
    };
    let rows = read_script(&args.script, &defaults)?;
    std::fs::create_dir_all(&args.output).with_context(|| format!("creating {}", args.output.display()))?;
    let manifest_path = args.output.join("manifest.json");
    let previous = previous_entries(&manifest_path);

    let (server, choice) = setup::start_server(&args.engine, args.voice_args.denoise)?;
    let model_dir = server.info().model_dir.context("the server did not report its checkpoint directory")?;
    let model_key = model_key(&model_dir, args.engine.lora.as_deref())?;
    let bar = ProgressBar::new(rows.len() as u64).with_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} lines {msg} [{elapsed}]").expect("valid template"),
    );
    let (mut entries, mut failed, mut skipped) = (Vec::new(), 0, 0);
    for row in rows {
        bar.set_message(row.id.clone().unwrap_or_default());
        let entry = match row.line {
            Err(error) => Err(error),
            Ok(line) => render(&server, &line, &args, &model_key, &previous),
        };
        let entry = entry.unwrap_or_else(|error| {
            bar.suspend(|| eprintln!("row {}: {error}", row.number));
            json!({ "row": row.number, "id": row.id, "status": "failed", "error": error })
        });
        match entry["status"].as_str() {
            Some("failed") => failed += 1,
            Some("skipped") => skipped += 1,
            _ => {}
        }
        entries.push(entry);
        bar.inc(1);
        // Written after every line, so an interrupted batch keeps what it rendered.
        write_manifest(&manifest_path, &args.script, &choice.model, &entries)?;
    }
    bar.finish_and_clear();
    let rendered = entries.len() - failed - skipped;
    eprintln!("{rendered} rendered, {skipped} unchanged, {failed} failed; manifest: {}", manifest_path.display());
    Ok(if failed == 0 { ExitCode::SUCCESS } else { ExitCode::FAILURE })
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

fn write_manifest(path: &Path, script: &Path, model: &str, entries: &[Value]) -> anyhow::Result<()> {
    let manifest = json!({ "script": script.display().to_string(), "model": model, "lines": entries });
    let text = serde_json::to_string_pretty(&manifest)?;
    // Replaced whole: a full disk leaves the last complete manifest, from which the next run
    // resumes.
    Ok(whole_file::replace(path, |partial| std::fs::write(partial, &text).map_err(|e| Error::write(partial, e)))?)
}
