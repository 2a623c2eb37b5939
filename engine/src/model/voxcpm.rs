//! The whole network and its patch-by-patch generation loop (§6.2, §6.3), for both
//! architectures: v1 (`VoxCPMModel`: VoxCPM-0.5B, VoxCPM1.5) and VoxCPM2 (`VoxCPM2Model`).
//!
//! The stacks, LocEnc, FSQ, the CFM solver, the stop head and the loop are shared. Where the
//! official classes differ, the model switches on [`Architecture`] (tools/golden/V1_NOTES.md):
//! the residual LM's input (a sum in v1, `fusion_concat_proj` of the two in v2), the DiT's
//! conditioning `mu` (a sum in v1, the two side by side in v2), LocDiT's sequence layout and
//! the AudioVAE; the config resolves the rest (v1's residual LM always has RoPE, the FSQ width).

use std::ops::ControlFlow;
use std::path::Path;

use burn::tensor::activation::silu;
use burn::tensor::{Device, Tensor, TensorData};

use super::audio_vae::AudioVae;
use super::batch::{Generation, Phase};
use super::cfm::CfmSettings;
use super::embedding::TokenEmbedding;
use super::fsq::Fsq;
use super::load_options::LoadOptions;
use super::loc_dit::LocDit;
use super::loc_enc::LocEnc;
use super::lora::LoraAdapter;
use super::minicpm::MiniCpmStack;
use super::nn::Linear;
use super::rope::Rope;
use super::sequence::Sequence;
use crate::config::{Architecture, VoxCpmConfig};
use crate::error::{Error, Result};
use crate::noise::NoiseSource;
use crate::weights::{WeightFile, WeightLoader};

/// A tensor's name and shape, as a checkpoint must hold it.
pub type TensorSpec = (String, Vec<usize>);

/// How long to generate and how to sample each patch.
#[derive(Debug, Clone, Copy)]
pub struct GenerationSettings {
    /// Stopping is allowed only after patch index `min_len` (the reference compares `i >`).
    pub min_len: usize,
    /// Upper bound on generated patches (already capped by the caller, see `patch_cap`).
    pub max_len: usize,
    pub cfm: CfmSettings,
}

/// The networks of a VoxCPM checkpoint (either architecture), weights on one device.
#[derive(Debug, Clone)]
pub struct VoxCpm {
    config: VoxCpmConfig,
    embed_tokens: TokenEmbedding,
    base_lm: MiniCpmStack,
    residual_lm: MiniCpmStack,
    loc_enc: LocEnc,
    loc_dit: LocDit,
    fsq: Fsq,
    enc_to_lm_proj: Linear,
    lm_to_dit_proj: Linear,
    res_to_dit_proj: Linear,
    /// v2 only: joins the base LM's output and the patch embedding into the residual LM's input.
    fusion_concat_proj: Option<Linear>,
    stop_proj: Linear,
    stop_head: Linear,
    audio_vae: AudioVae,
}

impl VoxCpm {
    /// Loads `config.json`, `model.safetensors` (or `pytorch_model.bin`) and
    /// `audiovae.safetensors` (or `audiovae.pth`) from an official checkpoint directory.
    pub fn load(dir: &Path, options: &LoadOptions) -> Result<Self> {
        let config = VoxCpmConfig::load(&dir.join("config.json"))?;
        let model_file = WeightFile::open(&first_existing(dir, &["model.safetensors", "pytorch_model.bin"]))?;
        let vae_file = WeightFile::open(&first_existing(dir, &["audiovae.safetensors", "audiovae.pth"]))?;
        Self::from_files(config, &model_file, &vae_file, options)
    }

    /// Builds the model from already opened weight files; every tensor of both files must be
    /// used and match the config.
    pub fn from_files(
        config: VoxCpmConfig,
        model: &WeightFile,
        vae: &WeightFile,
        options: &LoadOptions,
    ) -> Result<Self> {
        let mut model_loader = WeightLoader::new(model, &options.device).with_products(options.products);
        let mut vae_loader = WeightLoader::new(vae, &options.device);
        let net = Self::build(config, &mut model_loader, &mut vae_loader);
        // Both files' problems in one error: a config of the wrong architecture shows in the
        // model file (e.g. `fusion_concat_proj`) and in the VAE file at once.
        match (model_loader.finish(), vae_loader.finish()) {
            (Ok(()), Ok(())) => Ok(net),
            (Err(e), Ok(())) | (Ok(()), Err(e)) => Err(e),
            (Err(model), Err(vae)) => Err(model.with_problems_of(vae)),
        }
    }

