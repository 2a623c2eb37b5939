//! The `voxcpm bridge` binary driven over pipes by a client written from the protocol doc
//! (shared/docs/voxcpmex-protocol.md §2): framing with the self-counting length, msgpack maps,
//! one reply per request in order, streams, errors, EOF and SIGTERM.

use std::io::{Read, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use rmpv::Value;

use crate::VOXCPM;
use crate::common::{self, *};

struct Client {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: ChildStdout,
}

impl Client {
    fn start() -> Client {
        let mut child = Command::new(VOXCPM)
            .arg("bridge")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        Client { child, stdin, stdout }
    }

    fn send_raw(&mut self, bytes: &[u8]) {
        self.stdin.as_mut().unwrap().write_all(bytes).unwrap();
        self.stdin.as_mut().unwrap().flush().unwrap();
    }

    fn send(&mut self, entries: Vec<(&str, Value)>) {
        let map = Value::Map(entries.into_iter().map(|(k, v)| (Value::from(k), v)).collect());
        let mut payload = Vec::new();
        rmpv::encode::write_value(&mut payload, &map).unwrap();
        let mut frame = ((payload.len() + 4) as u32).to_be_bytes().to_vec();
        frame.extend(payload);
        self.send_raw(&frame);
    }

    fn init(&mut self) {
        self.init_with(&checkpoint());
    }

    fn init_with(&mut self, model: &str) {
        self.send(vec![("type", "init".into()), ("model", model.into()), ("device", "cuda".into())]);
    }

    /// Reads one frame and returns its map with string keys.
    fn recv(&mut self) -> Vec<(String, Value)> {
        let mut header = [0u8; 4];
        self.stdout.read_exact(&mut header).expect("a frame header");
        let length = u32::from_be_bytes(header) as usize;
        assert!(length >= 4, "length counts its own 4 bytes");
        let mut payload = vec![0u8; length - 4];
        self.stdout.read_exact(&mut payload).unwrap();
        let Value::Map(entries) = rmpv::decode::read_value(&mut &payload[..]).unwrap() else { panic!("not a map") };
        entries.into_iter().map(|(k, v)| (k.as_str().expect("string keys").to_owned(), v)).collect()
    }

    fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Waits for the exit; returns (exit code, stdout rest, stderr).
    fn finish(mut self) -> (Option<i32>, Vec<u8>, Vec<u8>) {
        self.close_stdin();
        let deadline = Instant::now() + Duration::from_secs(60);
        while self.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "the bridge did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut rest = Vec::new();
        self.stdout.read_to_end(&mut rest).unwrap();
        let mut stderr = Vec::new();
        self.child.stderr.take().unwrap().read_to_end(&mut stderr).unwrap();
        (self.child.wait().unwrap().code(), rest, stderr)
    }
}

fn checkpoint() -> String {
    fixtures().join("tiny/checkpoint").display().to_string()
}

fn get<'a>(map: &'a [(String, Value)], key: &str) -> Option<&'a Value> {
    map.iter().find(|(k, _)| k == key).map(|(_, v)| v)
}

fn status(map: &[(String, Value)]) -> Option<&str> {
    get(map, "status").and_then(Value::as_str)
}

fn error(map: &[(String, Value)]) -> String {
    assert_eq!(status(map), Some("error"), "{map:?}");
    get(map, "error").and_then(Value::as_str).expect("an error text").to_owned()
}

fn generate(text: &str, patches: i64, seed: i64) -> Vec<(&'static str, Value)> {
    vec![
        ("type", "generate".into()),
        ("text", text.into()),
        ("min_len", patches.into()),
        ("max_len", patches.into()),
        ("seed", seed.into()),
    ]
}

