//! The bridge's request loop: frames in, exactly one reply (or one stream) out per request,
//! strictly in order, over the runtime `Server`.
//!
//! A reader thread turns the input into events, so the end of input or a termination signal
//! is noticed while a request is running: both stop the server, which cancels the running
//! generation at its next patch, and the bridge exits without serving the rest.

use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::frame::{FrameError, decode_map, read_frame, write_frame};
use super::protocol::{Request, parse, reply};
use crate::runtime::{DeviceRequest, GenerateOptions, Precision, Server, ServerOptions, Status};

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

/// Serves events until the input ends, a signal arrives or the output breaks. Returns the
/// process exit code: 0, or 1 when the input was not a valid frame stream.
pub fn serve(events: Receiver<Event>, mut output: impl Write, shutdown: Shutdown) -> i32 {
    let mut bridge = Bridge { server: None, shutdown: shutdown.clone() };
    let code = loop {
        let Ok(event) = events.recv() else { break 0 };
        match event {
            Event::Frame(_) if shutdown.requested() => break 0,
            Event::Frame(payload) => {
                if let Err(e) = bridge.handle(&payload, &mut output) {
                    tracing::info!(error = %e, "output closed; stopping");
                    break 0;
                }
            }
            Event::Eof | Event::Terminate => break 0,
            Event::Fatal(message) => {
                tracing::error!(%message, "unreadable input");
                let _ = write_frame(&mut output, &reply::error(&format!("Frame read error: {message}")));
                break 1;
            }
        }
    };
    shutdown.trigger();
    code
}

struct Bridge {
    server: Option<Arc<Server>>,
    shutdown: Shutdown,
}

impl Bridge {
    /// Answers one frame; an error means the output is gone.
    fn handle(&mut self, payload: &[u8], out: &mut impl Write) -> std::io::Result<()> {
        let request = match decode_map(payload) {
            Ok(map) => parse(map),
            Err(FrameError::BadPayload(m) | FrameError::Fatal(m)) => Err(format!("Frame read error: {m}")),
            Err(FrameError::Eof) => Err("Frame read error: empty payload".into()),
        };
        let request = match request {
            Ok(request) => request,
            Err(message) => return write_frame(out, &reply::error(&message)),
        };
        tracing::info!(?request, "request");
        match request {
            Request::Init { model, device, load_denoiser, optimize } => {
                write_frame(out, &self.init(model, device, load_denoiser, optimize))
            }
            Request::Generate { text, options } => write_frame(out, &self.generate(&text, &options)),
            Request::GenerateStreaming { text, options } => self.stream(&text, &options, out),
            Request::LoadLora { path } => write_frame(
                out,
                &match self.ready() {
                    Ok(server) => match server.load_lora(&path) {
                        Ok((loaded, skipped)) => reply::lora_loaded(loaded, skipped),
                        Err(e) => reply::error(&e.to_string()),
                    },
                    Err(e) => e,
                },
            ),
            Request::UnloadLora => write_frame(
                out,
                &match self.ready() {
                    Ok(server) => server.unload_lora().map_or_else(|e| reply::error(&e.to_string()), |()| reply::ok()),
                    Err(e) => e,
                },
            ),
            Request::Ping => write_frame(out, &reply::pong()),
            Request::Unknown(kind) => {
                write_frame(out, &reply::error(&format!("Unknown request type: {}", kind.as_deref().unwrap_or("None"))))
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
        let server =
            match Server::start(ServerOptions { model, device, precision: Precision::F32, load_denoiser, optimize }) {
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
    fn ready(&self) -> Result<&Server, rmpv::Value> {
        match &self.server {
            Some(server) if server.info().status == Status::Ready => Ok(server),
            _ => Err(reply::error("Model not initialized")),
        }
    }

    fn generate(&self, text: &str, options: &GenerateOptions) -> rmpv::Value {
        let server = match self.ready() {
            Ok(server) => server,
            Err(e) => return e,
        };
        match server.generate(text, options) {
            Ok(speech) => reply::audio(speech.to_wav(), speech.sample_rate, speech.duration_secs()),
            Err(e) => reply::error(&e.to_string()),
        }
    }

    /// `stream_start`, one `stream_chunk` per patch, then `stream_end` or `stream_error`.
    fn stream(&self, text: &str, options: &GenerateOptions, out: &mut impl Write) -> std::io::Result<()> {
        let server = match self.ready() {
            Ok(server) => server,
            Err(e) => return write_frame(out, &e),
        };
        let mut stream = match server.generate_streaming(text, options) {
            Ok(stream) => stream,
            Err(e) => return write_frame(out, &reply::error(&e.to_string())),
        };
        let Some(sample_rate) = server.info().sample_rate else {
            return write_frame(out, &reply::error("Model not initialized"));
        };
        write_frame(out, &reply::stream_start(sample_rate))?;
        let mut index = 0;
        loop {
            match stream.next_chunk() {
                Ok(Some(chunk)) => {
                    write_frame(out, &reply::stream_chunk(&chunk, index))?;
                    index += 1;
                }
                Ok(None) => return write_frame(out, &reply::stream_end(index)),
                Err(e) => return write_frame(out, &reply::stream_error(&e.to_string())),
            }
        }
    }
}
