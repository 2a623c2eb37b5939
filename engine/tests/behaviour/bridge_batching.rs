//! The bridge with pipelined requests (each sent before the reply to the one before): they
//! generate together as one batch on the engine, yet every reply comes whole and in request
//! order, with the audio each request gets alone; errors and streams keep their places.
//!
//! A session is driven as the CLI drives it (`serve` over an event channel), its output read
//! back frame by frame through a pipe of channels.

use std::io::{Read, Write};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::thread::JoinHandle;
use std::time::Duration;

use rmpv::Value;
use voxcpm_engine::bridge::{Event, Shutdown, decode_map, read_frame, serve};
use voxcpm_engine::pipeline::SpeechOptions;
use voxcpm_engine::runtime::{GenerateOptions, Server, ServerOptions};

use crate::common::fixtures;

fn checkpoint() -> String {
    fixtures().join("tiny/checkpoint").display().to_string()
}

/// The bridge's output, as bytes sent down a channel.
struct Pipe(Sender<Vec<u8>>);

impl Write for Pipe {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.send(bytes.to_vec()).map_err(|_| std::io::ErrorKind::BrokenPipe)?;
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The other end of a [`Pipe`].
struct PipeReader {
    chunks: Receiver<Vec<u8>>,
    pending: Vec<u8>,
}

impl Read for PipeReader {
    fn read(&mut self, buffer: &mut [u8]) -> std::io::Result<usize> {
        if self.pending.is_empty() {
            match self.chunks.recv() {
                Ok(chunk) => self.pending = chunk,
                Err(_) => return Ok(0),
            }
        }
        let n = buffer.len().min(self.pending.len());
        buffer[..n].copy_from_slice(&self.pending[..n]);
        self.pending.drain(..n);
        Ok(n)
    }
}

type Map = Vec<(String, Value)>;

/// A bridge session on its own thread.
struct Session {
    events: Sender<Event>,
    output: PipeReader,
    shutdown: Shutdown,
    served: JoinHandle<i32>,
}

impl Session {
    /// Starts serving `requests` (all queued before the first is read, as a client that
    /// pipelines them sends them).
    fn start(requests: Vec<Map>) -> Session {
        let (events, received) = channel();
        for request in requests {
            events.send(Event::Frame(encode(request))).unwrap();
        }
        let (bytes, chunks) = channel();
        let shutdown = Shutdown::default();
        let serving = shutdown.clone();
        let served = std::thread::spawn(move || serve(received, Pipe(bytes), serving));
        Session { events, output: PipeReader { chunks, pending: Vec::new() }, shutdown, served }
    }

    fn recv(&mut self) -> Map {
        decode_map(&read_frame(&mut self.output).expect("a reply frame")).unwrap()
    }

    /// Ends the input and checks that the bridge exits cleanly having sent nothing more.
    fn finish(mut self) {
        self.events.send(Event::Eof).unwrap();
        assert_eq!(self.served.join().unwrap(), 0);
        let mut rest = Vec::new();
        self.output.read_to_end(&mut rest).unwrap();
        assert!(rest.is_empty(), "{} bytes nobody asked for", rest.len());
    }
}

fn encode(map: Map) -> Vec<u8> {
    let value = Value::Map(map.into_iter().map(|(k, v)| (Value::from(k), v)).collect());
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &value).unwrap();
    bytes
}

fn init() -> Map {
    vec![("type".into(), "init".into()), ("model".into(), checkpoint().into()), ("device".into(), "cpu".into())]
}

/// A request of `kind` exactly `patches` long, with its own seed and cfg.
fn request(kind: &str, text: &str, patches: u64, seed: u64, cfg: f64) -> Map {
    vec![
        ("type".into(), kind.into()),
        ("text".into(), text.into()),
        ("min_len".into(), patches.into()),
        ("max_len".into(), patches.into()),
        ("seed".into(), seed.into()),
        ("cfg_value".into(), cfg.into()),
    ]
}

/// The same request's options for the runtime (the bridge's defaults: bad-case retry on for
/// `generate`, off for streams).
fn options(patches: usize, seed: u64, cfg: f32, streaming: bool) -> GenerateOptions {
    GenerateOptions {
        speech: SpeechOptions {
            min_len: patches,
            max_len: patches,
            cfg_value: cfg,
            retry_badcase: !streaming,
            ..SpeechOptions::default()
        },
        seed: Some(seed),
        ..GenerateOptions::default()
    }
}

/// A server that serves one request at a time: the reference for "alone".
fn alone() -> Server {
    let server = Server::start(ServerOptions { max_batch: 1, ..ServerOptions::new(checkpoint()) }).unwrap();
    server.await_ready(Duration::from_secs(60)).unwrap();
    server
}

fn get<'a>(map: &'a Map, key: &str) -> Option<&'a Value> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