#[test]
fn a_pipelined_session_gets_one_reply_per_request_in_order() {
    let mut client = Client::start();
    // Everything is sent before the model is ready.
    client.send(vec![("type", "ping".into())]);
    client.init();
    client.send(generate("hello world", 3, 7));
    let mut streaming = generate("hello world", 3, 7);
    streaming[0].1 = "generate_streaming".into();
    client.send(streaming);
    client.send(vec![("type", "ping".into())]);
    client.send(vec![("type", "unload_lora".into())]);
    client.send(vec![("type", "load_lora".into()), ("lora_path", "/no/adapter".into())]);
    client.send(vec![
        ("type", "load_lora".into()),
        ("lora_path", fixtures().join("tiny/lora").display().to_string().into()),
    ]);
    client.send(vec![("type", "dance".into())]);
    client.send(vec![("text", "no type".into())]);
    client.send_raw(&[0, 0, 0, 7, 0xc1, 0xc1, 0xc1]); // 0xc1 is never valid msgpack
    client.send(vec![("type", "generate".into()), ("text", "hi".into()), ("cfg_value", "high".into())]);
    client.send(vec![("type", "generate".into()), ("text", "   ".into())]);
    client.send(vec![("type", "ping".into())]);

    let pong = client.recv();
    assert_eq!((status(&pong), get(&pong, "message").and_then(Value::as_str)), (Some("ok"), Some("pong")));
    let ready = client.recv();
    assert_eq!(status(&ready), Some("ok"));
    assert_eq!(get(&ready, "device").and_then(Value::as_str), Some("cpu"), "cuda falls back to cpu");
    assert_eq!(get(&ready, "sample_rate"), Some(&Value::from(48000)), "an integer sample rate");

    let audio = client.recv();
    assert_eq!(status(&audio), Some("ok"));
    assert!(get(&audio, "device").is_none(), "a generate reply must not look like a ready reply");
    let wav = get(&audio, "audio").and_then(Value::as_slice).expect("audio as bin").to_vec();
    let pcm: Vec<f32> = hound::WavReader::new(std::io::Cursor::new(&wav))
        .unwrap()
        .samples::<i16>()
        .map(|s| s.unwrap() as f32 / 32767.0)
        .collect();
    assert_eq!(pcm.len(), 3 * 7680);
    assert_eq!(get(&audio, "sample_rate"), Some(&Value::from(48000)));
    assert!((get(&audio, "duration").and_then(Value::as_f64).unwrap() - 0.48).abs() < 1e-9);

    let start = client.recv();
    assert!(status(&start).is_none(), "stream frames carry no status");
    assert_eq!(get(&start, "type").and_then(Value::as_str), Some("stream_start"));
    assert_eq!(get(&start, "sample_rate"), Some(&Value::from(48000)));
    let mut streamed = Vec::new();
    for index in 0..3u64 {
        let chunk = client.recv();
        assert_eq!(get(&chunk, "type").and_then(Value::as_str), Some("stream_chunk"));
        assert_eq!(get(&chunk, "index").and_then(Value::as_u64), Some(index));
        assert_eq!(get(&chunk, "length").and_then(Value::as_u64), Some(7680));
        let bytes = get(&chunk, "chunk").and_then(Value::as_slice).unwrap();
        streamed.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())));
    }
    let end = client.recv();
    assert_eq!(get(&end, "type").and_then(Value::as_str), Some("stream_end"));
    assert_eq!(get(&end, "total_chunks").and_then(Value::as_u64), Some(3));
    let quantised: Vec<f32> = streamed.iter().map(|x| (x.clamp(-1.0, 1.0) * 32767.0).round() / 32767.0).collect();
    assert_close("stream vs generate (16-bit)", &quantised, &pcm, 2e-4);

    assert_eq!(status(&client.recv()), Some("ok"), "ping");
    assert_eq!(client.recv(), vec![("status".to_owned(), Value::from("ok"))], "unload_lora");
    assert!(error(&client.recv()).contains("/no/adapter"), "load_lora");
    let lora = client.recv();
    assert_eq!(status(&lora), Some("ok"));
    assert_eq!((get(&lora, "loaded"), get(&lora, "skipped")), (Some(&Value::from(56)), Some(&Value::from(1))));
    assert!(get(&lora, "audio").is_none() && get(&lora, "device").is_none());
    assert_eq!(error(&client.recv()), "Unknown request type: dance");
    assert_eq!(error(&client.recv()), "Unknown request type: None");
    assert!(error(&client.recv()).starts_with("Frame read error"));
    assert!(error(&client.recv()).contains("cfg_value must be a number"));
    assert!(error(&client.recv()).contains("empty"));
    assert_eq!(status(&client.recv()), Some("ok"), "still serving after every error");

    let (code, rest, stderr) = client.finish();
    assert_eq!(code, Some(0), "exit on EOF");
    assert!(rest.is_empty(), "nothing unsolicited");
    assert!(stderr.is_empty(), "nothing on stderr: {}", String::from_utf8_lossy(&stderr));
}

