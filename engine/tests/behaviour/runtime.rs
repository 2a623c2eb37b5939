//! The runtime `Server` on the tiny fixture checkpoint: every API call, ordering, stream
//! isolation, cancellation, stop, and bad requests that leave the server serving.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Sender, channel};
use std::time::Duration;

use crate::common::*;
use voxcpm_engine::Error;
use voxcpm_engine::config::Architecture;
use voxcpm_engine::pipeline::SpeechOptions;
use voxcpm_engine::runtime::{GenerateOptions, Server, ServerOptions, Speech, Status};

const WAIT: Duration = Duration::from_secs(60);

fn checkpoint() -> String {
    fixtures().join("tiny/checkpoint").display().to_string()
}

fn ready_server() -> Server {
    let server = Server::start(ServerOptions::new(checkpoint())).unwrap();
    server.await_ready(WAIT).unwrap();
    server
}

/// Fixed length, fixed seed: fast and reproducible.
pub(super) fn options(patches: usize, seed: u64) -> GenerateOptions {
    GenerateOptions {
        speech: SpeechOptions { min_len: patches, max_len: patches, ..SpeechOptions::default() },
        seed: Some(seed),
        ..GenerateOptions::default()
    }
}

pub(super) fn write_wav(path: &Path, rate: u32, channels: u16, frames: usize) {
    write_wav_i16(path, rate, channels, frames, |frame, channel| {
        let i = frame * channels as usize + channel as usize;
        ((i as f32 * 0.05).sin() * 9000.0) as i16
    });
}

/// Starts a generate of `patches` on another thread and returns once the engine is held
/// inside its first patch; sending on the returned channel lets it go on.
fn held_at_first_patch(
    server: &Arc<Server>,
    patches: usize,
) -> (std::thread::JoinHandle<voxcpm_engine::Result<Speech>>, Sender<()>) {
    let (started, wait_started) = channel();
    let (go, wait_go) = channel::<()>();
    let server = Arc::clone(server);
    let handle = std::thread::spawn(move || {
        server.generate_with_progress("hello world", &options(patches, 1), move |p| {
            if p.patches == 1 {
                started.send(()).unwrap();
                wait_go.recv().unwrap();
            }
            std::ops::ControlFlow::Continue(())
        })
    });
    wait_started.recv().unwrap();
    (handle, go)
}

fn drain(stream: &mut voxcpm_engine::runtime::SpeechStream) -> Vec<Vec<f32>> {
    std::iter::from_fn(|| stream.next_chunk().unwrap()).collect()
}

#[test]
fn info_reports_the_loaded_model_and_seeded_audio_is_reproducible() {
    let server = ready_server();
    let info = server.info();
    assert_eq!(info.status, Status::Ready);
    assert_eq!(info.device.as_deref(), Some("cpu"));
    assert_eq!(info.sample_rate, Some(48_000));
    assert_eq!(info.architecture, Some(Architecture::V2));
    assert_eq!(info.architecture.unwrap().to_string(), "voxcpm2", "the official name");
    assert_eq!(info.model, checkpoint());
    assert_eq!(info.stream_count, 0);

    let a = server.generate("hello world", &options(3, 7)).unwrap();
    let b = server.generate("hello world", &options(3, 7)).unwrap();
    let c = server.generate("hello world", &options(3, 8)).unwrap();
    assert_eq!(a, b, "same seed, same audio");
    assert_ne!(a.samples, c.samples, "another seed, other audio");
    assert_eq!((a.samples.len(), a.seed, a.sample_rate), (3 * 7680, 7, 48_000));
    assert!((a.duration_secs() - 0.48).abs() < 1e-9);

    let wav = a.to_wav();
    let reader = hound::WavReader::new(std::io::Cursor::new(&wav)).unwrap();
    let spec = reader.spec();
    assert_eq!((spec.channels, spec.sample_rate, spec.bits_per_sample), (1, 48_000, 16));
    assert_eq!(reader.len() as usize, a.samples.len());

    // No seed: a fresh one is drawn and reported, and reusing it reproduces the audio.
    let fresh = server.generate("hello world", &GenerateOptions { seed: None, ..options(3, 0) }).unwrap();
    let again = server.generate("hello world", &options(3, fresh.seed)).unwrap();
    assert_eq!(fresh.samples, again.samples);
}

