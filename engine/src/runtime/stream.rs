//! The caller's end of a streaming generation: one channel per stream, so streams in flight
//! never see each other's chunks, and dropping the handle cancels its generation.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::wav;

/// What the worker sends down a stream's channel.
pub(crate) enum StreamEvent {
    /// Generation began; the output sample rate.
    Started { sample_rate: u32 },
    /// One patch of audio (160 ms for VoxCPM2 and VoxCPM1.5, 80 ms for VoxCPM-0.5B).
    Chunk(Vec<f32>),
    /// All chunks were sent.
    End,
    /// Generation failed after the chunks already sent.
    Failed(Error),
}

/// A generation in progress. Chunks arrive as they are generated.
pub struct SpeechStream {
    events: Receiver<StreamEvent>,
    cancelled: Arc<AtomicBool>,
    sample_rate: Option<u32>,
    seed: u64,
    finished: bool,
}

impl SpeechStream {
    pub(crate) fn new(events: Receiver<StreamEvent>, cancelled: Arc<AtomicBool>, seed: u64) -> Self {
        SpeechStream { events, cancelled, sample_rate: None, seed, finished: false }
    }

    /// The noise seed of this generation (pass it back to reproduce the audio).
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The output sample rate, known once generation has started.
    pub fn sample_rate(&self) -> Option<u32> {
        self.sample_rate
    }

    /// The next chunk of f32 PCM, waiting for it as long as it takes; `None` at the end.
    pub fn next_chunk(&mut self) -> Result<Option<Vec<f32>>> {
        self.next(None)
    }

    /// As [`next_chunk`](Self::next_chunk), but gives up with [`Error::Timeout`] after
    /// `timeout` (the stream stays usable).
    pub fn next_chunk_timeout(&mut self, timeout: Duration) -> Result<Option<Vec<f32>>> {
        self.next(Some(timeout))
    }

    fn next(&mut self, timeout: Option<Duration>) -> Result<Option<Vec<f32>>> {
        loop {
            if self.finished {
                return Ok(None);
            }
            let event = match timeout {
                None => self.events.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(t) => self.events.recv_timeout(t),
            };
            match event {
                Ok(StreamEvent::Started { sample_rate }) => self.sample_rate = Some(sample_rate),
                Ok(StreamEvent::Chunk(chunk)) => return Ok(Some(chunk)),
                Ok(StreamEvent::End) => self.finished = true,
                Ok(StreamEvent::Failed(e)) => {
                    self.finished = true;
                    return Err(e);
                }
                Err(RecvTimeoutError::Timeout) => {
                    return Err(Error::Timeout(timeout.unwrap_or_default()));
                }
                Err(RecvTimeoutError::Disconnected) => {
                    self.finished = true;
                    return Err(Error::Stopped);
                }
            }
        }
    }

    /// Waits for the end and returns the samples of every chunk not yet taken.
    pub fn collect_samples(mut self) -> Result<Vec<f32>> {
        self.drain()
    }

    /// Waits for the end and returns the chunks not yet taken as a 32-bit float mono WAV, as
    /// VoxCPMEx's `collect_stream` does.
    pub fn collect(mut self) -> Result<Vec<u8>> {
        let samples = self.drain()?;
        let rate = self.sample_rate.ok_or_else(|| Error::ModelUnavailable("the stream never started".into()))?;
        Ok(wav::encode_float(&samples, rate))
    }

    fn drain(&mut self) -> Result<Vec<f32>> {
        let mut samples = Vec::new();
        while let Some(chunk) = self.next_chunk()? {
            samples.extend_from_slice(&chunk);
        }
        Ok(samples)
    }
}

impl Drop for SpeechStream {
    /// Cancels the generation if it is still queued or running.
    fn drop(&mut self) {
        self.cancelled.store(true, Ordering::Relaxed);
    }
}