#[test]
fn requests_before_init_and_after_a_failed_init_are_refused_as_the_python_bridge_does() {
    let mut client = Client::start();
    client.send(generate("hello", 2, 1));
    assert_eq!(error(&client.recv()), "Model not initialized");
    let mut streaming = generate("hello", 2, 1);
    streaming[0].1 = "generate_streaming".into();
    client.send(streaming);
    assert_eq!(error(&client.recv()), "Model not initialized", "refused with a status error, not a stream");

    client.send(vec![("type", "init".into()), ("model", "/no/such/model".into())]);
    assert!(error(&client.recv()).contains("/no/such/model"));
    client.send(generate("hello", 2, 1));
    assert_eq!(error(&client.recv()), "Model not initialized");
    let (code, _, stderr) = client.finish();
    assert_eq!(code, Some(0));
    assert!(stderr.is_empty());
}

#[test]
fn eof_in_the_middle_of_a_generation_ends_the_bridge_cleanly() {
    let mut client = Client::start();
    client.init();
    assert_eq!(status(&client.recv()), Some("ok"));
    client.send(generate(&"hello world ".repeat(8), 100, 1));
    std::thread::sleep(Duration::from_millis(50));
    let (code, _, stderr) = client.finish();
    assert_eq!(code, Some(0));
    assert!(stderr.is_empty());
}

#[test]
fn sigterm_stops_the_bridge_idle_or_busy() {
    for busy in [false, true] {
        let mut client = Client::start();
        client.init();
        assert_eq!(status(&client.recv()), Some("ok"));
        if busy {
            let mut streaming = generate(&"hello world ".repeat(8), 100, 1);
            streaming[0].1 = "generate_streaming".into();
            client.send(streaming);
            assert_eq!(get(&client.recv(), "type").and_then(Value::as_str), Some("stream_start"));
        }
        let pid = client.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(30);
        while client.child.try_wait().unwrap().is_none() {
            assert!(Instant::now() < deadline, "SIGTERM did not stop the bridge (busy: {busy})");
            std::thread::sleep(Duration::from_millis(20));
        }
        assert_eq!(client.child.wait().unwrap().code(), Some(0), "busy: {busy}");
    }
}

#[test]
fn a_corrupt_frame_length_gets_an_error_reply_and_a_clean_exit() {
    for header in [[0u8, 0, 0, 2], [0x7f, 0xff, 0xff, 0xff]] {
        let mut client = Client::start();
        client.send_raw(&header);
        assert!(error(&client.recv()).starts_with("Frame read error"));
        let (code, rest, stderr) = client.finish();
        assert_eq!(code, Some(1));
        assert!(rest.is_empty() && stderr.is_empty());
    }
}

#[test]
fn a_log_file_receives_what_stderr_must_not() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("bridge.log");
    let mut child = Command::new(VOXCPM)
        .args(["bridge", "--log"])
        .arg(&log)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(&[0, 0, 0, 5, 0xc1]).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.stderr.is_empty());
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("bridge exits"), "{text}");
}

#[test]
fn garbage_input_gets_frames_or_nothing_and_a_clean_exit() {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for case in 0..12 {
        let mut client = Client::start();
        let len = 1 + (next() % 200) as usize;
        let mut bytes: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if case % 2 == 0 {
            // a plausible small header, so that payload handling is exercised too
            bytes.splice(0..0, ((len as u32 % 40) + 4).to_be_bytes());
        }
        client.send_raw(&bytes);
        let (code, rest, stderr) = client.finish();
        assert!(matches!(code, Some(0) | Some(1)), "case {case}: exit {code:?}");
        assert!(stderr.is_empty());
        let mut frames = &rest[..];
        while !frames.is_empty() {
            let length = u32::from_be_bytes(frames[..4].try_into().unwrap()) as usize;
            let Value::Map(map) = rmpv::decode::read_value(&mut &frames[4..length]).unwrap() else { panic!() };
            assert!(map.iter().any(|(k, v)| k.as_str() == Some("status") && v.as_str() == Some("error")));
            frames = &frames[length..];
        }
    }
}