#[test]
fn requests_made_while_loading_are_served_once_ready() {
    let server = Server::start(ServerOptions::new(checkpoint())).unwrap();
    let speech = server.generate("hello world", &options(2, 1)).unwrap();
    assert_eq!(speech.samples.len(), 2 * 7680);
    assert_eq!(server.info().status, Status::Ready);
}

#[test]
fn a_stream_gives_one_patch_per_chunk_equal_to_the_offline_audio() {
    let server = ready_server();
    let offline = server.generate("hello world", &options(4, 3)).unwrap();
    let mut stream = server.generate_streaming("hello world", &options(4, 3)).unwrap();
    let chunks = drain(&mut stream);
    assert_eq!(stream.sample_rate(), Some(48_000));
    assert_eq!(chunks.len(), 4);
    assert!(chunks.iter().all(|c| c.len() == 7680), "160 ms chunks");
    assert_close("stream vs offline", &chunks.concat(), &offline.samples, 1e-5);
    assert_eq!(stream.next_chunk().unwrap(), None, "end of stream stays ended");
}

#[test]
fn collect_returns_a_float_wav_of_the_chunks_not_yet_taken() {
    let server = ready_server();
    let mut stream = server.generate_streaming("hello world", &options(3, 5)).unwrap();
    let first = stream.next_chunk().unwrap().unwrap();
    let wav = stream.collect().unwrap();
    assert_eq!(&wav[20..22], &3u16.to_le_bytes(), "IEEE float format tag");
    let rest: Vec<f32> =
        hound::WavReader::new(std::io::Cursor::new(&wav)).unwrap().samples::<f32>().map(Result::unwrap).collect();
    let offline = server.generate("hello world", &options(3, 5)).unwrap().samples;
    assert_eq!(rest.len(), 2 * 7680);
    assert_close("first chunk", &first, &offline[..7680], 1e-5);
    assert_close("collected rest", &rest, &offline[7680..], 1e-5);
}

#[test]
fn streams_in_flight_never_mix_and_a_generate_waits_its_turn() {
    let server = Arc::new(ready_server());
    let expected_a = server.generate("hello world", &options(4, 11)).unwrap().samples;
    let expected_b = server.generate("今天天气很好", &options(3, 12)).unwrap().samples;
    let expected_c = server.generate("good morning", &options(2, 13)).unwrap().samples;

    let mut a = server.generate_streaming("hello world", &options(4, 11)).unwrap();
    let mut b = server.generate_streaming("今天天气很好", &options(3, 12)).unwrap();
    let generator = {
        let server = Arc::clone(&server);
        std::thread::spawn(move || server.generate("good morning", &options(2, 13)).unwrap().samples)
    };
    assert!(server.info().stream_count >= 1);
    // Read the second stream first, then interleave.
    let mut got_b = vec![b.next_chunk().unwrap().unwrap()];
    let mut got_a = Vec::new();
    while let Some(chunk) = a.next_chunk().unwrap() {
        got_a.push(chunk);
        if let Some(chunk) = b.next_chunk().unwrap() {
            got_b.push(chunk);
        }
    }
    got_b.extend(drain(&mut b));
    assert_close("stream a", &got_a.concat(), &expected_a, 1e-5);
    assert_close("stream b", &got_b.concat(), &expected_b, 1e-5);
    assert_eq!(generator.join().unwrap(), expected_c, "the generate queued between the streams");
    assert_eq!(server.info().stream_count, 0);
}

