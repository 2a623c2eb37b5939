//! One model per process: every plugin instance asking for the same checkpoint gets the same
//! runtime, and the model is freed when the last of them lets go.

use std::sync::{Arc, Mutex, Weak};

use voxcpm_engine::hub::{self, ModelChoice};
use voxcpm_engine::runtime::{Server, ServerOptions};

static SERVERS: Mutex<Vec<(String, Weak<Server>)>> = Mutex::new(Vec::new());

/// A running (or loading) model and where it came from.
#[derive(Clone)]
pub struct SharedEngine {
    pub server: Arc<Server>,
    pub choice: ModelChoice,
}

/// The runtime for `model` (a checkpoint folder; `None` = the automatic choice), started on
/// first use. Loading happens on the runtime's own thread; this returns at once.
pub fn acquire(model: Option<&str>) -> voxcpm_engine::Result<SharedEngine> {
    let choice = hub::choose(model)?;
    let mut servers = SERVERS.lock().unwrap_or_else(|p| p.into_inner());
    servers.retain(|(_, server)| server.strong_count() > 0);
    if let Some(server) = servers.iter().find(|(key, _)| *key == choice.model).and_then(|(_, s)| s.upgrade()) {
        return Ok(SharedEngine { server, choice });
    }
    let server = Arc::new(Server::start(ServerOptions::new(choice.model.clone()))?);
    servers.push((choice.model.clone(), Arc::downgrade(&server)));
    Ok(SharedEngine { server, choice })
}

/// How many models this process holds now.
pub fn loaded_models() -> usize {
    SERVERS.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|(_, s)| s.strong_count() > 0).count()
}
