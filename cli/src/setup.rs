//! Which model a command uses: `--model`, then `$VOXCPM_MODEL`, then a copy fetched with
//! `voxcpm fetch`, then the random-weight demo checkpoint (with a notice that it cannot speak);
//! and starting the runtime on it.

use std::time::Duration;

use anyhow::Context;
use indicatif::ProgressBar;
use voxcpm_engine::config::Architecture;
use voxcpm_engine::hub::{self, ModelChoice, ModelSource};
use voxcpm_engine::runtime::{Server, ServerOptions};

use crate::args::EngineArgs;

/// Picks the model (see [`hub::choose`]), with a notice on stderr when it is the demo.
pub fn choose(flag: Option<String>) -> anyhow::Result<ModelChoice> {
    let choice = hub::choose(flag.as_deref())?;
    if choice.source == ModelSource::Demo {
        eprintln!(
            "notice: no model given (--model, VOXCPM_MODEL or `voxcpm fetch`); using the demo checkpoint in assets/.\n\
             It has RANDOM WEIGHTS: the pipeline runs end to end but the audio is noise, not speech."
        );
    }
    Ok(choice)
}

/// Starts the runtime on the chosen model and device (with the prompt denoiser when
/// `load_denoiser`), waits for it (with a spinner on a terminal) and applies the LoRA adapter
/// if one is given.
pub fn start_server(engine: &EngineArgs, load_denoiser: bool) -> anyhow::Result<(Server, ModelChoice)> {
    let choice = choose(engine.model.clone())?;
    let options = ServerOptions {
        device: engine.device.clone(),
        precision: engine.precision,
        load_denoiser,
        max_batch: engine.max_batch,
        ..ServerOptions::new(choice.model.clone())
    };
    let server = Server::start(options)?;
    let spinner = ProgressBar::new_spinner().with_message(format!("loading {}", choice.model));
    spinner.enable_steady_tick(Duration::from_millis(120));
    let ready = server.await_ready(Duration::MAX);
    spinner.finish_and_clear();
    ready.with_context(|| format!("loading model {} ({})", choice.model, choice.source.describe()))?;
    let info = server.info();
    if let Some(note) = info.device_note {
        eprintln!("notice: running on {}: {note}", info.device.as_deref().unwrap_or("cpu"));
    }
    if let Some(dir) = &engine.lora {
        let (loaded, skipped) = server.load_lora(dir)?;
        eprintln!("LoRA {}: {loaded} tensors loaded, {skipped} skipped", dir.display());
    }
    Ok((server, choice))
}

/// A reference clip needs VoxCPM2. On a v1 model, the error for `option` (how the user asked for
/// one: `--voice`, a script's `voice` column), said before any audio is generated.
pub fn check_reference_clip(server: &Server, option: &str) -> Result<(), String> {
    let info = server.info();
    match info.architecture {
        Some(architecture @ Architecture::V1) => Err(format!(
            "{option} (a reference clip to clone) needs a VoxCPM2 model, and {} is \"{architecture}\" \
             (VoxCPM-0.5B / VoxCPM1.5), which speaks zero-shot or continues a prompt clip given with its transcript",
            info.model
        )),
        _ => Ok(()),
    }
}