    /// The `(name, shape)` of every tensor a checkpoint with this config holds: first the
    /// `model.safetensors` part, then the VAE part (keys without the `audio_vae.` prefix).
    pub fn tensor_inventory(config: &VoxCpmConfig) -> (Vec<TensorSpec>, Vec<TensorSpec>) {
        let device = Device::flex();
        let mut model_loader = WeightLoader::inventory(&device);
        let mut vae_loader = WeightLoader::inventory(&device);
        Self::build(config.clone(), &mut model_loader, &mut vae_loader);
        (model_loader.into_requested(), vae_loader.into_requested())
    }

    fn build(config: VoxCpmConfig, w: &mut WeightLoader, vw: &mut WeightLoader) -> Self {
        let device = w.device().clone();
        let lm = &config.lm_config;
        let h = lm.hidden_size;
        let base = config.base_lm();
        let rope = Rope::new(lm, base.head_dim, config.rope_positions(), &device);
        let enc_h = config.encoder_config.hidden_dim;
        let dit_h = config.dit_config.hidden_dim;
        let (d, fsq_dim) = (config.feat_dim, config.scalar_quantization_latent_dim);
        let embed_scale = config.text_embed_scale();
        let architecture = config.architecture;
        VoxCpm {
            embed_tokens: TokenEmbedding::load(w, "base_lm.embed_tokens.weight", lm.vocab_size, h, embed_scale as f32),
            base_lm: MiniCpmStack::load(w, "base_lm", &base, Some(rope.clone())),
            residual_lm: MiniCpmStack::load(w, "residual_lm", &config.residual_lm(), Some(rope.clone())),
            loc_enc: LocEnc::load(w, &config.loc_enc(), d, rope.clone()),
            loc_dit: LocDit::load(w, &config.loc_dit(), d, rope, architecture),
            fsq: Fsq::load(w, h, fsq_dim, config.scalar_quantization_scale),
            enc_to_lm_proj: Linear::load(w, "enc_to_lm_proj", enc_h, h, true),
            lm_to_dit_proj: Linear::load(w, "lm_to_dit_proj", h, dit_h, true),
            res_to_dit_proj: Linear::load(w, "res_to_dit_proj", h, dit_h, true),
            fusion_concat_proj: (architecture == Architecture::V2)
                .then(|| Linear::load(w, "fusion_concat_proj", 2 * h, h, true)),
            stop_proj: Linear::load(w, "stop_proj", h, h, true),
            stop_head: Linear::load(w, "stop_head", h, 2, false),
            audio_vae: AudioVae::load(vw, &config.audio_vae_config, architecture),
            config,
        }
    }

    /// Applies a LoRA adapter directory, replacing any earlier one; returns the official
    /// (loaded, skipped) tensor counts. Tensors that name no linear layer of the model are
    /// skipped; a bad pair (one half missing, wrong shape) rejects the adapter and leaves the
    /// model as it was.
    pub fn load_lora(&mut self, dir: &Path) -> Result<(usize, usize)> {
        let adapter = LoraAdapter::read(dir)?;
        let device = self.device();
        let mut deltas = Vec::new();
        for layer in self.linears_mut() {
            let (d_in, d_out) = layer.dims();
            deltas.push(adapter.delta(&layer.name, d_in, d_out, &device)?);
        }
        let loaded = 2 * deltas.iter().flatten().count();
        for (layer, delta) in self.linears_mut().into_iter().zip(deltas) {
            layer.lora = delta;
        }
        Ok((loaded, adapter.len() - loaded))
    }

    /// Removes the adapter; the base weights were never changed.
    pub fn unload_lora(&mut self) {
        for layer in self.linears_mut() {
            layer.lora = None;
        }
    }

    /// Every linear layer outside the VAE (the VAE has convolutions only).
    fn linears_mut(&mut self) -> Vec<&mut Linear> {
        let mut out = self.base_lm.linears_mut();
        out.extend(self.residual_lm.linears_mut());
        out.extend(self.loc_enc.linears_mut());
        out.extend(self.loc_dit.linears_mut());
        out.extend([&mut self.enc_to_lm_proj, &mut self.lm_to_dit_proj, &mut self.res_to_dit_proj]);
        out.extend(self.fusion_concat_proj.as_mut());
        out.extend([&mut self.stop_proj, &mut self.stop_head]);
        out
    }

    pub fn config(&self) -> &VoxCpmConfig {
        &self.config
    }

    pub fn device(&self) -> Device {
        self.embed_tokens.device().clone()
    }

    pub fn audio_vae(&self) -> &AudioVae {
        &self.audio_vae
    }

    pub fn base_lm(&self) -> &MiniCpmStack {
        &self.base_lm
    }

    pub fn residual_lm(&self) -> &MiniCpmStack {
        &self.residual_lm
    }

    pub fn loc_enc(&self) -> &LocEnc {
        &self.loc_enc
    }

