//! `Server`: the model on its own thread, serving requests in a running batch (continuous
//! batching): requests start in the order they arrive, join the batch at the next patch
//! boundary once their prefill is done (up to `max_batch` at a time), generate one patch each
//! per step, and leave when they finish.
//!
//! Callers talk to the worker through one channel of commands; each command carries its own
//! reply channel (or, for a stream, its own event channel). Requests made while the model
//! loads wait in the queue and are served once it is ready, or answered with the load error.
//! `stop` cancels the generations in progress at their next patch, and every request still
//! queued is answered with [`Error::Stopped`] as the queue is dropped.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::batch::{self, Batch, Client, Member};
use super::device::{self, DeviceRequest, Precision};
use super::options::{GenerateOptions, ServerOptions};
use super::stream::{SpeechStream, StreamEvent};
use crate::config::Architecture;
use crate::denoise::Denoiser;
use crate::error::{Error, Result, panic_message};
use crate::hub;
use crate::kernels;
use crate::model::LoadOptions;
use crate::noise::SeededNoise;
use crate::pipeline::{Delivery, Progress, SpeechRequest, TextToSpeech};
use crate::wav;

/// Where the model stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Loading,
    Ready,
    /// The load failed; every request is answered with this message.
    Failed(String),
    /// `stop` was called.
    Stopped,
}

/// A snapshot of the server, answered without waiting for the worker.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub status: Status,
    /// The device really used ("cpu" or "wgpu"), once resolved.
    pub device: Option<String>,
    /// What the device computes in, once resolved.
    pub precision: Option<Precision>,
    /// Why a GPU request fell back to cpu, or why a precision was not applied.
    pub device_note: Option<String>,
    /// The model's output sample rate (48000 for VoxCPM2, 16000 for VoxCPM-0.5B, 44100 for
    /// VoxCPM1.5), once loaded.
    pub sample_rate: Option<u32>,
    /// The checkpoint's architecture, once loaded: VoxCPM2, or v1 (VoxCPM-0.5B, VoxCPM1.5),
    /// which has no reference-clip mode. Displays as the official name ("voxcpm2", "voxcpm").
    pub architecture: Option<Architecture>,
    /// The model as given at start.
    pub model: String,
    /// The checkpoint directory it resolved to.
    pub model_dir: Option<PathBuf>,
    /// Streams queued or generating.
    pub stream_count: usize,
    /// Whether a prompt denoiser is loaded.
    pub denoiser: bool,
    /// Patches generated since start, by every request (cancelled ones included).
    pub patches_generated: u64,
    /// Requests in the running batch now (they generate together, one patch each per step).
    pub batch: usize,
    /// The largest the running batch has been since start (never above `max_batch`).
    pub peak_batch: usize,
    /// The CPU kernels this process runs (the best the CPU has, or `VOXCPM_KERNEL`'s choice),
    /// or why `VOXCPM_KERNEL` cannot be honoured (a cpu model then fails to load, saying so).
    pub cpu_kernels: std::result::Result<kernels::Level, kernels::LevelError>,
}

/// Generated speech.
#[derive(Debug, Clone, PartialEq)]
pub struct Speech {
    pub samples: Vec<f32>,
    pub sample_rate: u32,
    /// The noise seed used; the same text, options and seed give the same samples.
    pub seed: u64,
}

impl Speech {
    pub fn duration_secs(&self) -> f64 {
        self.samples.len() as f64 / self.sample_rate as f64
    }

    /// A 16-bit PCM mono WAV, as VoxCPMEx's `generate` returns.
    pub fn to_wav(&self) -> Vec<u8> {
        wav::encode_pcm16(&self.samples, self.sample_rate)
    }
}

/// VoxCPMEx's `save/2`: writes WAV bytes (from [`Speech::to_wav`] or [`SpeechStream::collect`])
/// to a file.
pub fn save(wav_bytes: &[u8], path: &Path) -> Result<()> {
    std::fs::write(path, wav_bytes).map_err(|e| Error::write(path, e))
}

