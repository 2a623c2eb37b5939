//! The engine thread's running batch (continuous batching): the requests generating now, each
//! with its own utterance state (KV caches, decoder, options), noise and caller. They step
//! together, one patch each per step; a request joins at a patch boundary once its prefill
//! is done and leaves when it finishes, fails or is cancelled, without disturbing the others.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;

use super::server::{ProgressFn, Speech};
use super::stream::StreamEvent;
use crate::error::{Error, Result};
use crate::noise::{NoiseSource, SeededNoise};
use crate::pipeline::{Step, TextToSpeech, Utterance};

/// Who waits for a request's audio.
pub(super) enum Client {
    /// `generate`: the whole take, once done.
    Whole { seed: u64, progress: Option<ProgressFn>, reply: Sender<Result<Speech>> },
    /// `generate_streaming`: a chunk per patch down the stream's own channel.
    Stream { events: Sender<StreamEvent>, cancelled: Arc<AtomicBool> },
}

impl Client {
    /// A stream whose handle was dropped.
    fn cancelled(&self) -> bool {
        match self {
            Client::Whole { .. } => false,
            Client::Stream { cancelled, .. } => cancelled.load(Ordering::Relaxed),
        }
    }

    pub fn is_stream(&self) -> bool {
        matches!(self, Client::Stream { .. })
    }

    /// Ends the request with `error`.
    pub fn fail(self, error: Error) {
        match self {
            Client::Whole { reply, .. } => {
                let _ = reply.send(Err(error));
            }
            Client::Stream { events, .. } => {
                let _ = events.send(StreamEvent::Failed(error));
            }
        }
    }
}

/// One request of the batch.
pub(super) struct Member {
    pub utterance: Utterance,
    pub noise: SeededNoise,
    pub client: Client,
}

/// What the engine thread tells the batch about the server.
pub(super) struct Context<'a> {
    pub tts: &'a TextToSpeech,
    /// Whether `stop` was called.
    pub stopping: &'a dyn Fn() -> bool,
    /// Called once per generated patch.
    pub on_patch: &'a dyn Fn(),
    /// Called when a stream leaves the batch, before its last message.
    pub on_stream_end: &'a dyn Fn(),
}

/// The requests generating now, in the order they joined.
#[derive(Default)]
pub(super) struct Batch {
    members: Vec<Member>,
}

impl Batch {
    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    pub fn join(&mut self, member: Member) {
        self.members.push(member);
    }

    /// One patch for every member; delivers each one's progress and audio to its caller and
    /// removes those that finished, failed or were cancelled.
    pub fn step(&mut self, context: &Context) {
        let leave = |member: Member, error: Option<Error>| {
            if member.client.is_stream() {
                (context.on_stream_end)();
            }
            if let Some(error) = error {
                member.client.fail(error);
            }
        };
        // A dropped stream leaves before its next patch is paid for.
        let (cancelled, mut members): (Vec<Member>, Vec<Member>) =
            std::mem::take(&mut self.members).into_iter().partition(|m| m.client.cancelled());
        cancelled.into_iter().for_each(|member| leave(member, None));
        if members.is_empty() {
            return;
        }
        let results = {
            let mut utterances = Vec::with_capacity(members.len());
            let mut noises: Vec<&mut dyn NoiseSource> = Vec::with_capacity(members.len());
            for member in &mut members {
                utterances.push(&mut member.utterance);
                noises.push(&mut member.noise);
            }
            super::server::catch_panic(|| context.tts.step(&mut utterances, &mut noises))
        };
        let results = match results {
            Ok(results) => results,
            Err(error) => {
                // The whole step failed (a panic): a lone member gets the error itself, several
                // members its message each.
                let message = error.to_string();
                let mut original = (members.len() == 1).then_some(error);
                for member in members {
                    let error = original.take().unwrap_or_else(|| Error::Internal(message.clone()));
                    leave(member, Some(error));
                }
                return;
            }
        };
        for (mut member, result) in members.into_iter().zip(results) {
            if result.is_ok() {
                (context.on_patch)();
            }
            match deliver(&mut member.client, result, context) {
                Delivered::Continue => self.members.push(member),
                Delivered::Finished => leave(member, None),
                Delivered::Ended => {}
                Delivered::Failed(error) => leave(member, Some(error)),
            }
        }
    }

    /// Ends every member with [`Error::Stopped`] (`stop` was called).
    pub fn stop(&mut self) {
        for member in self.members.drain(..) {
            member.client.fail(Error::Stopped);
        }
    }
}

/// What became of a member after its step.
enum Delivered {
    Continue,
    /// Answered in full, or its caller is gone.
    Finished,
    /// A stream that sent its end (and was counted out before it).
    Ended,
    Failed(Error),
}

/// Hands one step's outcome to the caller.
fn deliver(client: &mut Client, result: Result<Step>, context: &Context) -> Delivered {
    if (context.stopping)() {
        return Delivered::Failed(Error::Stopped);
    }
    let step = match result {
        Ok(step) => step,
        Err(error) => return Delivered::Failed(error),
    };
    match client {
        Client::Whole { seed, progress, reply } => {
            let wanted = progress.as_mut().map_or(ControlFlow::Continue(()), |progress| progress(step.progress));
            if wanted.is_break() {
                return Delivered::Failed(Error::Cancelled);
            }
            match (step.done, step.audio) {
                (false, _) => Delivered::Continue,
                (true, Some(samples)) => {
                    let speech = Speech { samples, sample_rate: context.tts.output_sample_rate(), seed: *seed };
                    let _ = reply.send(Ok(speech));
                    Delivered::Finished
                }
                (true, None) => Delivered::Failed(Error::Internal("a finished take came without its audio".into())),
            }
        }
        Client::Stream { events, cancelled } => {
            if cancelled.load(Ordering::Relaxed) {
                return Delivered::Finished;
            }
            if let Some(chunk) = step.audio
                && events.send(StreamEvent::Chunk(chunk)).is_err()
            {
                return Delivered::Finished;
            }
            if step.done {
                (context.on_stream_end)();
                let _ = events.send(StreamEvent::End);
                return Delivered::Ended;
            }
            Delivered::Continue
        }
    }
}