/// The shim VoxCPMEx users copy over its Python bridge, run the way VoxCPMEx runs it.
fn shim(bin: &str) -> Client {
    let shim = concat!(env!("CARGO_MANIFEST_DIR"), "/../assets/voxcpmex/voxcpmex_bridge.py");
    let mut child = Command::new("python3")
        .args(["-u", shim])
        .env("VOXCPM_BIN", bin)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/setup installs it)");
    let stdin = child.stdin.take();
    let stdout = child.stdout.take().unwrap();
    Client { child, stdin, stdout }
}

#[test]
fn the_voxcpmex_shim_hands_the_pipes_to_the_native_bridge() {
    let mut client = shim(VOXCPM);
    client.init();
    assert_eq!(get(&client.recv(), "sample_rate"), Some(&Value::from(48000)));
    client.send(vec![("type", "ping".into())]);
    assert_eq!(status(&client.recv()), Some("ok"));
    let (code, _, stderr) = client.finish();
    assert_eq!(code, Some(0));
    assert!(stderr.is_empty());

    let mut broken = shim("/nonexistent/voxcpm");
    assert!(error(&broken.recv()).contains("/nonexistent/voxcpm"), "a missing binary is reported as a frame");
    let (code, _, stderr) = broken.finish();
    assert_eq!(code, Some(1));
    assert!(stderr.is_empty());
}

fn audio_bytes(reply: &[(String, Value)]) -> Vec<u8> {
    assert_eq!(status(reply), Some("ok"), "{reply:?}");
    get(reply, "audio").and_then(Value::as_slice).expect("audio as bin").to_vec()
}

#[test]
fn normalize_and_denoise_work_end_to_end_and_load_denoiser_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("voice.wav");
    write_wav_i16(&clip, 22_050, 1, 9000, |i, _| ((i as f32 * 0.05).sin() * 9000.0) as i16);
    let with = |mut request: Vec<(&'static str, Value)>, extra: Vec<(&'static str, Value)>| {
        request.extend(extra);
        request
    };
    let voice = || ("audio_prompt", Value::from(clip.display().to_string()));

    let mut client = Client::start();
    let init = |denoiser: bool| {
        vec![
            ("type", Value::from("init")),
            ("model", checkpoint().into()),
            ("device", "cpu".into()),
            ("load_denoiser", denoiser.into()),
        ]
    };
    client.send(init(true));
    client.send(with(generate("I have 2 cats.", 2, 4), vec![("normalize", true.into())]));
    client.send(generate("I have two cats.", 2, 4));
    client.send(with(generate("😀", 2, 4), vec![("normalize", true.into())]));
    client.send(vec![("type", "generate".into()), ("text", Value::Binary(vec![b'h', 0xff]))]);
    client.send(with(generate("hello world", 2, 4), vec![voice()]));
    client.send(with(generate("hello world", 2, 4), vec![voice(), ("denoise", true.into())]));
    client.send(init(false));
    client.send(with(generate("hello world", 2, 4), vec![voice(), ("denoise", true.into())]));

    assert_eq!(status(&client.recv()), Some("ok"), "init with the denoiser");
    assert_eq!(audio_bytes(&client.recv()), audio_bytes(&client.recv()), "normalize says 2 as two");
    assert!(error(&client.recv()).contains("normalisation"), "nothing left to speak");
    assert!(error(&client.recv()).contains("not valid UTF-8"));
    let plain = audio_bytes(&client.recv());
    assert_ne!(audio_bytes(&client.recv()), plain, "denoised clip, other voice prompt");
    assert_eq!(status(&client.recv()), Some("ok"), "init without the denoiser");
    assert_eq!(audio_bytes(&client.recv()), plain, "denoise without a denoiser is ignored, as officially");
    let (code, _, stderr) = client.finish();
    assert_eq!(code, Some(0));
    assert!(stderr.is_empty());
}

