//! Continuous batching in the runtime `Server` on the tiny fixture checkpoint: requests that
//! run together give the audio they give alone, leave the batch without disturbing the others
//! (dropped, failed), respect `max_batch`, and a late request joins within two patches.
//!
//! Deterministic without timing: a "holder" request's progress callback runs on the engine
//! thread between its patches, so while it waits there, requests sent meanwhile are queued for
//! the next patch boundary, and what it observes is ordered with the batch's steps.

use std::ops::ControlFlow;
use std::sync::mpsc::{Sender, channel};
use std::sync::{Arc, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::common::*;
use voxcpm_engine::Error;
use voxcpm_engine::pipeline::SpeechOptions;
use voxcpm_engine::runtime::{GenerateOptions, Server, ServerOptions, Speech, SpeechStream};

const WAIT: Duration = Duration::from_secs(60);

fn server(max_batch: usize) -> Arc<Server> {
    let options =
        ServerOptions { max_batch, ..ServerOptions::new(fixtures().join("tiny/checkpoint").display().to_string()) };
    let server = Server::start(options).unwrap();
    server.await_ready(WAIT).unwrap();
    Arc::new(server)
}

/// `patches` long exactly, its own seed, cfg and timesteps.
fn request(patches: usize, seed: u64, cfg_value: f32, timesteps: usize) -> GenerateOptions {
    GenerateOptions {
        speech: SpeechOptions {
            min_len: patches,
            max_len: patches,
            cfg_value,
            inference_timesteps: timesteps,
            ..SpeechOptions::default()
        },
        seed: Some(seed),
        ..GenerateOptions::default()
    }
}

/// Texts of different lengths, so the requests' prefixes (and KV caches) differ.
const TEXTS: [&str; 4] = ["hello world", "a longer line of text to say", "hi", "one more line here"];

fn options_of(i: usize) -> GenerateOptions {
    request(3 + i % 3, 10 + i as u64, 1.5 + i as f32 * 0.5, 2 + i % 3)
}

/// A generate on another thread whose progress callback runs `hook(patch)` on the engine
/// thread; it returns once the engine is held inside its first patch, until `go` is sent.
fn holder(
    server: &Arc<Server>,
    options: GenerateOptions,
    mut hook: impl FnMut(usize) + Send + 'static,
) -> (JoinHandle<voxcpm_engine::Result<Speech>>, Sender<()>) {
    let (started, wait_started) = channel();
    let (go, wait_go) = channel::<()>();
    let server = Arc::clone(server);
    let handle = std::thread::spawn(move || {
        server.generate_with_progress("holding the engine", &options, move |p| {
            if p.patches == 1 {
                started.send(()).unwrap();
                wait_go.recv().unwrap();
            }
            hook(p.patches);
            ControlFlow::Continue(())
        })
    });
    wait_started.recv().unwrap();
    (handle, go)
}

/// Every request's audio from a server that serves one at a time: streams for odd `i`.
fn served_alone(count: usize) -> Vec<Vec<f32>> {
    let server = server(1);
    (0..count)
        .map(|i| match i % 2 {
            0 => server.generate(TEXTS[i % 4], &options_of(i)).unwrap().samples,
            _ => server.generate_streaming(TEXTS[i % 4], &options_of(i)).unwrap().collect_samples().unwrap(),
        })
        .collect()
}

/// Sends `count` requests while the engine is held: generates (each on its thread) for even
/// `i`, streams for odd `i`.
enum Pending {
    Whole(JoinHandle<voxcpm_engine::Result<Speech>>),
    Stream(SpeechStream),
}

impl Pending {
    fn samples(self) -> voxcpm_engine::Result<Vec<f32>> {
        match self {
            Pending::Whole(handle) => handle.join().unwrap().map(|speech| speech.samples),
            Pending::Stream(stream) => stream.collect_samples(),
        }
    }
}

fn send_all(server: &Arc<Server>, count: usize) -> Vec<Pending> {
    (0..count)
        .map(|i| match i % 2 {
            0 => {
                let server = Arc::clone(server);
                Pending::Whole(std::thread::spawn(move || server.generate(TEXTS[i % 4], &options_of(i))))
            }
            _ => Pending::Stream(server.generate_streaming(TEXTS[i % 4], &options_of(i)).unwrap()),
        })
        .collect()
}

#[test]
fn requests_batched_together_give_the_audio_they_give_alone() {
    let alone = served_alone(6);
    let holder_alone = server(1).generate("holding the engine", &request(8, 1, 2.0, 3)).unwrap().samples;
    let server = server(8);
    let (held, go) = holder(&server, request(8, 1, 2.0, 3), |_| {});
    // Streams are queued once sent; a generate is queued once its thread has run. Either way
    // every request here joins a batch with others: the engine is held.
    let pending = send_all(&server, 6);
    while server.info().stream_count < 3 {
        std::thread::yield_now();
    }
    go.send(()).unwrap();
    for (i, (pending, expected)) in pending.into_iter().zip(alone).enumerate() {
        assert_eq!(pending.samples().unwrap(), expected, "request {i}: batched audio differs from alone");
    }
    assert_eq!(held.join().unwrap().unwrap().samples, holder_alone, "the holder's audio");
    assert!(server.info().peak_batch >= 4, "the streams and the holder ran together: {:?}", server.info().peak_batch);
}

#[test]
fn max_batch_is_respected() {
    let one = server(1);
    let alone: Vec<Vec<f32>> = (0..4)
        .map(|i| one.generate_streaming(TEXTS[i % 4], &options_of(i)).unwrap().collect_samples().unwrap())
        .collect();
    let server = server(2);
    let (held, go) = holder(&server, request(4, 1, 2.0, 3), |_| {});
    let pending: Vec<SpeechStream> =
        (0..4).map(|i| server.generate_streaming(TEXTS[i % 4], &options_of(i)).unwrap()).collect();
    go.send(()).unwrap();
    for (i, (stream, expected)) in pending.into_iter().zip(alone).enumerate() {
        assert_eq!(stream.collect_samples().unwrap(), expected, "request {i}");
    }
    held.join().unwrap().unwrap();
    assert_eq!(server.info().peak_batch, 2, "never more than max_batch, and it was reached");
}

#[test]
fn max_batch_zero_is_refused_by_name() {
    let options = ServerOptions { max_batch: 0, ..ServerOptions::new("unused") };
    let error = Server::start(options).unwrap_err();
    assert!(error.to_string().contains("max_batch"), "{error}");
}

#[test]
fn a_dropped_stream_or_a_failing_request_leaves_the_others_intact() {
    let alone = served_alone(4);
    let server = server(8);
    // The stream to drop is long; the holder drops it from the engine thread after its 3rd
    // patch, so it has made at most 3 patches when it is cancelled.
    let victim: Arc<Mutex<Option<SpeechStream>>> = Arc::new(Mutex::new(None));
    let slot = Arc::clone(&victim);
    let (held, go) = holder(&server, request(6, 1, 2.0, 3), move |patch| {
        if patch == 3 {
            slot.lock().unwrap().take();
        }
    });
    let pending = send_all(&server, 4);
    *victim.lock().unwrap() = Some(server.generate_streaming("a long line", &request(40, 5, 2.0, 3)).unwrap());
    // A cfg this large drives its first patch to infinity: that request alone must fail.
    let failing = server.generate_streaming("hello world", &request(6, 3, 3e38, 3)).unwrap();
    while server.info().stream_count < 4 {
        std::thread::yield_now();
    }
    go.send(()).unwrap();
    for (i, (pending, expected)) in pending.into_iter().zip(alone).enumerate() {
        assert_eq!(pending.samples().unwrap(), expected, "request {i} beside a dropped and a failing one");
    }
    held.join().unwrap().unwrap();
    let error = failing.collect_samples().unwrap_err();
    assert!(matches!(error, Error::NonFinite { .. }), "the failing request: {error}");
    assert!(victim.lock().unwrap().is_none(), "the victim was dropped");
    let made: u64 = 6 + (0..4).map(|i| options_of(i).speech.max_len as u64).sum::<u64>();
    let patches = server.info().patches_generated;
    assert!(
        (made..=made + 3).contains(&patches),
        "{patches} patches: the dropped stream went on after it was dropped ({made} made by the others)"
    );
    assert_eq!(server.info().stream_count, 0);
}

/// The holder's patch when the late stream was sent, its patch when the late stream's first
/// chunk was there, and the late stream.
type LateRecord = (Option<usize>, Option<usize>, Option<SpeechStream>);

#[test]
fn a_request_arriving_mid_batch_gets_its_first_chunk_within_two_patches() {
    let server = server(8);
    let weak: Weak<Server> = Arc::downgrade(&server);
    let seen: Arc<Mutex<LateRecord>> = Arc::new(Mutex::new((None, None, None)));
    let record = Arc::clone(&seen);
    let (held, go) = holder(&server, request(20, 1, 2.0, 3), move |patch| {
        let (sent, first_seen, late) = &mut *record.lock().unwrap();
        if patch == 3 {
            let server = weak.upgrade().expect("the test holds the server");
            *late = Some(server.generate_streaming("late", &request(4, 2, 2.0, 3)).unwrap());
            *sent = Some(patch);
        } else if let Some(stream) = late.as_mut()
            && first_seen.is_none()
            && matches!(stream.next_chunk_timeout(Duration::ZERO), Ok(Some(_)))
        {
            *first_seen = Some(patch);
        }
    });
    go.send(()).unwrap();
    held.join().unwrap().unwrap();
    let (sent, first_seen, _) = *seen.lock().unwrap();
    let (sent, first_seen) =
        (sent.unwrap(), first_seen.expect("the late stream's first chunk came while the holder ran"));
    // Its chunk is sent after the holder's patch of the same step, so the holder sees it one
    // patch later: the step that made it was the holder's patch `first_seen - 1`.
    let waited = first_seen - 1 - sent;
    assert!(waited <= 2, "the late request waited {waited} patches of the batch after its prefill");
}
