//! The bridge's request loop: frames in, exactly one reply (or one stream) out per request,
//! strictly in order, over the runtime `Server`. Generations the client pipelines run together
//! (continuous batching); an init or a LoRA change waits for those before it, and the requests
//! after it wait for it, so each runs on the model and adapter of its place in order.
//!
//! A reader thread turns the input into events, so the end of input or a termination signal
//! is noticed while a request is running: both stop the server, which cancels the running
//! generation at its next patch, and the bridge exits without serving the rest.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::frame::{FrameError, decode_map, read_frame};
use super::protocol::{Request, parse, reply};
use super::replies::{Frames, InFlight, immediate, on_thread, write_in_order};
use crate::runtime::{
    DEFAULT_MAX_BATCH, DeviceRequest, GenerateOptions, Precision, Server, ServerInfo, ServerOptions, Status,
};

/// Why the loop woke up.
pub enum Event {
    Frame(Vec<u8>),
    /// The input ended cleanly.
    Eof,
    /// The input cannot be read any further.
    Fatal(String),
    /// SIGTERM (or another stop request from outside).
    Terminate,
}

/// Stops the bridge from any thread: sets the flag and stops the running server.
#[derive(Clone, Default)]
pub struct Shutdown {
    requested: Arc<AtomicBool>,
    server: Arc<Mutex<Option<Arc<Server>>>>,
}

impl Shutdown {
    pub fn trigger(&self) {
        self.requested.store(true, Ordering::Relaxed);
        let server = self.server.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(server) = server {
            server.stop();
        }
    }

    /// The running server's info (`None` before an init and once stopped): what a supervisor
    /// or a test sees of the engine behind the bridge, such as its `peak_batch`.
    pub fn server_info(&self) -> Option<ServerInfo> {
        self.server.lock().unwrap_or_else(|p| p.into_inner()).as_ref().map(|server| server.info())
    }

    fn requested(&self) -> bool {
        self.requested.load(Ordering::Relaxed)
    }

    fn register(&self, server: Arc<Server>) {
        *self.server.lock().unwrap_or_else(|p| p.into_inner()) = Some(server);
    }
}

/// Reads frames on a thread of its own and forwards them as events.
pub fn spawn_reader(mut input: impl Read + Send + 'static, events: Sender<Event>, shutdown: Shutdown) {
    std::thread::spawn(move || {
        loop {
            let event = match read_frame(&mut input) {
                Ok(payload) => Event::Frame(payload),
                Err(FrameError::Eof) => Event::Eof,
                Err(FrameError::Fatal(m) | FrameError::BadPayload(m)) => Event::Fatal(m),
            };
            let last = !matches!(event, Event::Frame(_));
            let delivered = events.send(event).is_ok();
            if last {
                // The client is gone or unusable: cancel the running generation. (The event
                // goes first: stopping waits for a model that is still loading.)
                tracing::info!("input closed; stopping");
                shutdown.trigger();
            }
            if !delivered || last {
                return;
            }
        }
    });
}

/// Serves events until the input ends, a signal arrives or the output breaks (noticed when the
/// next reply is queued). Returns the process exit code: 0, or 1 when the input was not a
/// valid frame stream.
///
/// Requests the client pipelines (sends before the reply to the one before) generate together
/// on the engine, one batch; their replies are still written whole and in request order by a
/// writer thread ([`replies`](super::replies)).
pub fn serve(events: Receiver<Event>, output: impl Write + Send, shutdown: Shutdown) -> i32 {
    let (replies, queue) = channel();
    std::thread::scope(|scope| {
        let writer_shutdown = shutdown.clone();
        scope.spawn(move || write_in_order(queue, output, &writer_shutdown));
        let mut bridge = Bridge {
            server: None,
            shutdown: shutdown.clone(),
            in_flight: Arc::default(),
            max_batch: DEFAULT_MAX_BATCH,
        };
        let code = loop {
            let Ok(event) = events.recv() else { break 0 };
            let frames = match event {
                Event::Frame(_) if shutdown.requested() => break 0,
                Event::Frame(payload) => bridge.handle(&payload),
                Event::Eof | Event::Terminate => break 0,
                Event::Fatal(message) => {
                    tracing::error!(%message, "unreadable input");
                    let _ = replies.send(immediate(reply::error(&format!("Frame read error: {message}"))));
                    break 1;
                }
            };
            if replies.send(frames).is_err() {
                break 0; // the writer stopped: the output is gone
            }
        };
        // The requests still running end at once; the writer writes what is queued and returns.
        shutdown.trigger();
        drop(replies);
        code
    })
}

struct Bridge {
    server: Option<Arc<Server>>,
    shutdown: Shutdown,
    in_flight: Arc<InFlight>,
    /// The server's `max_batch`: how many requests are worth having in flight.
    max_batch: usize,
}