#[test]
fn dropping_a_stream_cancels_its_generation() {
    let server = ready_server();
    // Ask for 100 patches (the tiny model's context holds 128 positions), take two, drop.
    let text = "hello world ".repeat(8);
    let mut stream = server.generate_streaming(&text, &options(100, 1)).unwrap();
    stream.next_chunk().unwrap().unwrap();
    stream.next_chunk().unwrap().unwrap();
    drop(stream);
    let after = server.generate("hello world", &options(2, 1)).unwrap();
    assert_eq!(after.samples.len(), 2 * 7680);
    let info = server.info();
    assert_eq!(info.stream_count, 0);
    assert!(info.patches_generated < 50, "the dropped stream went on: {} patches", info.patches_generated);

    // A stream dropped while still queued never runs.
    let server = Arc::new(server);
    let (blocker, go) = held_at_first_patch(&server, 2);
    let before = server.info().patches_generated;
    drop(server.generate_streaming("hello world", &options(5, 1)).unwrap());
    go.send(()).unwrap();
    blocker.join().unwrap().unwrap();
    server.generate("hello world", &options(1, 1)).unwrap();
    assert_eq!(server.info().patches_generated, before + 1 + 1, "only the blocker's last patch and the generate ran");
}

#[test]
fn a_progress_callback_can_cancel_its_generate() {
    let server = ready_server();
    let result = server.generate_with_progress("hello world", &options(20, 1), |p| {
        if p.patches == 3 { std::ops::ControlFlow::Break(()) } else { std::ops::ControlFlow::Continue(()) }
    });
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    assert_eq!(server.info().patches_generated, 3);
    assert_eq!(server.generate("hello world", &options(2, 1)).unwrap().samples.len(), 2 * 7680);
}

#[test]
fn stop_cancels_the_running_generation_and_answers_every_pending_request() {
    let server = Arc::new(ready_server());
    let (running, go) = held_at_first_patch(&server, 20);
    let queued = {
        let server = Arc::clone(&server);
        std::thread::spawn(move || server.generate("hello world", &options(2, 1)))
    };
    let mut stream = server.generate_streaming("hello world", &options(2, 1)).unwrap();
    let stopper = {
        let server = Arc::clone(&server);
        std::thread::spawn(move || server.stop())
    };
    while server.info().status != Status::Stopped {
        std::thread::yield_now();
    }
    go.send(()).unwrap();
    stopper.join().unwrap();

    assert!(matches!(running.join().unwrap(), Err(Error::Stopped)));
    assert!(matches!(queued.join().unwrap(), Err(Error::Stopped)));
    assert!(matches!(stream.next_chunk(), Err(Error::Stopped)));
    assert!(matches!(server.generate("hello world", &options(2, 1)), Err(Error::Stopped)));
    assert!(matches!(server.generate_streaming("hello world", &options(2, 1)), Err(Error::Stopped)));
    assert!(matches!(server.await_ready(WAIT), Err(Error::Stopped)));
    server.stop(); // twice is harmless
}