pub(super) type ProgressFn = Box<dyn FnMut(Progress) -> ControlFlow<()> + Send>;

enum Command {
    Generate {
        text: String,
        options: GenerateOptions,
        seed: u64,
        progress: Option<ProgressFn>,
        reply: Sender<Result<Speech>>,
    },
    Stream {
        text: String,
        options: GenerateOptions,
        seed: u64,
        events: Sender<StreamEvent>,
        cancelled: Arc<AtomicBool>,
    },
    LoadLora {
        path: PathBuf,
        reply: Sender<Result<(usize, usize)>>,
    },
    UnloadLora {
        reply: Sender<Result<()>>,
    },
    /// Wakes the worker so that it sees the shutdown flag.
    Wake,
}

struct State {
    status: Status,
    device: Option<String>,
    precision: Option<Precision>,
    device_note: Option<String>,
    sample_rate: Option<u32>,
    architecture: Option<Architecture>,
    model_dir: Option<PathBuf>,
}

struct Shared {
    state: Mutex<State>,
    status_changed: Condvar,
    shutdown: AtomicBool,
    streams: AtomicUsize,
    patches: AtomicU64,
    batch: AtomicUsize,
    peak_batch: AtomicUsize,
    model: String,
    denoiser: bool,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        // A panic never happens while the lock is held, but stay usable if one did.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::Relaxed)
    }
}

/// The speech runtime; see the module docs. `Server` is `Send + Sync`: share it in an `Arc`.
pub struct Server {
    shared: Arc<Shared>,
    commands: Sender<Command>,
    worker: Mutex<Option<JoinHandle<()>>>,
}