impl Bridge {
    /// Starts answering one frame and returns its reply's frames.
    fn handle(&mut self, payload: &[u8]) -> Frames {
        let request = match decode_map(payload) {
            Ok(map) => parse(map),
            Err(FrameError::BadPayload(m) | FrameError::Fatal(m)) => Err(format!("Frame read error: {m}")),
            Err(FrameError::Eof) => Err("Frame read error: empty payload".into()),
        };
        let request = match request {
            Ok(request) => request,
            Err(message) => return immediate(reply::error(&message)),
        };
        tracing::info!(?request, "request");
        match request {
            Request::Init { model, device, load_denoiser, optimize } => {
                self.in_flight.wait_idle();
                immediate(self.init(model, device, load_denoiser, optimize))
            }
            Request::Generate { text, options } => self.generate(text, options),
            Request::GenerateStreaming { text, options } => self.stream(text, options),
            Request::LoadLora { path } => {
                self.in_flight.wait_idle();
                immediate(match self.ready() {
                    Ok(server) => match server.load_lora(&path) {
                        Ok((loaded, skipped)) => reply::lora_loaded(loaded, skipped),
                        Err(e) => reply::error(&e.to_string()),
                    },
                    Err(e) => e,
                })
            }
            Request::UnloadLora => {
                self.in_flight.wait_idle();
                immediate(match self.ready() {
                    Ok(server) => server.unload_lora().map_or_else(|e| reply::error(&e.to_string()), |()| reply::ok()),
                    Err(e) => e,
                })
            }
            Request::Ping => immediate(reply::pong()),
            Request::Unknown(kind) => {
                immediate(reply::error(&format!("Unknown request type: {}", kind.as_deref().unwrap_or("None"))))
            }
        }
    }

    /// Loads the model (replacing any earlier one) and waits for it, as the Python bridge does:
    /// requests sent meanwhile queue up and are answered after this reply.
    fn init(&mut self, model: String, device: String, load_denoiser: bool, optimize: bool) -> rmpv::Value {
        if let Some(old) = self.server.take() {
            old.stop();
        }
        // The Python bridge turns any device it does not know into "cpu".
        let device = if DeviceRequest::parse(&device).is_ok() { device } else { "cpu".to_owned() };
        let options =
            ServerOptions { device, precision: Precision::F32, load_denoiser, optimize, ..ServerOptions::new(model) };
        self.max_batch = options.max_batch;
        let server = match Server::start(options) {
            Ok(server) => Arc::new(server),
            Err(e) => return reply::error(&e.to_string()),
        };
        self.shutdown.register(Arc::clone(&server));
        self.server = Some(Arc::clone(&server));
        if self.shutdown.requested() {
            server.stop();
        }
        match server.await_ready(Duration::MAX) {
            Ok(()) => {
                let info = server.info();
                // Known once ready: the model's own rate (16, 44.1 or 48 kHz).
                match info.sample_rate {
                    Some(rate) => reply::ready(info.device.as_deref().unwrap_or("cpu"), rate),
                    None => reply::error("Model not initialized"),
                }
            }
            Err(e) => reply::error(&e.to_string()),
        }
    }

    /// The ready server, or the Python bridge's error reply.
    fn ready(&self) -> Result<&Arc<Server>, rmpv::Value> {
        match &self.server {
            Some(server) if server.info().status == Status::Ready => Ok(server),
            _ => Err(reply::error("Model not initialized")),
        }
    }

    /// A whole take, generated beside the other requests in flight.
    fn generate(&self, text: String, options: GenerateOptions) -> Frames {
        let server = match self.ready() {
            Ok(server) => Arc::clone(server),
            Err(e) => return immediate(e),
        };
        on_thread(self.in_flight.enter(self.max_batch), move |frames| {
            let reply = match server.generate(&text, &options) {
                Ok(speech) => reply::audio(speech.to_wav(), speech.sample_rate, speech.duration_secs()),
                Err(e) => reply::error(&e.to_string()),
            };
            let _ = frames.send(reply);
        })
    }

    /// `stream_start`, one `stream_chunk` per patch, then `stream_end` or `stream_error`.
    fn stream(&self, text: String, options: GenerateOptions) -> Frames {
        let server = match self.ready() {
            Ok(server) => Arc::clone(server),
            Err(e) => return immediate(e),
        };
        on_thread(self.in_flight.enter(self.max_batch), move |frames| {
            let mut stream = match server.generate_streaming(&text, &options) {
                Ok(stream) => stream,
                Err(e) => return drop(frames.send(reply::error(&e.to_string()))),
            };
            let Some(sample_rate) = server.info().sample_rate else {
                return drop(frames.send(reply::error("Model not initialized")));
            };
            // A failed send means the writer is gone: dropping the stream cancels it.
            if frames.send(reply::stream_start(sample_rate)).is_err() {
                return;
            }
            for index in 0.. {
                let (frame, last) = match stream.next_chunk() {
                    Ok(Some(chunk)) => (reply::stream_chunk(&chunk, index), false),
                    Ok(None) => (reply::stream_end(index), true),
                    Err(e) => (reply::stream_error(&e.to_string()), true),
                };
                if frames.send(frame).is_err() || last {
                    return;
                }
            }
        })
    }
}
