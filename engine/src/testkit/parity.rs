//! Parity cases (shared/docs/parity-case.md): read a case recorded from the official code, run
//! the engine on the same inputs with the same noise, and write what it produced.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use crate::error::{Error, Result};
use crate::model::nn::to_vec;
use crate::model::{CfmSettings, DEFAULT_RATIO_THRESHOLD, GenerationSettings, Sequence, VoxCpm, patch_cap};
use crate::noise::ReplayNoise;
use crate::pipeline::{PromptClip, SpeechOptions, SpeechRequest, TextToSpeech};

/// A zero-shot case: token ids in, latents and audio out.
#[derive(Debug, Clone)]
pub struct ZeroShotCase {
    pub text_ids: Vec<i64>,
    /// `[n_patches, 1, D, P]` as recorded.
    pub noise: Vec<f32>,
    pub noise_shape: Vec<usize>,
    pub min_len: usize,
    pub max_len: usize,
    pub timesteps: usize,
    pub cfg_value: f32,
    /// Expected outputs, when the file has them.
    pub latents: Option<(Vec<f32>, Vec<usize>)>,
    pub audio: Option<Vec<f32>>,
}

/// A pipeline case: text and prompt audio in, audio out, through the tokenizer, prompt
/// encoding and the sequence layouts (parity-case.md).
#[derive(Debug, Clone)]
pub struct PipelineCase {
    pub request: SpeechRequest,
    pub noise: Vec<f32>,
    pub noise_shape: Vec<usize>,
    /// Expected output, when the file has it.
    pub audio: Option<Vec<f32>>,
}

/// Either kind of case; a file with `text_ids` is zero-shot, one with `text` a pipeline case.
pub enum ParityCase {
    ZeroShot(ZeroShotCase),
    Pipeline(PipelineCase),
}

impl ParityCase {
    pub fn read(path: &Path) -> Result<Self> {
        let file = TensorFile::read(path)?;
        if file.contains("text_ids") && !file.contains("text") {
            Ok(ParityCase::ZeroShot(ZeroShotCase::read(path)?))
        } else if file.contains("text") {
            Ok(ParityCase::Pipeline(PipelineCase::from_file(&file)?))
        } else {
            Err(file.error("neither text_ids (zero-shot case) nor text (pipeline case) is present".into()))
        }
    }

    pub fn run(&self, tts: &TextToSpeech, path: &Path) -> Result<CaseOutput> {
        match self {
            ParityCase::ZeroShot(case) => case.run(tts.model(), path),
            ParityCase::Pipeline(case) => case.run(tts, path),
        }
    }
}

/// `min_len, max_len, inference_timesteps` and `cfg_value`, checked.
fn read_settings(file: &TensorFile) -> Result<(usize, usize, usize, f32)> {
    let params = file.i64("params")?;
    let [min_len, max_len, timesteps] = params[..] else {
        return Err(file.error(format!("params has {} values, expected 3", params.len())));
    };
    if min_len < 0 || max_len < 1 || timesteps < 1 {
        return Err(file.error(format!("params {params:?} are out of range")));
    }
    let cfg = file.f32("cfg_value")?;
    let cfg = *cfg.first().ok_or_else(|| file.error("cfg_value is empty".into()))?;
    Ok((min_len as usize, max_len as usize, timesteps as usize, cfg))
}

/// A case file that is damaged or does not fit the model: bad input, named by its path.
fn case_error(path: &Path, message: String) -> Error {
    Error::InvalidInput(format!("parity case {}: {message}", path.display()))
}

/// Checks recorded noise `[n, 1, D, P]` against the model.
fn check_noise(shape: &[usize], model: &VoxCpm, path: &Path) -> Result<()> {
    let (p, d) = (model.config().patch_size, model.config().feat_dim);
    match shape {
        [_, 1, nd, np] if *nd == d && *np == p => Ok(()),
        _ => Err(case_error(
            path,
            format!(
                "noise has shape {shape:?}, the model needs [n_patches, 1, {d}, {p}] (feat_dim {d}, patch_size {p})"
            ),
        )),
    }
}

