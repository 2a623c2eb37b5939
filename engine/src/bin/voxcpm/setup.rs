//! Which model a command uses: `--model`, then `$VOXCPM_MODEL`, then a copy fetched with
//! `voxcpm fetch`, then the random-weight demo checkpoint (with a notice that it cannot speak);
//! and starting the runtime on it.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use indicatif::ProgressBar;
use voxcpm_engine::hub;
use voxcpm_engine::runtime::{Server, ServerOptions};

use crate::EngineArgs;

/// The random-weight demo checkpoint shipped in the repository.
pub const DEMO_CHECKPOINT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/demo-checkpoint");

/// A model argument for the runtime (a directory or a Hugging Face repo id) and where it came from.
pub struct ModelChoice {
    pub model: String,
    pub source: &'static str,
}

pub fn choose(flag: Option<String>) -> anyhow::Result<ModelChoice> {
    if let Some(model) = flag {
        return Ok(ModelChoice { model, source: "--model" });
    }
    if let Some(model) = std::env::var("VOXCPM_MODEL").ok().filter(|m| !m.is_empty()) {
        return Ok(ModelChoice { model, source: "VOXCPM_MODEL" });
    }
    if let Some(dir) = hub::cached(hub::DEFAULT_REPO) {
        return Ok(ModelChoice { model: dir.display().to_string(), source: "fetched copy" });
    }
    let demo = PathBuf::from(DEMO_CHECKPOINT).canonicalize().map_err(|_| {
        anyhow::anyhow!(
            "no model found: pass --model DIR, set VOXCPM_MODEL, or download the release with `voxcpm fetch`"
        )
    })?;
    eprintln!(
        "notice: no model given (--model, VOXCPM_MODEL or `voxcpm fetch`); using the demo checkpoint in assets/.\n\
         It has RANDOM WEIGHTS: the pipeline runs end to end but the audio is noise, not speech."
    );
    Ok(ModelChoice { model: demo.display().to_string(), source: "demo checkpoint (random weights)" })
}

/// Starts the runtime on the chosen model and device, waits for it (with a spinner on a
/// terminal) and applies the LoRA adapter if one is given.
pub fn start_server(engine: &EngineArgs) -> anyhow::Result<(Server, ModelChoice)> {
    let choice = choose(engine.model.clone())?;
    let options = ServerOptions { device: engine.device.clone(), ..ServerOptions::new(choice.model.clone()) };
    let server = Server::start(options)?;
    let spinner = ProgressBar::new_spinner().with_message(format!("loading {}", choice.model));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let ready = server.await_ready(Duration::MAX);
    spinner.finish_and_clear();
    ready.with_context(|| format!("loading model {} ({})", choice.model, choice.source))?;
    if let Some(note) = server.info().device_note {
        eprintln!("notice: running on cpu: {note}");
    }
    if let Some(dir) = &engine.lora {
        let (loaded, skipped) = server.load_lora(dir)?;
        eprintln!("LoRA {}: {loaded} tensors loaded, {skipped} skipped", dir.display());
    }
    Ok((server, choice))
}
