//! One check per part of the model against its official goldens, on any device and to any
//! tolerance: the cpu tests run each as its own test, the wgpu tests run them all in f32 and f16.

use std::path::PathBuf;

use burn::tensor::{DType, Device, Tensor, TensorCreationOptions};
use voxcpm_engine::kernels::Products;
use voxcpm_engine::model::VoxCpm;
use voxcpm_engine::model::audio_vae::DecoderStream;
use voxcpm_engine::model::cfm::{self, CfmSettings};
use voxcpm_engine::testkit::parity::{TensorFile, relative_max_error};

use super::{CONFIGS, assert_close, goldens, load_model_from, tensor_on, tensor_with, values};

/// Where and how closely the modules must match.
pub struct ModuleChecks {
    pub device: Device,
    /// What the cpu's linear layers compute in (other devices ignore it).
    pub products: Products,
    pub tolerance: f32,
    /// Where each config's model is loaded from: `<checkpoints>/<config>/checkpoint`, the
    /// [`fixtures`](super::fixtures) or a converted copy of them (such as a bf16 one); goldens always come from
    /// the fixtures.
    pub checkpoints: PathBuf,
}

/// A fixture config loaded on the checks' device, with its goldens, and each check of one part
/// of the model on it.
pub struct Loaded<'a> {
    pub config: &'a str,
    pub model: VoxCpm,
    pub goldens: TensorFile,
    checks: &'a ModuleChecks,
}

impl Loaded<'_> {
    /// A golden tensor on the checks' device.
    pub fn input<const D: usize>(&self, name: &str) -> Tensor<D> {
        tensor_on(&self.goldens, name, &self.checks.device)
    }

    /// `actual` against the golden `golden`, to the checks' tolerance; the measured error is
    /// printed (`--nocapture` shows the margins).
    pub fn expect(&self, what: &str, actual: Vec<f32>, golden: &str) {
        let expected = self.goldens.f32(golden).unwrap();
        let what = format!("{} {what}", self.config);
        eprintln!("{what}: relative max error {:.2e}", relative_max_error(&actual, &expected));
        assert_close(&what, &actual, &expected, self.checks.tolerance);
    }

    /// Every check with a v1 golden: v1 has no official stateful stream, so the streamed decode
    /// is held to the offline one, and the encoder also pads a clip of no whole frames.
    pub fn all_v1(&self) {
        self.lm_stack("base_lm");
        self.lm_stack("residual_lm");
        self.loc_enc();
        self.loc_dit();
        self.cfm_solve();
        self.fsq();
        self.stop_logits();
        self.vae_encode();
        self.vae_encode_padded();
        self.vae_decode();
        self.vae_stream_matches_offline();
    }

    /// A prefill, then two cached steps, of "base_lm" or "residual_lm".
    pub fn lm_stack(&self, stack: &str) {
        let lm = if stack == "base_lm" { self.model.base_lm() } else { self.model.residual_lm() };
        let mut cache = lm.new_cache(self.model.config().max_length);
        let prefill = lm.forward_cached(self.input(&format!("{stack}.prefill.input")), &mut cache).unwrap();
        self.expect(&format!("{stack} prefill"), values(prefill), &format!("{stack}.prefill.output"));
        let position = self.goldens.i64(&format!("{stack}.step.position")).unwrap()[0] as usize;
        assert_eq!(cache.len(), position, "the first step writes right after the prefill");
        for step in ["step", "step2"] {
            let out = lm.step(self.input(&format!("{stack}.{step}.input")), &mut cache).unwrap();
            self.expect(&format!("{stack} {step}"), values(out), &format!("{stack}.{step}.output"));
        }
    }

    pub fn loc_enc(&self) {
        self.expect("locenc", values(self.model.loc_enc().forward(self.input("locenc.input"))), "locenc.output")
    }

    pub fn loc_dit(&self) {
        let (t, dt) = (self.goldens.f32("dit.t").unwrap(), self.goldens.f32("dit.dt").unwrap());
        let out =
            self.model.loc_dit().forward(self.input("dit.x"), self.input("dit.mu"), &t, self.input("dit.cond"), &dt);
        self.expect("dit", values(out), "dit.output");
    }

    /// The whole Euler solve with CFG, at two step counts.
    pub fn cfm_solve(&self) {
        for prefix in ["cfm", "cfm5"] {
            let settings = CfmSettings {
                timesteps: self.goldens.i64(&format!("{prefix}.n_timesteps")).unwrap()[0] as usize,
                cfg_value: self.goldens.f32(&format!("{prefix}.cfg_value")).unwrap()[0],
            };
            let out = cfm::solve(
                self.model.loc_dit(),
                self.input(&format!("{prefix}.z")),
                self.input(&format!("{prefix}.mu")),
                self.input(&format!("{prefix}.cond")),
                settings,
            );
            self.expect(prefix, values(out), &format!("{prefix}.output"));
        }
    }

    /// FSQ runs in f32 on every device, so its input is given in f32 too: rounded to f16, it
    /// would move values across the quantiser's boundaries before FSQ ever saw them.
    pub fn fsq(&self) {
        let f32_options = TensorCreationOptions::new(self.checks.device.clone()).with_dtype(DType::F32);
        let out: Tensor<3> = self.model.fsq().forward(tensor_with(&self.goldens, "fsq.input", f32_options));
        self.expect("fsq", values(out), "fsq.output");
    }

    pub fn stop_logits(&self) {
        self.expect("stop", values(self.model.stop_logits(self.input("stop.input"))), "stop.logits")
    }

    pub fn vae_encode(&self) {
        let out = self.model.audio_vae().encode(self.input("vae.encode.input")).unwrap();
        self.expect("vae encode", values(out), "vae.encode.output");
    }

    /// A clip of no whole frames, which the encoder pads on the right (v1 goldens only).
    pub fn vae_encode_padded(&self) {
        let out = self.model.audio_vae().encode(self.input("vae.encode_pad.input")).unwrap();
        self.expect("vae encode (padded)", values(out), "vae.encode_pad.output");
    }

    pub fn vae_decode(&self) {
        let out = self.model.audio_vae().decode(self.input("vae.decode.input"));
        self.expect("vae decode", values(out), "vae.decode.output")
    }

    /// Patch-by-patch decoding equals both the official stream and the offline decode.
    pub fn vae_stream(&self) {
        let streamed = self.streamed_decode();
        self.expect("vae stream", streamed.clone(), "vae.stream.output");
        self.expect("stream vs offline", streamed, "vae.decode.output");
    }

    /// Patch-by-patch decoding equals the offline decode (for v1, which has no official
    /// stateful stream to compare with).
    pub fn vae_stream_matches_offline(&self) {
        self.expect("stream vs offline", self.streamed_decode(), "vae.decode.output");
    }

    /// `vae.decode.input` decoded one patch at a time by one [`DecoderStream`].
    fn streamed_decode(&self) -> Vec<f32> {
        let latents: Tensor<3> = self.input("vae.decode.input");
        let frames = latents.dims()[2];
        let patch = self.model.config().patch_size;
        let mut stream = DecoderStream::new();
        let mut streamed = Vec::new();
        for start in (0..frames).step_by(patch) {
            let chunk = latents.clone().slice_dim(2, start..(start + patch).min(frames));
            streamed.extend(values(self.model.audio_vae().decode_chunk(chunk, &mut stream)));
        }
        streamed
    }
}