impl Server {
    /// Starts loading the model on a new thread and returns at once. An invalid device name is
    /// the only error reported here; everything about the model is reported by `await_ready`.
    pub fn start(options: ServerOptions) -> Result<Server> {
        let device_request = DeviceRequest::parse(&options.device)?;
        if options.max_batch == 0 {
            return Err(Error::InvalidInput("max_batch must be at least 1 (1 serves one request at a time)".into()));
        }
        let max_batch = options.max_batch;
        // RNNoise's weights are built in: loading cannot fail and takes microseconds.
        let denoiser = options.load_denoiser.then(Denoiser::new);
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                status: Status::Loading,
                device: None,
                precision: None,
                device_note: None,
                sample_rate: None,
                architecture: None,
                model_dir: None,
            }),
            status_changed: Condvar::new(),
            shutdown: AtomicBool::new(false),
            streams: AtomicUsize::new(0),
            patches: AtomicU64::new(0),
            batch: AtomicUsize::new(0),
            peak_batch: AtomicUsize::new(0),
            model: options.model.clone(),
            denoiser: denoiser.is_some(),
        });
        let (commands, queue) = channel();
        let worker_shared = Arc::clone(&shared);
        let worker = std::thread::Builder::new()
            .name("voxcpm-engine".into())
            .spawn(move || {
                Worker::load(&options.model, &device_request, options.precision, denoiser, worker_shared)
                    .serve(queue, max_batch)
            })
            .map_err(|e| Error::ModelUnavailable(format!("cannot start the engine thread: {e}")))?;
        Ok(Server { shared, commands, worker: Mutex::new(Some(worker)) })
    }

    /// Waits up to `timeout` for the model: `Ok` when ready, [`Error::Timeout`] while still
    /// loading, [`Error::ModelUnavailable`] when the load failed.
    pub fn await_ready(&self, timeout: Duration) -> Result<()> {
        // A timeout too long to represent (`Duration::MAX`) means no deadline.
        let deadline = Instant::now().checked_add(timeout);
        let mut state = self.shared.state();
        loop {
            match &state.status {
                Status::Ready => return Ok(()),
                Status::Failed(message) => return Err(Error::ModelUnavailable(message.clone())),
                Status::Stopped => return Err(Error::Stopped),
                Status::Loading => {}
            }
            state = match deadline {
                None => self.shared.status_changed.wait(state).unwrap_or_else(|p| p.into_inner()),
                Some(deadline) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    if left.is_zero() {
                        return Err(Error::Timeout(timeout));
                    }
                    self.shared.status_changed.wait_timeout(state, left).unwrap_or_else(|p| p.into_inner()).0
                }
            };
        }
    }

    pub fn info(&self) -> ServerInfo {
        let state = self.shared.state();
        ServerInfo {
            status: state.status.clone(),
            device: state.device.clone(),
            precision: state.precision,
            device_note: state.device_note.clone(),
            sample_rate: state.sample_rate,
            architecture: state.architecture,
            model: self.shared.model.clone(),
            model_dir: state.model_dir.clone(),
            stream_count: self.shared.streams.load(Ordering::Relaxed),
            denoiser: self.shared.denoiser,
            patches_generated: self.shared.patches.load(Ordering::Relaxed),
            batch: self.shared.batch.load(Ordering::Relaxed),
            peak_batch: self.shared.peak_batch.load(Ordering::Relaxed),
            cpu_kernels: kernels::selected_level(),
        }
    }

    /// Speaks `text` and returns the whole waveform once it is done.
    pub fn generate(&self, text: &str, options: &GenerateOptions) -> Result<Speech> {
        self.generate_inner(text, options, None)
    }

    /// As [`generate`](Self::generate), calling `progress` (on the engine thread) after each
    /// patch. `progress` returning `Break` cancels the request with [`Error::Cancelled`].
    pub fn generate_with_progress(
        &self,
        text: &str,
        options: &GenerateOptions,
        progress: impl FnMut(Progress) -> ControlFlow<()> + Send + 'static,
    ) -> Result<Speech> {
        self.generate_inner(text, options, Some(Box::new(progress)))
    }

    fn generate_inner(&self, text: &str, options: &GenerateOptions, progress: Option<ProgressFn>) -> Result<Speech> {
        let (reply, answer) = channel();
        let seed = options.seed.unwrap_or_else(rand::random);
        self.send(Command::Generate { text: text.to_owned(), options: options.clone(), seed, progress, reply })?;
        answer.recv().unwrap_or(Err(Error::Stopped))
    }

    /// Starts a streaming generation and returns its handle at once; chunks follow as the
    /// engine reaches this request. Dropping the handle cancels the generation.
    pub fn generate_streaming(&self, text: &str, options: &GenerateOptions) -> Result<SpeechStream> {
        let (events, receiver) = channel();
        let cancelled = Arc::new(AtomicBool::new(false));
        let seed = options.seed.unwrap_or_else(rand::random);
        self.shared.streams.fetch_add(1, Ordering::Relaxed);
        let command = Command::Stream {
            text: text.to_owned(),
            options: options.clone(),
            seed,
            events,
            cancelled: Arc::clone(&cancelled),
        };
        if let Err(e) = self.send(command) {
            self.shared.streams.fetch_sub(1, Ordering::Relaxed);
            return Err(e);
        }
        Ok(SpeechStream::new(receiver, cancelled, seed))
    }

    /// Loads a LoRA adapter directory; returns (loaded, skipped) tensor counts.
    pub fn load_lora(&self, path: &Path) -> Result<(usize, usize)> {
        let (reply, answer) = channel();
        self.send(Command::LoadLora { path: path.to_owned(), reply })?;
        answer.recv().unwrap_or(Err(Error::Stopped))
    }

    /// Removes the loaded LoRA adapter, restoring the base weights.
    pub fn unload_lora(&self) -> Result<()> {
        let (reply, answer) = channel();
        self.send(Command::UnloadLora { reply })?;
        answer.recv().unwrap_or(Err(Error::Stopped))
    }

    /// Cancels the generation in progress, answers every queued request with
    /// [`Error::Stopped`] and joins the engine thread. Later calls are answered with
    /// `Stopped` too. Calling it twice is harmless.
    pub fn stop(&self) {
        self.shared.shutdown.store(true, Ordering::Relaxed);
        self.shared.state().status = Status::Stopped;
        self.shared.status_changed.notify_all();
        let _ = self.commands.send(Command::Wake);
        let worker = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(worker) = worker
            && worker.join().is_err()
        {
            tracing::error!("the engine thread panicked while stopping");
        }
    }

    fn send(&self, command: Command) -> Result<()> {
        if self.shared.stopping() {
            return Err(Error::Stopped);
        }
        self.commands.send(command).map_err(|_| Error::Stopped)
    }
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server").field("info", &self.info()).finish()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The engine thread's side.
struct Worker {
    shared: Arc<Shared>,
    /// The model, or why there is none.
    engine: std::result::Result<TextToSpeech, String>,
    /// The prompt denoiser, when started with `load_denoiser`.
    denoiser: Option<Denoiser>,
}

