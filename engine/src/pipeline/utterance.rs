//! One request's way through the batched patch loop: what [`TextToSpeech::speak`] and
//! [`TextToSpeech::speak_streaming`] do around the network, kept as state between steps so
//! that the runtime can step many requests together ([`TextToSpeech::step`]).

use super::{LeadingCut, PreparedRequest, Progress, SpeechOptions, SpeechRequest, TextToSpeech};
use crate::config::Architecture;
use crate::error::{Result, ensure_finite};
use crate::model::audio_vae::DecoderStream;
use crate::model::nn::to_vec;
use crate::model::{Generation, Patch};
use crate::noise::NoiseSource;

/// How an utterance hands over its audio.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// All of it once done, after the bad-case retries ([`TextToSpeech::speak`]).
    Whole,
    /// A chunk per patch, decoded by the stateful decoder ([`TextToSpeech::speak_streaming`]).
    Streaming,
}

/// A request in the patch loop.
pub struct Utterance {
    prepared: PreparedRequest,
    options: SpeechOptions,
    generation: Generation,
    /// 1 for the first run, higher for bad-case retries.
    attempt: usize,
    output: Output,
}

enum Output {
    /// The patches of the current attempt, `[n, P, D]` row-major.
    Whole(Vec<f32>),
    Streaming {
        decoder: DecoderStream,
        front: LeadingCut,
    },
}

/// What one step made of an utterance.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    pub progress: Progress,
    /// New audio: a streaming utterance's chunk for this patch (none when the leading cut took
    /// it all); a whole utterance's audio once it is done.
    pub audio: Option<Vec<f32>>,
    /// The utterance is finished and must leave the batch.
    pub done: bool,
}

impl TextToSpeech {
    /// Prepares `request` and runs its prefill; the utterance can then join a batch. A v1
    /// stream first decodes the prompt's context patches: their audio (after the leading cut)
    /// comes back beside it, to be delivered before the first patch.
    pub fn begin(&self, request: &SpeechRequest, delivery: Delivery) -> Result<(Utterance, Option<Vec<f32>>)> {
        let prepared = self.prepare(request)?;
        let (output, warm_up) = match delivery {
            Delivery::Whole => (Output::Whole(Vec::new()), None),
            Delivery::Streaming => {
                let mut decoder = DecoderStream::new();
                let (context, cut) = match self.model.config().architecture {
                    Architecture::V1 => {
                        (self.model.context_patches(&prepared.sequence), self.leading_cut(&prepared.sequence))
                    }
                    Architecture::V2 => (&[][..], 0),
                };
                let mut front = LeadingCut(cut);
                let warm_up = match context.is_empty() {
                    true => None,
                    false => front.apply(self.decode_chunk(context, &mut decoder)?),
                };
                (Output::Streaming { decoder, front }, warm_up)
            }
        };
        let generation = self.model.start(&prepared.sequence, prepared.settings)?;
        let utterance = Utterance { prepared, options: request.options, generation, attempt: 1, output };
        Ok((utterance, warm_up))
    }

    /// The next patch of every utterance in `batch` (noise from `noise`, one source each, in
    /// order), as one batched step of the network; see [`crate::model::VoxCpm::step`]. One
    /// result per utterance: an error ends only that one. The audio is decoded per utterance
    /// (each has its own decoder state; the VAE's convolutions reuse their weights across the
    /// whole chunk already, so stacking requests would save nothing there).
    pub fn step(&self, batch: &mut [&mut Utterance], noise: &mut [&mut dyn NoiseSource]) -> Result<Vec<Result<Step>>> {
        let mut generations: Vec<&mut Generation> = batch.iter_mut().map(|u| &mut u.generation).collect();
        let patches = self.model.step(&mut generations, noise)?;
        Ok(batch
            .iter_mut()
            .zip(patches)
            .map(|(utterance, patch)| patch.and_then(|p| self.take(utterance, p)))
            .collect())
    }

    fn take(&self, utterance: &mut Utterance, patch: Patch) -> Result<Step> {
        let progress = Progress {
            patches: utterance.generation.patches(),
            cap: utterance.prepared.settings.max_len,
            attempt: utterance.attempt,
        };
        match &mut utterance.output {
            Output::Streaming { decoder, front } => {
                let audio = front.apply(self.decode_chunk(&patch.values, decoder)?);
                Ok(Step { progress, audio, done: patch.last })
            }
            Output::Whole(generated) => {
                generated.extend_from_slice(&patch.values);
                if !patch.last {
                    return Ok(Step { progress, audio: None, done: false });
                }
                let generated = std::mem::take(generated);
                if self.retries(utterance, &generated) {
                    utterance.attempt += 1;
                    utterance.generation =
                        self.model.start(&utterance.prepared.sequence, utterance.prepared.settings)?;
                    return Ok(Step { progress, audio: None, done: false });
                }
                Ok(Step { progress, audio: Some(self.decode_whole(&utterance.prepared, &generated)?), done: true })
            }
        }
    }

    /// Whether a finished attempt is a bad case (audio too long for its text) to run again.
    fn retries(&self, utterance: &Utterance, generated: &[f32]) -> bool {
        let options = utterance.options;
        let attempts = if options.retry_badcase { options.retry_badcase_max_times } else { 1 };
        if utterance.attempt >= attempts {
            return false;
        }
        let config = self.model.config();
        let patch_len = config.patch_size * config.feat_dim;
        let sequence = &utterance.prepared.sequence;
        // v1's check counts the patches it returns, the context among them; v2's does not.
        let counted_context = match config.architecture {
            Architecture::V1 => self.model.context_patches(sequence).len() / patch_len,
            Architecture::V2 => 0,
        };
        let n = generated.len() / patch_len;
        let target_tokens = utterance.prepared.target_tokens;
        let too_long = ((n + counted_context) as f64) >= target_tokens as f64 * options.retry_badcase_ratio_threshold;
        if too_long {
            let attempt = utterance.attempt;
            tracing::warn!(patches = n, target_tokens, attempt, "audio too long for its text, generating again");
        }
        too_long
    }

    /// The whole take's audio: the prompt's context patches (the decoder warms up on them),
    /// then the generated ones, less the leading cut.
    fn decode_whole(&self, prepared: &PreparedRequest, generated: &[f32]) -> Result<Vec<f32>> {
        let context = self.model.context_patches(&prepared.sequence);
        let latents = self.model.patches_to_latents(&[context, generated].concat());
        let audio = to_vec(self.model.audio_vae().decode(latents))?;
        ensure_finite(&audio, "the decoded audio")?;
        let cut = self.leading_cut(&prepared.sequence).min(audio.len());
        Ok(audio[cut..].to_vec())
    }

    /// The next stretch of a stream: patches `[n, P, D]` (row-major) through `stream`.
    pub(super) fn decode_chunk(&self, patches: &[f32], stream: &mut DecoderStream) -> Result<Vec<f32>> {
        let latents = self.model.patches_to_latents(patches);
        let chunk = to_vec(self.model.audio_vae().decode_chunk(latents, stream))?;
        ensure_finite(&chunk, "the decoded audio")?;
        Ok(chunk)
    }
}
