//! `voxcpm batch`: a script of voice lines rendered to one WAV per line.
//!
//! The script is TSV or CSV (by extension) with a header row naming its columns: `id` and
//! `text` are required; `voice`, `prompt_wav`, `prompt_text`, `seed`, `cfg`, `steps`,
//! `min_len` and `max_len` are optional per line (blank = the command-line default). Relative
//! paths are relative to the script. A line without a seed gets one derived from its id and
//! text, so re-rendering it gives the same take.
//!
//! `manifest.json` in the output directory records every line: its file, seed, duration, and
//! a key hashing everything that shapes the audio (text, options, the bytes of its clips, the
//! model). A line whose key and file are unchanged is skipped on the next run. A bad line is
//! recorded with its error and the batch goes on; the exit status is non-zero if any failed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use voxcpm_engine::runtime::{GenerateOptions, Server, model_key, request_key};
use voxcpm_engine::wav::write_float_file;

use crate::{EngineArgs, VoiceArgs, setup};

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

const COLUMNS: [&str; 10] =
    ["id", "text", "voice", "prompt_wav", "prompt_text", "seed", "cfg", "steps", "min_len", "max_len"];

/// One voice line, ready to render.
struct Line {
    id: String,
    text: String,
    options: GenerateOptions,
}

/// A script row: a line, or why it cannot be rendered.
struct Row {
    number: usize,
    id: Option<String>,
    line: Result<Line, String>,
}

pub fn run(args: BatchArgs) -> anyhow::Result<ExitCode> {
    let rows = read_script(&args.script, &args.voice_args)?;
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
    // Write beside the target and rename, so a file named <id>.wav is always complete.
    let partial = args.output.join(format!(".{}.wav.partial", line.id));
    write_float_file(&partial, &speech.samples, speech.sample_rate).map_err(|e| e.to_string())?;
    std::fs::rename(&partial, &file).map_err(|e| format!("cannot write {}: {e}", file.display()))?;
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

fn read_script(path: &Path, defaults: &VoiceArgs) -> anyhow::Result<Vec<Row>> {
    let delimiter = match path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase).as_deref() {
        Some("tsv") | Some("tab") | Some("txt") => b'\t',
        Some("csv") => b',',
        _ => anyhow::bail!("{}: the script must be a .tsv or .csv file", path.display()),
    };
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_path(path)
        .with_context(|| format!("reading {}", path.display()))?;
    let headers: Vec<String> = reader
        .headers()
        .with_context(|| format!("{}: no readable header row", path.display()))?
        .iter()
        .map(str::to_ascii_lowercase)
        .collect();
    if let Some(unknown) = headers.iter().find(|h| !COLUMNS.contains(&h.as_str())) {
        anyhow::bail!("{}: unknown column {unknown:?} (known: {})", path.display(), COLUMNS.join(", "));
    }
    for required in ["id", "text"] {
        anyhow::ensure!(
            headers.iter().any(|h| h == required),
            "{}: the header has no {required:?} column",
            path.display()
        );
    }
    let base = path.parent().unwrap_or(Path::new("."));
    let mut seen = HashSet::new();
    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let number = index + 2; // 1-based, after the header
        let row = match record {
            Err(e) => Row { number, id: None, line: Err(format!("unreadable row ({e})")) },
            Ok(record) => {
                let fields: HashMap<&str, &str> =
                    headers.iter().map(String::as_str).zip(record.iter()).filter(|(_, v)| !v.is_empty()).collect();
                let id = fields.get("id").map(|s| s.to_string());
                let line = parse_line(&fields, base, defaults).and_then(|line| {
                    if seen.insert(line.id.clone()) { Ok(line) } else { Err(format!("duplicate id {:?}", line.id)) }
                });
                Row { number, id, line }
            }
        };
        rows.push(row);
    }
    Ok(rows)
}

fn parse_line(fields: &HashMap<&str, &str>, base: &Path, defaults: &VoiceArgs) -> Result<Line, String> {
    let id = fields.get("id").ok_or("no id")?.to_string();
    let safe = |c: char| c.is_alphanumeric() || "-_.".contains(c);
    if id.starts_with('.') || !id.chars().all(safe) {
        return Err(format!("id {id:?} must be a file name: letters, digits, '-', '_' and '.', not starting with '.'"));
    }
    let text = fields.get("text").ok_or("no text")?.to_string();
    fn number<T: std::str::FromStr>(fields: &HashMap<&str, &str>, name: &str, default: T) -> Result<T, String> {
        fields.get(name).map_or(Ok(default), |v| v.parse().map_err(|_| format!("{name} {v:?} is not a valid number")))
    }
    let mut speech = defaults.speech_options();
    speech.cfg_value = number(fields, "cfg", speech.cfg_value)?;
    speech.inference_timesteps = number(fields, "steps", speech.inference_timesteps)?;
    speech.min_len = number(fields, "min_len", speech.min_len)?;
    speech.max_len = number(fields, "max_len", speech.max_len)?;
    let seed = number(fields, "seed", derived_seed(&id, &text))?;
    let path = |name: &str| fields.get(name).map(|p| base.join(p));
    let options = GenerateOptions {
        audio_prompt: path("voice"),
        prompt_wav_path: path("prompt_wav"),
        prompt_text: fields.get("prompt_text").map(|s| s.to_string()),
        speech,
        normalize: defaults.normalize,
        denoise: defaults.denoise,
        seed: Some(seed),
    };
    Ok(Line { id, text, options })
}

/// A stable seed for a line without one.
fn derived_seed(id: &str, text: &str) -> u64 {
    let digest = Sha256::new().chain_update(id).chain_update([0]).chain_update(text).finalize();
    u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"))
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
    let partial = path.with_extension("json.partial");
    std::fs::write(&partial, serde_json::to_string_pretty(&manifest)?)
        .with_context(|| format!("writing {}", partial.display()))?;
    std::fs::rename(&partial, path).with_context(|| format!("writing {}", path.display()))
}