impl Worker {
    fn load(
        model: &str,
        device_request: &DeviceRequest,
        precision: Precision,
        denoiser: Option<Denoiser>,
        shared: Arc<Shared>,
    ) -> Worker {
        let resolved = device::resolve(device_request, precision);
        {
            let mut state = shared.state();
            state.device = Some(resolved.name.clone());
            state.precision = Some(resolved.precision);
            state.device_note = resolved.fallback_reason.clone();
        }
        let loaded = hub::resolve(model).and_then(|dir| {
            shared.state().model_dir = Some(dir.clone());
            catch_panic(|| {
                TextToSpeech::load(
                    &dir,
                    &LoadOptions::on(&resolved.device).with_products(resolved.precision.cpu_products()),
                )
            })
        });
        let engine = loaded.map_err(|e| e.to_string());
        if !shared.stopping() {
            let mut state = shared.state();
            match &engine {
                Ok(tts) => {
                    state.status = Status::Ready;
                    state.sample_rate = Some(tts.output_sample_rate());
                    state.architecture = Some(tts.model().config().architecture);
                    tracing::info!(model, device = resolved.name, "model ready");
                }
                Err(message) => {
                    state.status = Status::Failed(message.clone());
                    // Every caller gets the message as its error; the log is for --verbose.
                    tracing::info!(model, %message, "model failed to load");
                }
            }
        }
        shared.status_changed.notify_all();
        Worker { shared, engine, denoiser }
    }

    /// The engine loop: between patches it takes what arrived, lets waiting requests join the
    /// running batch (up to `max_batch`; each after its own prefill) and steps the batch by
    /// one patch. A LoRA command waits until the batch has drained, so that requests with
    /// different adapters never share a batch.
    fn serve(mut self, queue: Receiver<Command>, max_batch: usize) {
        let mut waiting = VecDeque::new();
        let mut batch = Batch::default();
        loop {
            if batch.is_empty() && waiting.is_empty() {
                // Nothing to do: sleep until something arrives.
                match queue.recv() {
                    Ok(command) => waiting.push_back(command),
                    Err(_) => break,
                }
            }
            waiting.extend(queue.try_iter());
            if self.shared.stopping() {
                break;
            }
            self.admit(&mut waiting, &mut batch, max_batch);
            self.shared.batch.store(batch.len(), Ordering::Relaxed);
            self.shared.peak_batch.fetch_max(batch.len(), Ordering::Relaxed);
            if let Ok(tts) = &self.engine
                && !batch.is_empty()
            {
                let shared = &self.shared;
                let context = batch::Context {
                    tts,
                    stopping: &|| shared.stopping(),
                    on_patch: &|| {
                        shared.patches.fetch_add(1, Ordering::Relaxed);
                    },
                    on_stream_end: &|| {
                        shared.streams.fetch_sub(1, Ordering::Relaxed);
                    },
                };
                batch.step(&context);
                shared.batch.store(batch.len(), Ordering::Relaxed);
            }
        }
        batch.stop();
        self.shared.batch.store(0, Ordering::Relaxed);
        // Dropping the queue drops every pending command's reply sender: their callers get
        // `Stopped`. Streams still counted as in flight are answered the same way.
        self.shared.streams.store(0, Ordering::Relaxed);
        self.engine = Err("stopped".into());
    }