    pub fn loc_dit(&self) -> &LocDit {
        &self.loc_dit
    }

    pub fn fsq(&self) -> &Fsq {
        &self.fsq
    }

    /// Stop logits `[B, 2]` for LM hidden states `[B, H]`.
    pub fn stop_logits(&self, lm_hidden: Tensor<2>) -> Tensor<2> {
        self.stop_head.forward(silu(self.stop_proj.forward(lm_hidden)))
    }

    /// `embed_patches` of the prefill, computed only where the mask says audio: the reference
    /// also embeds the zero patches of text positions and then multiplies them by 0, so zeros
    /// there give the same result without running LocEnc over every text token.
    fn embed_audio_positions(&self, features: &Tensor<4>, audio_mask: &[bool]) -> Tensor<3> {
        let h = self.config.lm_config.hidden_size;
        let device = self.device();
        let mut runs = Vec::new();
        let mut start = 0;
        while start < audio_mask.len() {
            let audio = audio_mask[start];
            let end = start + audio_mask[start..].iter().take_while(|&&a| a == audio).count();
            runs.push(if audio {
                self.embed_patches(features.clone().slice_dim(1, start..end))
            } else {
                Tensor::zeros([1, end - start, h], &device)
            });
            start = end;
        }
        Tensor::cat(runs, 1)
    }

    /// Patch-level embedding for the LMs: `enc_to_lm_proj(LocEnc(patches))`, `[B,T,P,D]` → `[B,T,H]`.
    pub fn embed_patches(&self, patches: Tensor<4>) -> Tensor<3> {
        self.enc_to_lm_proj.forward(self.loc_enc.forward(patches))
    }

    /// The prefill's base-LM output as the rest of the model reads it: quantised by FSQ at
    /// audio positions, raw at text positions (§6.2 step 4).
    pub fn quantize_audio_positions(&self, enc_out: Tensor<3>, audio_mask: &[bool]) -> Tensor<3> {
        let t = audio_mask.len();
        let audio: Vec<f32> = audio_mask.iter().map(|&a| if a { 1.0 } else { 0.0 }).collect();
        let audio = Tensor::<1>::from_data(TensorData::new(audio, [t]), &self.device()).reshape([1, t, 1]);
        let text = audio.clone().neg() + 1.0;
        self.fsq.forward(enc_out.clone()) * audio + enc_out * text
    }

    /// The residual LM's input from the (quantised) base-LM output and the patch embedding
    /// (zero at text positions): their sum in v1, `fusion_concat_proj` of the two side by side
    /// in v2. `[.., H]` each.
    pub fn residual_input<const D: usize>(&self, lm_out: Tensor<D>, patch_embed: Tensor<D>) -> Tensor<D> {
        match &self.fusion_concat_proj {
            None => lm_out + patch_embed,
            Some(fusion) => fusion.forward(Tensor::cat(vec![lm_out, patch_embed], D - 1)),
        }
    }

    /// The DiT's conditioning from the two LMs' last hidden states `[B, H]`: v1 adds the two
    /// projections (`[B, H_dit]`), v2 puts them side by side (`[B, 2·H_dit]`).
    pub fn dit_condition(&self, lm_hidden: Tensor<2>, residual_hidden: Tensor<2>) -> Tensor<2> {
        let lm = self.lm_to_dit_proj.forward(lm_hidden);
        let residual = self.res_to_dit_proj.forward(residual_hidden);
        match self.config.architecture {
            Architecture::V1 => lm + residual,
            Architecture::V2 => Tensor::cat(vec![lm, residual], 1),
        }
    }