impl ModuleChecks {
    /// `check` on each of `configs` (fixture directories with a `modules.safetensors`).
    pub fn on_configs(&self, configs: &[&str], check: impl Fn(&Loaded)) {
        for &config in configs {
            let model = load_model_from(&self.checkpoints.join(config).join("checkpoint"), &self.device, self.products);
            check(&Loaded { config, model, goldens: goldens(config), checks: self });
        }
    }

    fn on_each_config(&self, check: impl Fn(&Loaded)) {
        self.on_configs(&CONFIGS, check)
    }

    /// Every check below, in order, on every fixture config.
    pub fn all(&self) {
        self.lm_stack("base_lm");
        self.lm_stack("residual_lm");
        self.loc_enc();
        self.loc_dit();
        self.cfm_solve();
        self.fsq();
        self.stop_logits();
        self.vae_encode();
        self.vae_decode();
        self.vae_stream();
    }

    /// A prefill, then two cached steps, of "base_lm" or "residual_lm".
    pub fn lm_stack(&self, stack: &str) {
        self.on_each_config(|l| l.lm_stack(stack));
    }

    pub fn loc_enc(&self) {
        self.on_each_config(|l| l.loc_enc());
    }

    pub fn loc_dit(&self) {
        self.on_each_config(|l| l.loc_dit());
    }

    /// The whole Euler solve with CFG, at two step counts.
    pub fn cfm_solve(&self) {
        self.on_each_config(|l| l.cfm_solve());
    }

    /// FSQ, its input in f32 (see [`Loaded::fsq`]).
    pub fn fsq(&self) {
        self.on_each_config(|l| l.fsq());
    }

    pub fn stop_logits(&self) {
        self.on_each_config(|l| l.stop_logits());
    }

    pub fn vae_encode(&self) {
        self.on_each_config(|l| l.vae_encode());
    }

    pub fn vae_decode(&self) {
        self.on_each_config(|l| l.vae_decode());
    }

    /// Patch-by-patch decoding equals both the official stream and the offline decode.
    pub fn vae_stream(&self) {
        self.on_each_config(|l| l.vae_stream());
    }
}