/// What a reply is: "audio", "error: ...", "ready", or a stream frame's type.
fn kind(map: &Map) -> String {
    match (get(map, "status").and_then(Value::as_str), get(map, "type").and_then(Value::as_str)) {
        (Some("ok"), _) if get(map, "device").is_some() => "ready".into(),
        (Some("ok"), _) if get(map, "audio").is_some() => "audio".into(),
        (Some("ok"), _) if get(map, "message").and_then(Value::as_str) == Some("pong") => "pong".into(),
        (Some("error"), _) => format!("error: {}", get(map, "error").and_then(Value::as_str).unwrap_or("?")),
        (None, Some("stream_error")) => {
            format!("stream_error: {}", get(map, "error").and_then(Value::as_str).unwrap_or("?"))
        }
        (None, Some(kind)) => kind.into(),
        _ => format!("unexpected {map:?}"),
    }
}

fn audio(map: &Map) -> Vec<u8> {
    get(map, "audio").and_then(Value::as_slice).expect("audio").to_vec()
}

fn chunk(map: &Map) -> Vec<f32> {
    let bytes = get(map, "chunk").and_then(Value::as_slice).expect("a chunk");
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect()
}

#[test]
fn pipelined_requests_run_as_a_batch_and_reply_in_request_order_with_their_audio_alone() {
    let long = "a long line that keeps the engine busy";
    let mut session = Session::start(vec![
        init(),
        request("generate", long, 30, 1, 2.0),
        request("generate", "hi", 2, 2, 1.5),
        request("generate_streaming", "hello world", 4, 3, 2.5),
        request("generate", "one more line here", 3, 4, 2.0),
    ]);
    assert_eq!(kind(&session.recv()), "ready");
    let first = session.recv();
    let second = session.recv();
    assert_eq!((kind(&first), kind(&second)), ("audio".into(), "audio".into()), "{first:?}");
    assert_eq!(kind(&session.recv()), "stream_start");
    let mut streamed = Vec::new();
    for index in 0..4u64 {
        let frame = session.recv();
        assert_eq!((kind(&frame), get(&frame, "index").and_then(Value::as_u64)), ("stream_chunk".into(), Some(index)));
        streamed.extend(chunk(&frame));
    }
    let end = session.recv();
    assert_eq!((kind(&end), get(&end, "total_chunks").and_then(Value::as_u64)), ("stream_end".into(), Some(4)));
    let fourth = session.recv();
    assert_eq!(kind(&fourth), "audio");
    let peak = session.shutdown.server_info().expect("a running server").peak_batch;
    assert!(peak > 1, "the pipelined requests generated one at a time (peak batch {peak})");
    session.finish();

    let server = alone();
    let wav =
        |text: &str, patches, seed, cfg| server.generate(text, &options(patches, seed, cfg, false)).unwrap().to_wav();
    assert!(audio(&first) == wav(long, 30, 1, 2.0), "the long line's audio differs from its audio alone");
    assert!(audio(&second) == wav("hi", 2, 2, 1.5), "the short line's audio differs from its audio alone");
    let stream_alone = server.generate_streaming("hello world", &options(4, 3, 2.5, true)).unwrap();
    assert_eq!(streamed, stream_alone.collect_samples().unwrap(), "the stream's chunks");
    assert!(audio(&fourth) == wav("one more line here", 3, 4, 2.0), "the last line's audio");
}

#[test]
fn failures_in_the_middle_of_a_pipeline_keep_their_places() {
    let long = "a long line that keeps the engine busy";
    let missing_voice = {
        let mut request = request("generate", "who speaks", 3, 5, 2.0);
        request.push(("audio_prompt".into(), "/nonexistent/voice.wav".into()));
        request
    };
    let mut session = Session::start(vec![
        init(),
        request("generate", long, 30, 1, 2.0),
        // A cfg this large drives the first patch to infinity: a stream that fails once started.
        request("generate_streaming", "hello world", 6, 3, 3e38),
        missing_voice,
        request("generate", "hi", 2, 2, 1.5),
        vec![("type".into(), "ping".into())],
    ]);
    // The failing stream may send a chunk before its error: chunks are left out here.
    let mut kinds = Vec::new();
    while kinds.len() < 7 {
        let kind = kind(&session.recv());
        if kind != "stream_chunk" {
            kinds.push(kind);
        }
    }
    let sent = session.shutdown.server_info().expect("a running server");
    assert_eq!(kinds[..3], ["ready", "audio", "stream_start"]);
    assert!(kinds[3].starts_with("stream_error: ") && kinds[3].contains("non-finite"), "{kinds:?}");
    assert!(kinds[4].starts_with("error: ") && kinds[4].contains("/nonexistent/voice.wav"), "{kinds:?}");
    assert_eq!(kinds[5..], ["audio", "pong"]);
    assert!(sent.peak_batch > 1, "the pipelined requests generated one at a time (peak batch {})", sent.peak_batch);
    session.finish();
}