/// A model that computes NaN: `generate` gets an error reply naming the cause, a stream ends
/// with `stream_error` before any chunk, and the bridge goes on serving.
#[test]
fn non_finite_audio_is_an_error_reply_not_audio() {
    let (_tmp, dir) = common::damage::scratch_checkpoint();
    common::damage::poison_tensor(&dir, "lm_to_dit_proj.weight");
    let mut client = Client::start();
    client.send(vec![("type", "init".into()), ("model", dir.display().to_string().into())]);
    assert_eq!(status(&client.recv()), Some("ok"));
    client.send(generate("hello", 3, 1));
    assert!(error(&client.recv()).contains("non-finite values (NaN/Inf)"));
    let mut streaming = generate("hello", 3, 1);
    streaming[0].1 = "generate_streaming".into();
    client.send(streaming);
    let started = client.recv();
    assert_eq!(get(&started, "type").and_then(Value::as_str), Some("stream_start"), "{started:?}");
    let ended = client.recv();
    assert_eq!(get(&ended, "type").and_then(Value::as_str), Some("stream_error"), "{ended:?}");
    client.send(vec![("type", "ping".into())]);
    assert_eq!(status(&client.recv()), Some("ok"));
    let (code, ..) = client.finish();
    assert_eq!(code, Some(0));
}

/// v1 checkpoints (16 kHz `v1_tiny`, 44.1 kHz `v1_odd`): the ready reply, each generate reply
/// and its WAV, and `stream_start` carry the model's own rate, with the Python bridge's fields
/// and no others; a reference clip is an error reply naming the option, and the bridge goes on.
#[test]
fn a_v1_model_answers_at_its_own_rate() {
    for (config, rate, patch_samples) in [("v1_tiny", 16_000u32, 1280usize), ("v1_odd", 44_100, 126)] {
        let mut client = Client::start();
        client.init_with(&fixtures().join(config).join("checkpoint").display().to_string());
        let ready = client.recv();
        let keys: Vec<&str> = ready.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["status", "device", "sample_rate"], "{config}: the Python bridge's ready reply");
        assert_eq!(get(&ready, "sample_rate"), Some(&Value::from(rate)), "{config}");

        client.send(generate("hello world", 3, 7));
        let audio = client.recv();
        let keys: Vec<&str> = audio.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["status", "audio", "sample_rate", "duration"], "{config}");
        assert_eq!(get(&audio, "sample_rate"), Some(&Value::from(rate)), "{config}");
        let wav = audio_bytes(&audio);
        let reader = hound::WavReader::new(std::io::Cursor::new(&wav)).unwrap();
        assert_eq!((reader.spec().sample_rate, reader.len() as usize), (rate, 3 * patch_samples), "{config}");
        let duration = get(&audio, "duration").and_then(Value::as_f64).unwrap();
        assert!((duration - (3 * patch_samples) as f64 / rate as f64).abs() < 1e-9, "{config}: {duration}");

        let mut streaming = generate("hello world", 3, 7);
        streaming[0].1 = "generate_streaming".into();
        client.send(streaming);
        let start = client.recv();
        let keys: Vec<&str> = start.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["type", "sample_rate"], "{config}: the Python bridge's stream_start");
        assert_eq!(get(&start, "sample_rate"), Some(&Value::from(rate)), "{config}");
        for index in 0..3u64 {
            let chunk = client.recv();
            assert_eq!(get(&chunk, "index").and_then(Value::as_u64), Some(index), "{config}");
            assert_eq!(get(&chunk, "length").and_then(Value::as_u64), Some(patch_samples as u64), "{config}");
        }
        assert_eq!(get(&client.recv(), "type").and_then(Value::as_str), Some("stream_end"), "{config}");

        let mut cloning = generate("hello", 2, 1);
        cloning.push(("audio_prompt", "/some/voice.wav".into()));
        client.send(cloning);
        let refused = error(&client.recv());
        assert!(refused.contains("audio_prompt") && refused.contains("needs a VoxCPM2 model"), "{refused}");
        client.send(vec![("type", "ping".into())]);
        assert_eq!(status(&client.recv()), Some("ok"), "{config}: still serving");
        let (code, rest, stderr) = client.finish();
        assert_eq!(code, Some(0));
        assert!(rest.is_empty() && stderr.is_empty(), "{}", String::from_utf8_lossy(&stderr));
    }
}