    /// Serves waiting commands in order while they can go: requests while the batch has room,
    /// adapter changes once it is empty.
    fn admit(&mut self, waiting: &mut VecDeque<Command>, batch: &mut Batch, max_batch: usize) {
        while let Some(command) = waiting.front() {
            let blocked = match command {
                Command::Generate { .. } | Command::Stream { .. } => batch.len() >= max_batch,
                Command::LoadLora { .. } | Command::UnloadLora { .. } => !batch.is_empty(),
                Command::Wake => false,
            };
            if blocked {
                break;
            }
            let Some(command) = waiting.pop_front() else { break };
            match command {
                Command::Generate { text, options, seed, progress, reply } => {
                    let client = Client::Whole { seed, progress, reply };
                    self.begin(&text, &options, seed, client, batch);
                }
                Command::Stream { text, options, seed, events, cancelled } => {
                    if cancelled.load(Ordering::Relaxed) {
                        // Dropped while queued.
                        self.shared.streams.fetch_sub(1, Ordering::Relaxed);
                        continue;
                    }
                    self.begin(&text, &options, seed, Client::Stream { events, cancelled }, batch);
                }
                Command::LoadLora { path, reply } => {
                    let result = self.engine_mut().and_then(|tts| catch_panic(|| tts.load_lora(&path)));
                    let _ = reply.send(result);
                }
                Command::UnloadLora { reply } => {
                    let _ = reply.send(self.engine_mut().map(TextToSpeech::unload_lora));
                }
                Command::Wake => {}
            }
        }
    }

    /// Builds the request, runs its prefill and adds it to the batch; a request that cannot
    /// start is answered at once.
    fn begin(&self, text: &str, options: &GenerateOptions, seed: u64, client: Client, batch: &mut Batch) {
        let delivery = if client.is_stream() { Delivery::Streaming } else { Delivery::Whole };
        let started = self.request(text, options).and_then(|(tts, request)| {
            if let Client::Stream { events, .. } = &client {
                let _ = events.send(StreamEvent::Started { sample_rate: tts.output_sample_rate() });
            }
            catch_panic(|| tts.begin(&request, delivery))
        });
        match started {
            Ok((utterance, warm_up)) => {
                if let (Client::Stream { events, .. }, Some(chunk)) = (&client, warm_up) {
                    let _ = events.send(StreamEvent::Chunk(chunk));
                }
                batch.join(Member { utterance, noise: SeededNoise::new(seed), client });
            }
            Err(error) => {
                if client.is_stream() {
                    self.shared.streams.fetch_sub(1, Ordering::Relaxed);
                }
                client.fail(error);
            }
        }
    }

    fn engine(&self) -> Result<&TextToSpeech> {
        self.engine.as_ref().map_err(|message| Error::ModelUnavailable(message.clone()))
    }

    /// The loaded engine and the request built for it (clips read, denoised when asked and
    /// possible, and resampled to its encoder rate; the target text normalised when asked).
    fn request(&self, text: &str, options: &GenerateOptions) -> Result<(&TextToSpeech, SpeechRequest)> {
        let tts = self.engine()?;
        let config = tts.model().config();
        options.check_for(config.architecture)?;
        let request = options.to_request(text, config.audio_vae_config.sample_rate, self.denoiser.as_ref())?;
        Ok((tts, request))
    }

    fn engine_mut(&mut self) -> Result<&mut TextToSpeech> {
        self.engine.as_mut().map_err(|message| Error::ModelUnavailable(message.clone()))
    }
}

/// Runs `f`, turning a panic inside the engine into an error so that the thread keeps serving.
pub(super) fn catch_panic<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|panic| {
        let message = panic_message(&*panic);
        tracing::error!(message, "engine panicked");
        Err(Error::Internal(message.to_owned()))
    })
}
