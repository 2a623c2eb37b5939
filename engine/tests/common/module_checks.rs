//! One check per part of the model against its official goldens, on any device and to any
//! tolerance: the cpu tests run each as its own test, the wgpu tests run them all in f32 and f16.

use std::path::PathBuf;

use burn::tensor::{DType, Device, Tensor, TensorCreationOptions};
use voxcpm_engine::model::VoxCpm2;
use voxcpm_engine::model::audio_vae::DecoderStream;
use voxcpm_engine::model::cfm::{self, CfmSettings};
use voxcpm_engine::parity::TensorFile;

use voxcpm_engine::kernels::Products;

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

/// A fixture config loaded on the checks' device, with its goldens.
struct Loaded<'a> {
    config: &'a str,
    model: VoxCpm2,
    goldens: TensorFile,
    checks: &'a ModuleChecks,
}

impl Loaded<'_> {
    fn input<const D: usize>(&self, name: &str) -> Tensor<D> {
        tensor_on(&self.goldens, name, &self.checks.device)
    }

    fn expect(&self, what: &str, actual: Vec<f32>, golden: &str) {
        let expected = self.goldens.f32(golden).unwrap();
        assert_close(&format!("{} {what}", self.config), &actual, &expected, self.checks.tolerance);
    }
}

impl ModuleChecks {
    fn on_each_config(&self, check: impl Fn(&Loaded)) {
        for config in CONFIGS {
            let model = load_model_from(&self.checkpoints.join(config).join("checkpoint"), &self.device, self.products);
            check(&Loaded { config, model, goldens: goldens(config), checks: self });
        }
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
        self.on_each_config(|l| {
            let lm = if stack == "base_lm" { l.model.base_lm() } else { l.model.residual_lm() };
            let mut cache = lm.new_cache(l.model.config().max_length);
            let prefill = lm.forward_cached(l.input(&format!("{stack}.prefill.input")), &mut cache).unwrap();
            l.expect(&format!("{stack} prefill"), values(prefill), &format!("{stack}.prefill.output"));
            let position = l.goldens.i64(&format!("{stack}.step.position")).unwrap()[0] as usize;
            assert_eq!(cache.len(), position, "the first step writes right after the prefill");
            for step in ["step", "step2"] {
                let out = lm.step(l.input(&format!("{stack}.{step}.input")), &mut cache).unwrap();
                l.expect(&format!("{stack} {step}"), values(out), &format!("{stack}.{step}.output"));
            }
        });
    }

    pub fn loc_enc(&self) {
        self.on_each_config(|l| {
            l.expect("locenc", values(l.model.loc_enc().forward(l.input("locenc.input"))), "locenc.output")
        });
    }

    pub fn loc_dit(&self) {
        self.on_each_config(|l| {
            let (t, dt) = (l.goldens.f32("dit.t").unwrap(), l.goldens.f32("dit.dt").unwrap());
            let out = l.model.loc_dit().forward(l.input("dit.x"), l.input("dit.mu"), &t, l.input("dit.cond"), &dt);
            l.expect("dit", values(out), "dit.output");
        });
    }

    /// The whole Euler solve with CFG, at two step counts.
    pub fn cfm_solve(&self) {
        self.on_each_config(|l| {
            for prefix in ["cfm", "cfm5"] {
                let settings = CfmSettings {
                    timesteps: l.goldens.i64(&format!("{prefix}.n_timesteps")).unwrap()[0] as usize,
                    cfg_value: l.goldens.f32(&format!("{prefix}.cfg_value")).unwrap()[0],
                };
                let out = cfm::solve(
                    l.model.loc_dit(),
                    l.input(&format!("{prefix}.z")),
                    l.input(&format!("{prefix}.mu")),
                    l.input(&format!("{prefix}.cond")),
                    settings,
                );
                l.expect(prefix, values(out), &format!("{prefix}.output"));
            }
        });
    }

    /// FSQ runs in f32 on every device, so its input is given in f32 too: rounded to f16, it
    /// would move values across the quantiser's boundaries before FSQ ever saw them.
    pub fn fsq(&self) {
        self.on_each_config(|l| {
            let f32_options = TensorCreationOptions::new(l.checks.device.clone()).with_dtype(DType::F32);
            let out: Tensor<3> = l.model.fsq().forward(tensor_with(&l.goldens, "fsq.input", f32_options));
            l.expect("fsq", values(out), "fsq.output");
        });
    }

    pub fn stop_logits(&self) {
        self.on_each_config(|l| l.expect("stop", values(l.model.stop_logits(l.input("stop.input"))), "stop.logits"));
    }

    pub fn vae_encode(&self) {
        self.on_each_config(|l| {
            let out = l.model.audio_vae().encode(l.input("vae.encode.input")).unwrap();
            l.expect("vae encode", values(out), "vae.encode.output");
        });
    }

    pub fn vae_decode(&self) {
        self.on_each_config(|l| {
            l.expect("vae decode", values(l.model.audio_vae().decode(l.input("vae.decode.input"))), "vae.decode.output")
        });
    }

    /// Patch-by-patch decoding equals both the official stream and the offline decode.
    pub fn vae_stream(&self) {
        self.on_each_config(|l| {
            let latents: Tensor<3> = l.input("vae.decode.input");
            let frames = latents.dims()[2];
            let patch = l.model.config().patch_size;
            let mut stream = DecoderStream::new();
            let mut streamed = Vec::new();
            for start in (0..frames).step_by(patch) {
                let chunk = latents.clone().slice_dim(2, start..(start + patch).min(frames));
                streamed.extend(values(l.model.audio_vae().decode_chunk(chunk, &mut stream)));
            }
            l.expect("vae stream", streamed.clone(), "vae.stream.output");
            l.expect("stream vs offline", streamed, "vae.decode.output");
        });
    }
}
