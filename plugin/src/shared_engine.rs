//! One model per process: every plugin instance asking for the same checkpoint gets the same
//! runtime, and the model is freed when the last of them lets go.

use std::sync::{Arc, Mutex, Weak};

use voxcpm_engine::hub::{self, HubLocation, ModelChoice};
use voxcpm_engine::runtime::{Server, ServerOptions};

static SERVERS: Mutex<Vec<(String, Weak<Server>)>> = Mutex::new(Vec::new());

/// A running (or loading) model and where it came from.
#[derive(Clone)]
pub struct SharedEngine {
    pub server: Arc<Server>,
    pub choice: ModelChoice,
}

/// The runtime for `model` (a checkpoint folder or a Hugging Face repository id; `None` = the
/// automatic choice), started on first use. A repository id must be installed in the cache
/// (the editor's Models section downloads): the plugin never downloads behind the user's back.
/// Loading happens on the runtime's own thread; this returns at once.
pub fn acquire(model: Option<&str>) -> voxcpm_engine::Result<SharedEngine> {
    leave_a_core_to_the_host();
    let choice = hub::choose(model)?;
    let dir = hub::resolve_cached(&choice.model, &HubLocation::from_env())?.display().to_string();
    let mut servers = SERVERS.lock().unwrap_or_else(|p| p.into_inner());
    servers.retain(|(_, server)| server.strong_count() > 0);
    if let Some(server) = servers.iter().find(|(key, _)| *key == dir).and_then(|(_, s)| s.upgrade()) {
        return Ok(SharedEngine { server, choice });
    }
    // The denoiser is small and only runs for requests that ask for it; every shared server
    // has one, so a "denoise" line never meets a server started without it.
    let options = ServerOptions { load_denoiser: true, ..ServerOptions::new(dir.clone()) };
    let server = Arc::new(Server::start(options)?);
    servers.push((dir, Arc::downgrade(&server)));
    Ok(SharedEngine { server, choice })
}

/// How many models this process holds now.
pub fn loaded_models() -> usize {
    SERVERS.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|(_, s)| s.strong_count() > 0).count()
}

/// The CPU backend computes on rayon's global pool, which lives inside the host's process: keep
/// one core free for the host's audio and GUI threads. (Ignored if something in the process has
/// already set the pool up.)
fn leave_a_core_to_the_host() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let threads = cores.saturating_sub(1).max(1);
        if rayon::ThreadPoolBuilder::new().num_threads(threads).build_global().is_ok() {
            tracing::info!("engine threads: {threads} of {cores} cores");
        }
    });
}