#[test]
fn bad_requests_get_a_clear_error_and_the_server_keeps_serving() {
    let server = ready_server();
    let dir = tempfile::tempdir().unwrap();
    let corrupt = dir.path().join("corrupt.wav");
    std::fs::write(&corrupt, b"RIFF\x10\x00\x00\x00WAVEnot really").unwrap();
    let tiny_clip = dir.path().join("tiny.wav");
    write_wav(&tiny_clip, 16_000, 1, 100); // shorter than one 640-sample frame
    let good_clip = dir.path().join("voice.wav");
    write_wav(&good_clip, 44_100, 2, 8000);
    let missing = dir.path().join("missing.wav");

    let speech = |f: fn(&mut SpeechOptions)| {
        let mut o = options(2, 1);
        f(&mut o.speech);
        o
    };
    let prompt = |path: &PathBuf, text: Option<&str>| GenerateOptions {
        prompt_wav_path: Some(path.clone()),
        prompt_text: text.map(str::to_owned),
        ..options(2, 1)
    };
    let cases: Vec<(&str, &str, GenerateOptions, &str)> = vec![
        ("empty text", "", options(2, 1), "empty"),
        ("whitespace text", " \n\t ", options(2, 1), "empty"),
        ("missing wav", "hi", GenerateOptions { audio_prompt: Some(missing.clone()), ..options(2, 1) }, "missing.wav"),
        ("corrupt wav", "hi", GenerateOptions { audio_prompt: Some(corrupt.clone()), ..options(2, 1) }, "corrupt.wav"),
        ("short prompt", "hi", prompt(&tiny_clip, Some("x")), "shorter than one latent frame"),
        ("prompt without text", "hi", prompt(&good_clip, None), "prompt_text"),
        (
            "text without prompt",
            "hi",
            GenerateOptions { prompt_text: Some("x".into()), ..options(2, 1) },
            "prompt_wav_path",
        ),
        ("zero timesteps", "hi", speech(|s| s.inference_timesteps = 0), "inference_timesteps"),
        ("NaN cfg", "hi", speech(|s| s.cfg_value = f32::NAN), "cfg_value"),
        ("min_len > max_len", "hi", speech(|s| s.min_len = 9), "min_len"),
        ("normalized to nothing", "😀 😀", GenerateOptions { normalize: true, ..options(2, 1) }, "normalisation"),
    ];
    for (what, text, opts, needle) in &cases {
        let err = server.generate(text, opts).unwrap_err().to_string();
        assert!(err.contains(needle), "{what}: {err:?} should mention {needle:?}");
        let mut stream = server.generate_streaming(text, opts).unwrap();
        let err = stream.next_chunk().unwrap_err().to_string();
        assert!(err.contains(needle), "{what} (streaming): {err:?} should mention {needle:?}");
    }
    let cloned = server.generate("hello world", &GenerateOptions { audio_prompt: Some(good_clip), ..options(2, 1) });
    assert_eq!(cloned.unwrap().samples.len(), 2 * 7680, "still serving, and a 44.1 kHz stereo voice works");
}

#[test]
fn a_model_that_fails_to_load_is_reported_and_every_request_says_why() {
    let server = Server::start(ServerOptions::new("/no/such/checkpoint")).unwrap();
    let err = server.await_ready(WAIT).unwrap_err().to_string();
    assert!(err.contains("/no/such/checkpoint"), "{err}");
    assert!(matches!(server.info().status, Status::Failed(_)));
    let err = server.generate("hello", &options(2, 1)).unwrap_err().to_string();
    assert!(err.contains("/no/such/checkpoint"), "{err}");
    let mut stream = server.generate_streaming("hello", &options(2, 1)).unwrap();
    assert!(stream.next_chunk().is_err());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("config.json"), "{ not json").unwrap();
    let server = Server::start(ServerOptions::new(dir.path().display().to_string())).unwrap();
    let err = server.await_ready(WAIT).unwrap_err().to_string();
    assert!(err.contains("config.json"), "{err}");

    let bad_device = ServerOptions { device: "tpu".into(), ..ServerOptions::new(checkpoint()) };
    assert!(Server::start(bad_device).unwrap_err().to_string().contains("tpu"));
}

#[test]
fn a_gpu_request_falls_back_to_cpu_and_info_says_so() {
    let server = Server::start(ServerOptions { device: "cuda".into(), ..ServerOptions::new(checkpoint()) }).unwrap();
    server.await_ready(WAIT).unwrap();
    let info = server.info();
    if info.device.as_deref() == Some("cpu") {
        assert!(info.device_note.is_some(), "a fallback names its reason");
    }
    assert_eq!(server.generate("hello world", &options(1, 1)).unwrap().samples.len(), 7680);
}