    /// The prompt patches decoded before the generated ones (`[n, P, D]` rows): when the
    /// sequence ends with prompt audio, its last `min(n, audio positions)` patches, with n = 2
    /// in v1 and 3 in v2.
    pub fn context_patches<'a>(&self, sequence: &'a Sequence) -> &'a [f32] {
        sequence.context_patches(self.config.architecture.context_patches())
    }

    /// Runs prefill and generates patches until the stop head fires (after `min_len`) or
    /// `max_len` patches exist. Each new patch `[P, D]` is passed to `on_patch` as soon as it
    /// exists; the return value holds them all, `[n, P, D]` row-major. `on_patch` returning
    /// `Break` ends the run at once with [`Error::Cancelled`]. A batch of one: the same steps
    /// as every request of a batch takes (see [`VoxCpm::step`]).
    pub fn generate(
        &self,
        sequence: &Sequence,
        settings: GenerationSettings,
        noise: &mut dyn NoiseSource,
        mut on_patch: impl FnMut(&[f32]) -> ControlFlow<()>,
    ) -> Result<Vec<f32>> {
        let mut generation = self.start(sequence, settings)?;
        let mut patches = Vec::new();
        loop {
            let results = self.step(&mut [&mut generation], &mut [&mut *noise])?;
            let patch = results.into_iter().next().expect("one request in, one result out")?;
            if on_patch(&patch.values).is_break() {
                return Err(Error::Cancelled);
            }
            patches.extend_from_slice(&patch.values);
            if patch.last {
                return Ok(patches);
            }
        }
    }

    /// Checks the sequence and runs its prefill (§6.2): the request is then ready to join a
    /// batch of [`VoxCpm::step`].
    pub fn start(&self, sequence: &Sequence, settings: GenerationSettings) -> Result<Generation> {
        let device = self.device();
        let (p, d) = (self.config.patch_size, self.config.feat_dim);
        let t = sequence.len();
        if t == 0 {
            return Err(Error::InvalidInput("empty input sequence".into()));
        }
        if sequence.features.len() != t * p * d || sequence.audio_mask.len() != t {
            return Err(Error::InvalidInput("sequence tracks differ in length".into()));
        }
        if settings.max_len == 0 {
            return Err(Error::InvalidInput("max_len must be at least 1".into()));
        }
        let vocab = self.config.lm_config.vocab_size as i64;
        if let Some(bad) = sequence.tokens.iter().find(|&&id| id < 0 || id >= vocab) {
            return Err(Error::InvalidInput(format!("token id {bad} is outside the vocabulary (0..{vocab})")));
        }
        // A take stops where the model's context (max_length) is full: the reference would
        // overflow its static cache there instead.
        let room = self.config.max_length.checked_sub(t).ok_or_else(|| {
            Error::InvalidInput(format!(
                "the prompt takes {t} positions, more than the model's context of {} (max_length)",
                self.config.max_length
            ))
        })?;
        let max_len = settings.max_len.min(room + 1);
        // Caches sized to this request (a full-size cache of max_length would be half a
        // gigabyte of zeros to allocate per request).
        let capacity = t + max_len.saturating_sub(1);
        let mut base_cache = self.base_lm.new_cache(capacity);
        let mut residual_cache = self.residual_lm.new_cache(capacity);

        let features = Tensor::<4>::from_data(TensorData::new(sequence.features.clone(), [1, t, p, d]), &device);
        let audio_mask: Vec<f32> = sequence.audio_mask.iter().map(|&a| if a { 1.0 } else { 0.0 }).collect();
        let audio_mask = Tensor::<1>::from_data(TensorData::new(audio_mask, [t]), &device).reshape([1, t, 1]);
        let text_mask = audio_mask.clone().neg() + 1.0;
        // Zero at text positions already: no need to mask it again.
        let feat_embed = self.embed_audio_positions(&features, &sequence.audio_mask);
        let text_embed = self.embed_tokens.lookup(&sequence.tokens);
        let combined = text_embed * text_mask + feat_embed.clone() * audio_mask;
        let enc_out = self.base_lm.forward_cached(combined, &mut base_cache)?;
        let enc_out = self.quantize_audio_positions(enc_out, &sequence.audio_mask);
        let residual_in = self.residual_input(enc_out.clone(), feat_embed);
        let residual_out = self.residual_lm.forward_cached(residual_in, &mut residual_cache)?;
        let last = |x: Tensor<3>| x.slice_dim(1, t - 1..t).squeeze_dim::<2>(1);
        Ok(Generation {
            base_cache,
            residual_cache,
            lm_hidden: last(enc_out),
            residual_hidden: last(residual_out),
            // The previous patch conditions the DiT; at first the last prefix position's features.
            cond: last_patch(features).swap_dims(1, 2),
            settings,
            max_len,
            patches: 0,
            phase: Phase::Sample,
            failure: None,
        })
    }

    /// Patches `[n, P, D]` (row-major) to the latent track `[1, D, n·P]` the VAE decodes.
    pub fn patches_to_latents(&self, patches: &[f32]) -> Tensor<3> {
        let (p, d) = (self.config.patch_size, self.config.feat_dim);
        let n = patches.len() / (p * d);
        let data = TensorData::new(patches.to_vec(), [n * p, d]);
        Tensor::<2>::from_data(data, &self.device()).swap_dims(0, 1).unsqueeze_dim(0)
    }
}

/// `[1, T, P, D]` → `[1, P, D]` of the last position.
fn last_patch(features: Tensor<4>) -> Tensor<3> {
    let [_, t, p, d] = features.dims();
    features.slice_dim(1, t - 1..t).reshape([1, p, d])
}

fn first_existing(dir: &Path, names: &[&str]) -> std::path::PathBuf {
    names.iter().map(|n| dir.join(n)).find(|p| p.exists()).unwrap_or_else(|| dir.join(names[0]))
}
