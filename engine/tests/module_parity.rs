//! Each part of the model against the official implementation, on the fixture checkpoints.

mod common;

use burn::tensor::Tensor;
use common::*;
use voxcpm_engine::model::cfm::{self, CfmSettings};

/// Module outputs sit well inside the end-to-end latent tolerance.
const MODULE_TOLERANCE: f32 = 1e-5;

fn check_stack(config: &str, stack: &str) {
    let model = load_model(config);
    let g = goldens(config);
    let lm = if stack == "base_lm" { model.base_lm() } else { model.residual_lm() };
    let mut cache = lm.new_cache(model.config().max_length);
    let prefill = lm.forward_cached(tensor(&g, &format!("{stack}.prefill.input")), &mut cache).unwrap();
    let expected = g.f32(&format!("{stack}.prefill.output")).unwrap();
    assert_close(&format!("{config} {stack} prefill"), &values(prefill), &expected, MODULE_TOLERANCE);

    let position = g.i64(&format!("{stack}.step.position")).unwrap()[0] as usize;
    assert_eq!(cache.len(), position, "the first step writes right after the prefill");
    for step in ["step", "step2"] {
        let out = lm.step(tensor(&g, &format!("{stack}.{step}.input")), &mut cache).unwrap();
        let expected = g.f32(&format!("{stack}.{step}.output")).unwrap();
        assert_close(&format!("{config} {stack} {step}"), &values(out), &expected, MODULE_TOLERANCE);
    }
}

#[test]
fn base_lm_prefill_and_steps_match() {
    for config in CONFIGS {
        check_stack(config, "base_lm");
    }
}

#[test]
fn residual_lm_prefill_and_steps_match() {
    for config in CONFIGS {
        check_stack(config, "residual_lm");
    }
}

#[test]
fn loc_enc_matches() {
    for config in CONFIGS {
        let (model, g) = (load_model(config), goldens(config));
        let out = model.loc_enc().forward(tensor(&g, "locenc.input"));
        assert_close(&format!("{config} locenc"), &values(out), &g.f32("locenc.output").unwrap(), MODULE_TOLERANCE);
    }
}

#[test]
fn loc_dit_call_matches() {
    for config in CONFIGS {
        let (model, g) = (load_model(config), goldens(config));
        let (t, dt) = (g.f32("dit.t").unwrap(), g.f32("dit.dt").unwrap());
        let out = model.loc_dit().forward(tensor(&g, "dit.x"), tensor(&g, "dit.mu"), &t, tensor(&g, "dit.cond"), &dt);
        assert_close(&format!("{config} dit"), &values(out), &g.f32("dit.output").unwrap(), MODULE_TOLERANCE);
    }
}

#[test]
fn cfm_solve_matches() {
    for config in CONFIGS {
        let (model, g) = (load_model(config), goldens(config));
        for prefix in ["cfm", "cfm5"] {
            let settings = CfmSettings {
                timesteps: g.i64(&format!("{prefix}.n_timesteps")).unwrap()[0] as usize,
                cfg_value: g.f32(&format!("{prefix}.cfg_value")).unwrap()[0],
            };
            let out = cfm::solve(
                model.loc_dit(),
                tensor(&g, &format!("{prefix}.z")),
                tensor(&g, &format!("{prefix}.mu")),
                tensor(&g, &format!("{prefix}.cond")),
                settings,
            );
            let expected = g.f32(&format!("{prefix}.output")).unwrap();
            assert_close(&format!("{config} {prefix}"), &values(out), &expected, MODULE_TOLERANCE);
        }
    }
}

#[test]
fn fsq_matches() {
    for config in CONFIGS {
        let (model, g) = (load_model(config), goldens(config));
        let out: Tensor<3> = model.fsq().forward(tensor(&g, "fsq.input"));
        assert_close(&format!("{config} fsq"), &values(out), &g.f32("fsq.output").unwrap(), MODULE_TOLERANCE);
    }
}

#[test]
fn stop_logits_match() {
    for config in CONFIGS {
        let (model, g) = (load_model(config), goldens(config));
        let out = model.stop_logits(tensor(&g, "stop.input"));
        assert_close(&format!("{config} stop"), &values(out), &g.f32("stop.logits").unwrap(), MODULE_TOLERANCE);
    }
}

#[test]
fn vae_encode_matches() {
    for config in CONFIGS {
        let (model, g) = (load_model(config), goldens(config));
        let out = model.audio_vae().encode(tensor(&g, "vae.encode.input")).unwrap();
        let expected = g.f32("vae.encode.output").unwrap();
        assert_close(&format!("{config} vae encode"), &values(out), &expected, MODULE_TOLERANCE);
    }
}

#[test]
fn vae_decode_matches() {
    for config in CONFIGS {
        let (model, g) = (load_model(config), goldens(config));
        let out = model.audio_vae().decode(tensor(&g, "vae.decode.input"));
        let expected = g.f32("vae.decode.output").unwrap();
        assert_close(&format!("{config} vae decode"), &values(out), &expected, MODULE_TOLERANCE);
    }
}

#[test]
fn streaming_vae_decode_matches_the_official_stream_and_offline_decode() {
    use voxcpm_engine::model::audio_vae::DecoderStream;
    for config in CONFIGS {
        let (model, g) = (load_model(config), goldens(config));
        let latents: Tensor<3> = tensor(&g, "vae.decode.input");
        let frames = latents.dims()[2];
        let patch = model.config().patch_size;
        let mut stream = DecoderStream::new();
        let mut streamed = Vec::new();
        for start in (0..frames).step_by(patch) {
            let chunk = latents.clone().slice_dim(2, start..(start + patch).min(frames));
            streamed.extend(values(model.audio_vae().decode_chunk(chunk, &mut stream)));
        }
        let official = g.f32("vae.stream.output").unwrap();
        assert_close(&format!("{config} vae stream"), &streamed, &official, MODULE_TOLERANCE);
        let offline = g.f32("vae.decode.output").unwrap();
        assert_close(&format!("{config} stream vs offline"), &streamed, &offline, MODULE_TOLERANCE);
    }
}