#[test]
fn lora_adapters_load_change_the_voice_and_unload_exactly() {
    let server = ready_server();
    let base = server.generate("hello world", &options(2, 1)).unwrap();
    assert_eq!(server.load_lora(&fixtures().join("tiny/lora")).unwrap(), (56, 1));
    let adapted = server.generate("hello world", &options(2, 1)).unwrap();
    assert_ne!(adapted.samples, base.samples);
    server.unload_lora().unwrap();
    assert_eq!(server.generate("hello world", &options(2, 1)).unwrap(), base, "bit for bit");

    let err = server.load_lora(Path::new("/some/adapter")).unwrap_err().to_string();
    assert!(err.contains("/some/adapter"), "{err}");
    server.generate("hello world", &options(1, 1)).unwrap();
}

#[test]
fn a_chunk_wait_can_time_out_and_the_stream_stays_usable() {
    let server = Arc::new(ready_server());
    let expected = server.generate("hello world", &options(2, 4)).unwrap().samples;
    let (blocker, go) = held_at_first_patch(&server, 2);
    let mut stream = server.generate_streaming("hello world", &options(2, 4)).unwrap();
    let waited = Duration::from_millis(50);
    assert!(matches!(stream.next_chunk_timeout(waited), Err(Error::Timeout(d)) if d == waited));
    go.send(()).unwrap();
    blocker.join().unwrap().unwrap();
    assert_close("collected samples", &stream.collect_samples().unwrap(), &expected, 1e-5);
}

#[test]
fn normalize_rewrites_the_target_text_only_in_generate_and_streaming() {
    let server = ready_server();
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("prompt.wav");
    write_wav(&clip, 16_000, 1, 4000);
    let with_prompt = |text: &str| GenerateOptions {
        prompt_wav_path: Some(clip.clone()),
        prompt_text: Some(text.into()),
        ..options(2, 3)
    };
    let normalized = GenerateOptions { normalize: true, ..with_prompt("Take 2.") };
    let spelled = server.generate("I have two cats.", &with_prompt("Take 2.")).unwrap();
    assert_eq!(server.generate("I have 2 cats.", &normalized).unwrap().samples, spelled.samples);
    let digits = server.generate("I have 2 cats.", &with_prompt("Take 2.")).unwrap();
    assert_ne!(digits.samples, spelled.samples, "without normalize the digit is read as it is");
    // The prompt's transcript is left alone: normalising it would change the audio.
    let prompt_spelled = server.generate("I have two cats.", &with_prompt("Take two.")).unwrap();
    assert_ne!(prompt_spelled.samples, spelled.samples);
    let mut stream = server.generate_streaming("I have 2 cats.", &normalized).unwrap();
    let streamed = drain(&mut stream).concat();
    let mut reference = server.generate_streaming("I have two cats.", &with_prompt("Take 2.")).unwrap();
    assert_eq!(streamed, drain(&mut reference).concat());
}

#[test]
fn denoise_cleans_clips_only_when_the_server_has_a_denoiser() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("voice.wav");
    write_wav(&clip, 22_050, 1, 9000);
    let plain = GenerateOptions { audio_prompt: Some(clip.clone()), ..options(2, 5) };
    let denoised = GenerateOptions { denoise: true, ..plain.clone() };

    let without = ready_server();
    assert!(!without.info().denoiser);
    let as_is = without.generate("hello world", &plain).unwrap();
    assert_eq!(without.generate("hello world", &denoised).unwrap().samples, as_is.samples, "ignored, as officially");

    let server = Server::start(ServerOptions { load_denoiser: true, ..ServerOptions::new(checkpoint()) }).unwrap();
    server.await_ready(WAIT).unwrap();
    assert!(server.info().denoiser);
    assert_eq!(server.generate("hello world", &plain).unwrap().samples, as_is.samples, "denoise is per request");
    let cleaned = server.generate("hello world", &denoised).unwrap();
    assert_ne!(cleaned.samples, as_is.samples);
    let mut stream = server.generate_streaming("hello world", &denoised).unwrap();
    assert_eq!(drain(&mut stream).len(), 2);
}
