//! The lock-free channels between the worker and the audio thread (all single producer,
//! single consumer `rtrb` rings, allocated before the first block).
//!
//! Renders cross as `Arc<[f32]>` so a trigger can start one at any sample without copying.
//! The audio thread never frees one: a clip it lets go of is sent back ([`ToWorker::Retired`])
//! and dropped on the worker. Live speech crosses as samples in the live sample ring, each run
//! of them announced by a [`LiveSegment`] pushed after the samples, so the audio thread always
//! finds a segment's samples already there.
//!
//! Renders and live speech come at the model's rate. The worker builds the voices' resamplers
//! from that rate to the host's (which it reads from [`AudioEnds::host_rate`]) and sends them
//! ahead of the first render or live samples at that rate; the audio thread never builds or
//! frees one.

use std::sync::Arc;
use std::sync::atomic::AtomicU32;
use std::time::Duration;

use rtrb::{Consumer, Producer, RingBuffer};
use voxcpm_engine::resample::StreamResampler;

use crate::project::{MAX_LINES, MAX_TAKES};

/// A line's render: mono, at the rate the model generated it at.
#[derive(Debug, Clone, PartialEq)]
pub struct Clip {
    pub samples: Arc<[f32]>,
    pub sample_rate: u32,
}

impl Clip {
    pub fn new(samples: impl Into<Arc<[f32]>>, sample_rate: u32) -> Clip {
        Clip { samples: samples.into(), sample_rate }
    }

    pub fn seconds(&self) -> f32 {
        self.samples.len() as f32 / self.sample_rate as f32
    }
}

/// Worker → audio thread.
pub enum ToAudio {
    /// A line's render is ready, or (`None`) the line changed and its old render must not play.
    Clip { line: usize, clip: Option<Clip> },
    /// One take of a line is rendered, or (`None`) withdrawn: what the editor auditions.
    Take { line: usize, take: usize, clip: Option<Clip> },
    /// A resampler for one voice, from a model's rate to the host's; one per voice is sent.
    Resampler(Box<StreamResampler>),
}

/// Audio thread → worker.
pub enum ToWorker {
    /// A clip the audio thread no longer uses, to be freed off the audio thread.
    Retired(Clip),
    /// A resampler the audio thread no longer uses (replaced, or for another host rate).
    RetiredResampler(Box<StreamResampler>),
    /// Generate `line` now and stream it as live stream `token`.
    Live { line: usize, token: u32 },
    /// The voice playing live stream `token` stopped before the stream ended (cut, stolen or
    /// silenced): nothing reads it any more, so the worker cancels it instead of filling the
    /// live ring until it blocks.
    LiveAbandoned { token: u32 },
}

/// `len` samples of live stream `token`, generated at `sample_rate`, sit in the live sample
/// ring; `end` marks its last run (which may hold no samples; its rate then means nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LiveSegment {
    pub token: u32,
    pub len: usize,
    pub end: bool,
    pub sample_rate: u32,
}

/// Message ring sizes: far above what one block can produce or a tick can deliver. A scan
/// that changes every line withdraws each line's clip and each of its takes; twice that leaves
/// room for the renders that follow before the audio thread next drains the ring.
const MESSAGES: usize = 2 * MAX_LINES * (MAX_TAKES + 1);
/// How far live audio may run ahead of playback, at the fastest model rate.
const LIVE_AHEAD: Duration = Duration::from_secs(30);
/// VoxCPM2's rate, the fastest of the models (VoxCPM-0.5B speaks at 16 kHz, VoxCPM1.5 at
/// 44.1 kHz). The ring is allocated before any model is known and kept across model switches
/// (the audio thread holds its reading end and may not free it), so it is sized for this rate;
/// a slower model gets more time ahead from the same samples.
const FASTEST_MODEL_RATE: u32 = 48_000;
/// The live sample ring's size.
const LIVE_SAMPLES: usize = LIVE_AHEAD.as_secs() as usize * FASTEST_MODEL_RATE as usize;

/// The audio thread's ends.
pub struct AudioEnds {
    pub from_worker: Consumer<ToAudio>,
    pub to_worker: Producer<ToWorker>,
    pub live_samples: Consumer<f32>,
    pub live_segments: Consumer<LiveSegment>,
    /// The host's sample rate, set at activation (0 before): what the worker resamples to.
    pub host_rate: Arc<AtomicU32>,
}

/// The worker's ends.
pub struct WorkerEnds {
    pub to_audio: Producer<ToAudio>,
    pub from_audio: Consumer<ToWorker>,
    pub live_samples: Producer<f32>,
    pub live_segments: Producer<LiveSegment>,
    pub host_rate: Arc<AtomicU32>,
}

pub fn channels() -> (AudioEnds, WorkerEnds) {
    let (to_audio, from_worker) = RingBuffer::new(MESSAGES);
    let (to_worker, from_audio) = RingBuffer::new(MESSAGES);
    let (live_in, live_out) = RingBuffer::new(LIVE_SAMPLES);
    let (segments_in, segments_out) = RingBuffer::new(MESSAGES);
    let host_rate = Arc::new(AtomicU32::new(0));
    (
        AudioEnds {
            from_worker,
            to_worker,
            live_samples: live_out,
            live_segments: segments_out,
            host_rate: Arc::clone(&host_rate),
        },
        WorkerEnds { to_audio, from_audio, live_samples: live_in, live_segments: segments_in, host_rate },
    )
}