impl PipelineCase {
    fn from_file(file: &TensorFile) -> Result<Self> {
        let (min_len, max_len, inference_timesteps, cfg_value) = read_settings(file)?;
        let utf8 = |name: &str| -> Result<String> {
            let bytes: Vec<u8> = file.u8(name)?;
            String::from_utf8(bytes).map_err(|_| file.error(format!("{name} is not valid UTF-8")))
        };
        let optional = |name: &str| {
            if file.contains(name) { file.f32(name).map(Some) } else { Ok(None) }
        };
        let prompt = match (optional("prompt_audio")?, file.contains("prompt_text")) {
            (Some(audio), true) => Some(PromptClip { audio, text: utf8("prompt_text")? }),
            (None, false) => None,
            _ => return Err(file.error("prompt_audio and prompt_text must come together".into())),
        };
        Ok(PipelineCase {
            request: SpeechRequest {
                text: utf8("text")?,
                reference_audio: optional("reference_audio")?,
                prompt,
                // The cases record one run of the official loop: no bad-case retry.
                options: SpeechOptions {
                    cfg_value,
                    inference_timesteps,
                    min_len,
                    max_len,
                    retry_badcase: false,
                    ..SpeechOptions::default()
                },
            },
            noise: file.f32("noise")?,
            noise_shape: file.shape("noise")?,
            audio: optional("audio")?,
        })
    }

    pub fn run(&self, tts: &TextToSpeech, path: &Path) -> Result<CaseOutput> {
        check_noise(&self.noise_shape, tts.model(), path)?;
        let config = tts.model().config();
        let mut noise = ReplayNoise::new(self.noise.clone(), config.patch_size * config.feat_dim);
        let audio = tts.speak(&self.request, &mut noise, |_| ControlFlow::Continue(()))?;
        Ok(CaseOutput { latents: Vec::new(), latent_shape: [config.feat_dim, 0], audio })
    }
}

/// What the engine produced for a case.
#[derive(Debug, Clone)]
pub struct CaseOutput {
    /// `[D, P·n]`
    pub latents: Vec<f32>,
    pub latent_shape: [usize; 2],
    pub audio: Vec<f32>,
}

/// The named tensors of a safetensors file, as f32 or i64 vectors with their shapes.
pub struct TensorFile {
    path: PathBuf,
    tensors: BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>,
}

impl TensorFile {
    pub fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        let file = SafeTensors::deserialize(&bytes)
            .map_err(|e| case_error(path, format!("not a valid safetensors file ({e})")))?;
        let tensors = file
            .tensors()
            .into_iter()
            .map(|(name, view)| (name, (view.dtype(), view.shape().to_vec(), view.data().to_vec())))
            .collect();
        Ok(TensorFile { path: path.to_owned(), tensors })
    }

    fn error(&self, message: String) -> Error {
        case_error(&self.path, message)
    }

    pub fn contains(&self, name: &str) -> bool {
        self.tensors.contains_key(name)
    }

    /// Tensor names in sorted order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    pub fn shape(&self, name: &str) -> Result<Vec<usize>> {
        self.tensors.get(name).map(|t| t.1.clone()).ok_or_else(|| self.error(format!("missing tensor {name}")))
    }

    pub fn f32(&self, name: &str) -> Result<Vec<f32>> {
        let (dtype, _, data) = self.tensors.get(name).ok_or_else(|| self.error(format!("missing tensor {name}")))?;
        if *dtype != Dtype::F32 {
            return Err(self.error(format!("tensor {name} is {dtype:?}, expected F32")));
        }
        Ok(data.chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect())
    }

    pub fn u8(&self, name: &str) -> Result<Vec<u8>> {
        let (dtype, _, data) = self.tensors.get(name).ok_or_else(|| self.error(format!("missing tensor {name}")))?;
        if *dtype != Dtype::U8 {
            return Err(self.error(format!("tensor {name} is {dtype:?}, expected U8")));
        }
        Ok(data.clone())
    }

    pub fn i64(&self, name: &str) -> Result<Vec<i64>> {
        let (dtype, _, data) = self.tensors.get(name).ok_or_else(|| self.error(format!("missing tensor {name}")))?;
        match dtype {
            Dtype::I64 => Ok(data.chunks_exact(8).map(|b| i64::from_le_bytes(b.try_into().unwrap())).collect()),
            Dtype::I32 => Ok(data.chunks_exact(4).map(|b| i32::from_le_bytes(b.try_into().unwrap()) as i64).collect()),
            other => Err(self.error(format!("tensor {name} is {other:?}, expected I64"))),
        }
    }
}

impl ZeroShotCase {
    pub fn read(path: &Path) -> Result<Self> {
        let file = TensorFile::read(path)?;
        let (min_len, max_len, timesteps, cfg_value) = read_settings(&file)?;
        let latents =
            if file.contains("latents") { Some((file.f32("latents")?, file.shape("latents")?)) } else { None };
        let audio = if file.contains("audio") { Some(file.f32("audio")?) } else { None };
        Ok(ZeroShotCase {
            text_ids: file.i64("text_ids")?,
            noise: file.f32("noise")?,
            noise_shape: file.shape("noise")?,
            min_len,
            max_len,
            timesteps,
            cfg_value,
            latents,
            audio,
        })
    }

    /// Runs the case on `model`; fails with a message naming the mismatch when the case does
    /// not fit the model.
    pub fn run(&self, model: &VoxCpm, path: &Path) -> Result<CaseOutput> {
        let config = model.config();
        let (p, d) = (config.patch_size, config.feat_dim);
        let bad = |message: String| case_error(path, message);
        check_noise(&self.noise_shape, model, path)?;
        if self.text_ids.is_empty() {
            return Err(bad("text_ids is empty".into()));
        }
        let sequence = Sequence::zero_shot(self.text_ids.clone(), p * d);
        let settings = GenerationSettings {
            min_len: self.min_len,
            max_len: patch_cap(self.text_ids.len() - 1, self.max_len, DEFAULT_RATIO_THRESHOLD),
            cfm: CfmSettings { timesteps: self.timesteps, cfg_value: self.cfg_value },
        };
        let mut noise = ReplayNoise::new(self.noise.clone(), p * d);
        let patches = model.generate(&sequence, settings, &mut noise, |_| ControlFlow::Continue(()))?;
        let latents = model.patches_to_latents(&patches);
        let latent_shape = [d, patches.len() / d];
        let audio = model.audio_vae().decode(latents.clone());
        Ok(CaseOutput { latents: to_vec(latents)?, latent_shape, audio: to_vec(audio)? })
    }
}

impl CaseOutput {
    /// Writes `latents` `[D, P·n]` (when produced) and `audio` `[samples]` as f32 safetensors.
    pub fn write(&self, path: &Path) -> Result<()> {
        let bytes = |v: &[f32]| v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
        let (latents, audio) = (bytes(&self.latents), bytes(&self.audio));
        let mut views =
            vec![("audio", safetensors::tensor::TensorView::new(Dtype::F32, vec![self.audio.len()], &audio))];
        if !self.latents.is_empty() {
            views.push((
                "latents",
                safetensors::tensor::TensorView::new(Dtype::F32, self.latent_shape.to_vec(), &latents),
            ));
        }
        let views: Vec<(&str, _)> = views
            .into_iter()
            .map(|(n, v)| v.map(|v| (n, v)))
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| Error::InvalidInput(format!("cannot build output tensors: {e}")))?;
        safetensors::serialize_to_file(views, None, path)
            .map_err(|e| Error::write(path, std::io::Error::other(e.to_string())))
    }
}

/// Largest absolute difference divided by the reference's largest magnitude; infinite where
/// [`max_abs_diff`] is.
pub fn relative_max_error(actual: &[f32], expected: &[f32]) -> f32 {
    let scale = expected.iter().map(|x| x.abs()).fold(0f32, f32::max).max(f32::MIN_POSITIVE);
    max_abs_diff(actual, expected) / scale
}

/// Largest `|actual - expected|`, NaN-aware: a non-finite value that the other side does not
/// hold too (NaN for NaN, the same infinity) and a length mismatch give infinity, so no
/// tolerance passes them. A plain `fold(0.0, f32::max)` would drop NaN and pass garbage.
pub fn max_abs_diff(actual: &[f32], expected: &[f32]) -> f32 {
    if actual.len() != expected.len() {
        return f32::INFINITY;
    }
    actual
        .iter()
        .zip(expected)
        .map(|(&a, &e)| match (a.is_finite(), e.is_finite()) {
            (true, true) => (a - e).abs(),
            _ if a == e || (a.is_nan() && e.is_nan()) => 0.0,
            _ => f32::INFINITY,
        })
        .fold(0f32, f32::max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_output_never_passes_a_comparison() {
        let expected = [0.5f32, -1.0, 0.25];
        assert!(relative_max_error(&[f32::NAN; 3], &expected).is_infinite());
        assert!(relative_max_error(&[0.5, f32::NAN, 0.25], &expected) > 1.0);
        assert!(max_abs_diff(&[0.5, -1.0, f32::INFINITY], &expected).is_infinite());
        assert!(max_abs_diff(&[0.5, -1.0], &expected).is_infinite());
        assert_eq!(max_abs_diff(&[0.5, -1.0, 0.5], &expected), 0.25);
        assert_eq!(max_abs_diff(&[f32::NAN, f32::INFINITY], &[f32::NAN, f32::INFINITY]), 0.0);
        assert!(max_abs_diff(&[f32::NEG_INFINITY], &[f32::INFINITY]).is_infinite());
    }
}
