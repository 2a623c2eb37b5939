//! The v1 architecture (VoxCPM-0.5B, VoxCPM1.5: `"architecture": "voxcpm"`, or no key) against
//! the official `VoxCPMModel`, on the goldens tools/golden recorded from it (V1_NOTES.md says
//! what each one exercises): `fixtures/v1_tiny` (0.5B flavour: `pytorch_model.bin`, 16 kHz,
//! patch 2) and `fixtures/v1_odd` (1.5 flavour with odd shapes: GQA 3, patch 3, VAE strides
//! [2, 3, 7], 44.1 kHz, no `architecture` key). The tolerances are VoxCPM2's.

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

use crate::common::module_checks::{Loaded, ModuleChecks};
use crate::common::*;
use burn::tensor::{Tensor, TensorData};
use voxcpm_engine::Error;
use voxcpm_engine::clip::ClipPadding;
use voxcpm_engine::config::{Architecture, AudioVaeConfig, VoxCpmConfig};
use voxcpm_engine::kernels::Products;
use voxcpm_engine::model::{CfmSettings, GenerationSettings, Sequence, VoxCpm};
use voxcpm_engine::noise::{ReplayNoise, SeededNoise};
use voxcpm_engine::pipeline::{SpeechRequest, TextToSpeech};
use voxcpm_engine::testkit::parity::{ParityCase, PipelineCase, TensorFile, ZeroShotCase, relative_max_error};
use voxcpm_engine::testkit::synthetic::pth::{PthTensor, write_state_dict};
use voxcpm_engine::testkit::synthetic::{Preset, preset_config};
use voxcpm_engine::weights::WeightFile;

fn checkpoint(config: &str) -> PathBuf {
    fixtures().join(config).join("checkpoint")
}

fn each_v1_config(check: impl Fn(&Loaded)) {
    let checks = ModuleChecks {
        device: device(),
        products: Products::F32,
        tolerance: MODULE_TOLERANCE,
        checkpoints: fixtures(),
    };
    checks.on_configs(&V1_CONFIGS, check);
}

/// [`assert_close`], printing the measured error (`--nocapture` shows the margins).
fn close(what: &str, actual: &[f32], expected: &[f32], tolerance: f32) {
    eprintln!("{what}: relative max error {:.2e}", relative_max_error(actual, expected));
    assert_close(what, actual, expected, tolerance);
}

// ---------------------------------------------------------------- modules

#[test]
fn v1_base_lm_prefill_and_steps_match() {
    each_v1_config(|l| l.lm_stack("base_lm"));
}

/// v1's residual LM keeps RoPE (v2's has none).
#[test]
fn v1_residual_lm_has_rope_and_matches() {
    each_v1_config(|l| {
        assert!(l.model.config().residual_lm().use_rope, "{}: v1's residual LM has RoPE", l.config);
        l.lm_stack("residual_lm");
    });
}

#[test]
fn v1_loc_enc_matches() {
    each_v1_config(|l| l.loc_enc());
}

/// `[mu + time, cond, x]` with `mu` `[N, H_dit]`: the v2 layout on the same weights fails here.
#[test]
fn v1_loc_dit_call_matches() {
    each_v1_config(|l| l.loc_dit());
}

#[test]
fn v1_cfm_solve_matches() {
    each_v1_config(|l| l.cfm_solve());
}

#[test]
fn v1_fsq_matches_at_its_width() {
    each_v1_config(|l| {
        let width = l.model.config().scalar_quantization_latent_dim;
        assert_eq!(width, if l.config == "v1_tiny" { 256 } else { 25 }, "{}", l.config);
        l.fsq();
    });
}

#[test]
fn v1_stop_logits_match() {
    each_v1_config(|l| l.stop_logits());
}

/// Whole frames, and a clip the encoder pads on the right; `v1_odd`'s odd strides 3 and 7 pad
/// one more zero on the left than v2's encoder.
#[test]
fn v1_vae_encode_matches_with_the_odd_stride_padding() {
    each_v1_config(|l| {
        l.vae_encode();
        l.vae_encode_padded();
    });
}

/// One rate in and out, no rate conditioning.
#[test]
fn v1_vae_decode_matches_at_its_single_rate() {
    each_v1_config(|l| {
        let vae = &l.model.config().audio_vae_config;
        assert_eq!((vae.out_sample_rate, vae.sr_bin_boundaries.as_ref()), (vae.sample_rate, None), "{}", l.config);
        l.vae_decode();
    });
}

#[test]
fn v1_streaming_decoder_equals_the_offline_decode() {
    each_v1_config(|l| l.vae_stream_matches_offline());
}

// ---------------------------------------------------------------- v1's glue

/// A `[1, T, 1]` mask of 1 at audio positions.
fn mask_tensor(mask: &[bool]) -> Tensor<3> {
    let values: Vec<f32> = mask.iter().map(|&a| if a { 1.0 } else { 0.0 }).collect();
    Tensor::<1>::from_data(TensorData::new(values, [mask.len()]), &device()).reshape([1, mask.len(), 1])
}

fn golden_mask(file: &TensorFile, name: &str) -> Vec<bool> {
    file.u8(name).unwrap().iter().map(|&m| m == 1).collect()
}

/// Prefill: `fsq(enc)·mask + enc·(1−mask) + mask·feat_embed`; a step: `fsq(lm) + curr_embed`.
#[test]
fn v1_residual_lm_input_is_a_sum() {
    each_v1_config(|l| {
        let model = &l.model;
        let features: Tensor<3> = l.input("inference.features");
        let embedded = model.embed_patches(features.unsqueeze_dim(0));
        l.expect("patch embedding", values(embedded), "residual_input.prefill.feat_embed");

        let mask = golden_mask(&l.goldens, "residual_input.prefill.audio_mask");
        let enc_out = model.quantize_audio_positions(l.input("residual_input.prefill.enc_out"), &mask);
        let feat_embed = l.input::<3>("residual_input.prefill.feat_embed") * mask_tensor(&mask);
        let prefill = model.residual_input(enc_out, feat_embed);
        l.expect("residual input (prefill)", values(prefill), "residual_input.prefill.output");

        let lm_hidden = model.fsq().forward(l.input::<2>("residual_input.step.lm_hidden"));
        let step = model.residual_input(lm_hidden, l.input("residual_input.step.curr_embed"));
        l.expect("residual input (step)", values(step), "residual_input.step.output");
    });
}

/// `lm_to_dit_proj(lm) + res_to_dit_proj(res)`, one `H_dit`-wide vector.
#[test]
fn v1_dit_condition_is_a_sum() {
    each_v1_config(|l| {
        let mu = l.model.dit_condition(l.input("mu.lm_hidden"), l.input("mu.res_hidden"));
        l.expect("mu", values(mu), "mu.output");
    });
}

/// One official `_inference` on a continuation-shaped track (min_len = max_len = 2, 10 steps,
/// cfg 2.0, as tools/golden/README.md records): its latents start with the last two prompt
/// patches.
#[test]
fn v1_inference_latents_start_with_two_context_patches() {
    each_v1_config(|l| {
        let (model, g) = (&l.model, &l.goldens);
        let (p, d) = (model.config().patch_size, model.config().feat_dim);
        let (tokens, mask, features) = (
            g.i64("inference.text_ids").unwrap(),
            golden_mask(g, "inference.audio_mask"),
            g.f32("inference.features").unwrap(),
        );
        let text: Vec<i64> = tokens.iter().zip(&mask).filter(|(_, a)| !**a).map(|(t, _)| *t).collect();
        let prompt = &features[text.len() * p * d..];
        let sequence = Sequence::build(&text, None, Some(prompt), p * d);
        assert_eq!((&sequence.tokens, &sequence.audio_mask, &sequence.features), (&tokens, &mask, &features));

        let settings =
            GenerationSettings { min_len: 2, max_len: 2, cfm: CfmSettings { timesteps: 10, cfg_value: 2.0 } };
        let mut noise = ReplayNoise::new(g.f32("inference.noise").unwrap(), p * d);
        let generated = model.generate(&sequence, settings, &mut noise, |_| ControlFlow::Continue(())).unwrap();
        let context = model.context_patches(&sequence);
        assert_eq!(context.len() / (p * d), g.i64("inference.context_len").unwrap()[0] as usize, "{}", l.config);
        let latents = values(model.patches_to_latents(&[context, &generated].concat()));
        close(
            &format!("{} inference latents", l.config),
            &latents,
            &g.f32("inference.latents").unwrap(),
            LATENT_TOLERANCE,
        );
    });
}

// ---------------------------------------------------------------- generation

/// Full length (`case_full`) and ended by the stop head (`v1_tiny/case_stop`: 7 patches under a
/// cap of 22; `v1_odd/case_default`: 5 under 16, the head's early "stop" ignored before min_len).
#[test]
fn v1_zero_shot_cases_match_the_reference() {
    for (config, case, patches) in [
        ("v1_tiny", "case_full", 5),
        ("v1_tiny", "case_stop", 7),
        ("v1_odd", "case_full", 5),
        ("v1_odd", "case_default", 5),
    ] {
        let path = fixtures().join(config).join(format!("{case}.safetensors"));
        let (case, out, model) = run_zero_shot_case(&checkpoint(config), &path, &device(), Products::F32);
        let name = format!("{config}/{}", path.file_stem().unwrap().to_string_lossy());
        assert_eq!(out.latent_shape[1], patches * model.config().patch_size, "{name}: patches generated");
        close(&format!("{name} latents"), &out.latents, &case.latents.as_ref().unwrap().0, LATENT_TOLERANCE);
        close(&format!("{name} audio"), &out.audio, case.audio.as_ref().unwrap(), AUDIO_TOLERANCE);
    }
}

/// A pipeline case with the engine loaded for it.
fn pipeline_case(config: &str, name: &str) -> (TextToSpeech, PipelineCase, TensorFile, PathBuf) {
    let path = fixtures().join(config).join(format!("{name}.safetensors"));
    let tts = TextToSpeech::load(&checkpoint(config), &load_options()).unwrap();
    let ParityCase::Pipeline(case) = ParityCase::read(&path).unwrap() else { panic!("{name} is a pipeline case") };
    (tts, case, TensorFile::read(&path).unwrap(), path)
}

/// The official decode of every latent minus the public path's cut: what `VoxCPM.generate`
/// returns (the fixtures' `audio`, which this also checks).
fn public_audio(file: &TensorFile) -> Vec<f32> {
    let cut = file.i64("cut_samples").unwrap()[0] as usize;
    let expected = file.f32("audio_uncut").unwrap()[cut..].to_vec();
    assert_eq!(expected, file.f32("audio").unwrap(), "the fixture's audio is its uncut decode after the cut");
    expected
}

/// Continuation with CJK prompt text (`v1_tiny`: three prompt patches, two of context;
/// `v1_odd`: one patch, whose fixed two-patch cut also eats the first generated patch) and the
/// streamed cases' offline runs: the track, the prompt's encoding, the latents (context first),
/// the full decode and the public path's audio.
#[test]
fn v1_pipeline_cases_match_the_public_generate() {
    for (config, name) in [
        ("v1_tiny", "pipeline_continuation"),
        ("v1_odd", "pipeline_continuation_short"),
        ("v1_tiny", "pipeline_streaming"),
        ("v1_odd", "pipeline_streaming"),
    ] {
        let (tts, case, file, path) = pipeline_case(config, name);
        let name = format!("{config}/{name}");
        let model = tts.model();
        let (p, d) = (model.config().patch_size, model.config().feat_dim);
        let prepared = tts.prepare(&case.request).unwrap();
        let sequence = &prepared.sequence;
        assert_eq!(sequence.tokens, file.i64("text_ids").unwrap(), "{name} token track");
        assert_eq!(sequence.audio_mask, golden_mask(&file, "audio_mask"), "{name} audio mask");
        close(&format!("{name} features"), &sequence.features, &file.f32("features").unwrap(), 1e-5);
        if let Some(prompt) = &case.request.prompt {
            let encoded = tts.encode_clip(&prompt.audio, ClipPadding::Left).unwrap();
            close(&format!("{name} prompt features"), &encoded, &file.f32("prompt_features").unwrap(), 1e-5);
        }

        let mut noise = ReplayNoise::new(case.noise.clone(), p * d);
        let generated = model.generate(sequence, prepared.settings, &mut noise, |_| ControlFlow::Continue(())).unwrap();
        let context = model.context_patches(sequence);
        assert_eq!(context.len() / (p * d), file.i64("context_len").unwrap()[0] as usize, "{name} context patches");
        let latents = model.patches_to_latents(&[context, &generated].concat());
        close(&format!("{name} latents"), &values(latents.clone()), &file.f32("latents").unwrap(), LATENT_TOLERANCE);
        let uncut = values(model.audio_vae().decode(latents));
        close(&format!("{name} uncut audio"), &uncut, &file.f32("audio_uncut").unwrap(), AUDIO_TOLERANCE);

        let out = case.run(&tts, &path).unwrap();
        close(&format!("{name} audio"), &out.audio, &public_audio(&file), AUDIO_TOLERANCE);
    }
}

/// Our stream is exact: its chunks put together equal the offline audio (the full decode after
/// the public cut), not the official stream, which re-decodes a cold 3-patch window per chunk and
/// differs from the full decode by up to 0.9 of the peak here (V1_NOTES.md §6).
#[test]
fn v1_stream_equals_the_offline_audio() {
    for (config, name) in
        [("v1_tiny", "pipeline_streaming"), ("v1_odd", "pipeline_streaming"), ("v1_odd", "pipeline_continuation_short")]
    {
        let (tts, case, file, _) = pipeline_case(config, name);
        let name = format!("{config}/{name}");
        let config = tts.model().config();
        let mut noise = ReplayNoise::new(case.noise.clone(), config.patch_size * config.feat_dim);
        let mut chunks = Vec::new();
        tts.speak_streaming(&case.request, &mut noise, |chunk| {
            chunks.push(chunk.to_vec());
            ControlFlow::Continue(())
        })
        .unwrap();
        let expected = public_audio(&file);
        assert!(chunks.iter().all(|c| c.len() == tts.patch_samples()), "{name}: one patch per chunk");
        assert_eq!(chunks.len() * tts.patch_samples(), expected.len(), "{name}: chunk count");
        close(&format!("{name} stream"), &chunks.concat(), &expected, AUDIO_TOLERANCE);
    }
}

/// v1's bad-case check counts the patches it returns, its context among them: 4 generated + 2
/// context patches reach a threshold of 2.5 per target token (2 tokens → 5) that 4 alone do not.
#[test]
fn v1_bad_case_check_counts_the_context_patches() {
    let (tts, case, _, _) = pipeline_case("v1_tiny", "pipeline_continuation");
    let mut request = case.request.clone();
    request.options.retry_badcase = true;
    request.options.retry_badcase_max_times = 2;
    request.options.retry_badcase_ratio_threshold = 2.5;
    let prepared = tts.prepare(&request).unwrap();
    assert_eq!((prepared.target_tokens, prepared.settings.max_len), (2, 4));
    let mut attempts = 0;
    tts.speak(&request, &mut SeededNoise::new(7), |progress| {
        attempts = attempts.max(progress.attempt);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(attempts, 2, "the first take counted 6 patches, a bad case");
}

#[test]
fn v1_output_rate_is_its_vae_rate() {
    for (config, rate, patch_samples) in [("v1_tiny", 16_000, 1280), ("v1_odd", 44_100, 126)] {
        let tts = TextToSpeech::load(&checkpoint(config), &load_options()).unwrap();
        assert_eq!((tts.output_sample_rate(), tts.patch_samples()), (rate, patch_samples), "{config}");
    }
}

#[test]
fn a_reference_clip_on_v1_is_refused_naming_voxcpm2() {
    let tts = TextToSpeech::load(&checkpoint("v1_tiny"), &load_options()).unwrap();
    let request = SpeechRequest { text: "hello".into(), reference_audio: Some(vec![0.1; 4000]), ..Default::default() };
    let refused = |result: voxcpm_engine::Result<()>| {
        let message = result.unwrap_err().to_string();
        assert!(message.contains("the reference clip needs a VoxCPM2 model"), "{message}");
    };
    refused(tts.speak(&request, &mut SeededNoise::new(1), |_| ControlFlow::Continue(())).map(drop));
    refused(tts.speak_streaming(&request, &mut SeededNoise::new(1), |_| ControlFlow::Continue(())));
}

// ---------------------------------------------------------------- LoRA

/// The v1 target list has no `fusion_concat_proj`: 27 layers, 54 tensors loaded, and the
/// fixture's extra key skipped.
#[test]
fn v1_lora_counts_and_output_match_and_unloading_restores_the_base() {
    let path = fixtures().join("v1_tiny/lora_case.safetensors");
    let case = ZeroShotCase::read(&path).unwrap();
    let file = TensorFile::read(&path).unwrap();
    let mut model = load_model("v1_tiny");
    let (loaded, skipped) = model.load_lora(&fixtures().join("v1_tiny/lora")).unwrap();
    assert_eq!(vec![loaded as i64, skipped as i64], file.i64("lora_counts").unwrap(), "official (loaded, skipped)");

    let out = case.run(&model, &path).unwrap();
    close("v1 LoRA latents", &out.latents, &case.latents.as_ref().unwrap().0, LATENT_TOLERANCE);
    close("v1 LoRA audio", &out.audio, case.audio.as_ref().unwrap(), AUDIO_TOLERANCE);

    model.unload_lora();
    let base = case.run(&model, &path).unwrap();
    close("v1 base latents", &base.latents, &file.f32("base_latents").unwrap(), LATENT_TOLERANCE);
}

// ---------------------------------------------------------------- loading

fn tensor_list(file: &WeightFile) -> Vec<(String, Vec<usize>)> {
    file.tensors.iter().map(|(name, t)| (name.clone(), t.shape.clone())).collect()
}

/// A zero-shot case's latents on the checkpoint in `dir`.
fn case_full_latents(dir: &Path) -> Vec<f32> {
    let path = fixtures().join("v1_tiny/case_full.safetensors");
    let model = VoxCpm::load(dir, &load_options()).unwrap();
    ZeroShotCase::read(&path).unwrap().run(&model, &path).unwrap().latents
}

/// The 0.5B ships `pytorch_model.bin`, a flat `torch.save` dict; the official loader also takes
/// one under `"state_dict"`. Both hold exactly the tensors the model asks for.
#[test]
fn v1_weights_load_from_pytorch_model_bin_flat_or_under_state_dict() {
    let dir = checkpoint("v1_tiny");
    assert!(!dir.join("model.safetensors").exists(), "the fixture has only the .bin");
    let bin = WeightFile::open(&dir.join("pytorch_model.bin")).unwrap();
    let config = VoxCpmConfig::load(&dir.join("config.json")).unwrap();
    let (mut inventory, _) = VoxCpm::tensor_inventory(&config);
    inventory.sort();
    assert_eq!(tensor_list(&bin), inventory);
    assert_eq!(inventory.len(), 107);

    let tmp = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
    }
    let tensors: Vec<PthTensor> =
        bin.tensors.iter().map(|(name, t)| PthTensor::float32(name, &t.shape, t.to_f32().unwrap())).collect();
    write_state_dict(&tmp.path().join("pytorch_model.bin"), &tensors).unwrap();
    assert_eq!(case_full_latents(tmp.path()), case_full_latents(&dir), "the same weights either way");
}

#[test]
fn the_architecture_key_picks_the_model_and_absent_means_v1() {
    let architecture = |config: &str| VoxCpmConfig::load(&checkpoint(config).join("config.json")).unwrap().architecture;
    let odd = std::fs::read_to_string(checkpoint("v1_odd").join("config.json")).unwrap();
    assert!(!odd.contains("\"architecture\""), "v1_odd's config has no architecture key");
    assert_eq!(architecture("v1_odd"), Architecture::V1);
    assert_eq!(architecture("v1_tiny"), Architecture::V1);
    assert_eq!(architecture("tiny"), Architecture::V2);

    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("config.json");
    let mut json: serde_json::Value = serde_json::from_str(&odd).unwrap();
    json["architecture"] = "VoxCPM".into();
    std::fs::write(&path, json.to_string()).unwrap();
    assert_eq!(VoxCpmConfig::load(&path).unwrap().architecture, Architecture::V1, "read lower-cased, as core.py does");
    json["architecture"] = "voxcpm3".into();
    std::fs::write(&path, json.to_string()).unwrap();
    match VoxCpmConfig::load(&path) {
        Err(e @ Error::UnsupportedArchitecture { .. }) => {
            let message = e.to_string();
            assert!(message.contains("\"voxcpm3\"") && message.contains("\"voxcpm\" and \"voxcpm2\""), "{message}");
        }
        other => panic!("expected an unsupported architecture, got {:?}", other.map(|c| c.architecture)),
    }
}

/// Every key with a class default left out: the defaults of `VoxCPMConfig` (and of
/// `AudioVAEConfig`) for v1, of `VoxCPM2Config` for v2.
#[test]
fn missing_keys_take_the_official_defaults_of_each_architecture() {
    let text = std::fs::read_to_string(checkpoint("v1_tiny").join("config.json")).unwrap();
    let mut json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let top = json.as_object_mut().unwrap();
    for key in
        ["patch_size", "residual_lm_num_layers", "scalar_quantization_latent_dim", "max_length", "audio_vae_config"]
    {
        top.remove(key).unwrap();
    }
    // The VAE's default latent is 64 wide, and the default max_length needs the positions.
    top.insert("feat_dim".into(), 64.into());
    let lm = top["lm_config"].as_object_mut().unwrap();
    lm.remove("use_mup").unwrap();
    lm.insert("max_position_embeddings".into(), 8192.into());

    let tmp = tempfile::tempdir().unwrap();
    let load = |architecture: &str| {
        let mut json = json.clone();
        json["architecture"] = architecture.into();
        let path = tmp.path().join("config.json");
        std::fs::write(&path, json.to_string()).unwrap();
        VoxCpmConfig::load(&path).unwrap()
    };

    let v1 = load("voxcpm");
    let sizes =
        |c: &VoxCpmConfig| (c.patch_size, c.residual_lm_num_layers, c.scalar_quantization_latent_dim, c.max_length);
    assert_eq!(sizes(&v1), (2, 6, 256, 4096));
    assert_eq!(v1.text_embed_scale(), 12.0, "use_mup defaults to true");
    assert!(v1.residual_lm().use_rope);
    assert_eq!(v1.base_lm().head_dim, 32 / 4, "no kv_channels: hidden / heads");
    let class_default = AudioVaeConfig {
        encoder_dim: 128,
        encoder_rates: vec![2, 5, 8, 8],
        latent_dim: 64,
        decoder_dim: 1536,
        decoder_rates: vec![8, 8, 5, 2],
        depthwise: true,
        sample_rate: 16_000,
        out_sample_rate: 16_000,
        use_noise_block: false,
        sr_bin_boundaries: None,
        cond_type: "scale_bias".into(),
        cond_out_layer: false,
    };
    assert_eq!(v1.audio_vae_config, class_default);

    let v2 = load("voxcpm2");
    assert_eq!(sizes(&v2), (4, 8, 512, 8192));
    let vae = &v2.audio_vae_config;
    assert_eq!((vae.decoder_dim, &vae.decoder_rates[..], vae.out_sample_rate), (2048, &[8, 6, 5, 2, 2, 2][..], 48_000));
}

/// The engine's synthetic checkpoints for the released v1 shapes: the config is the release's,
/// and the tensor list the writer takes from the model's loader is exactly the official one
/// (names, shapes, count; bf16 model and f32 VAE, as `write_checkpoint` writes them with
/// `WeightDtype::BF16`).
#[test]
fn v1_preset_checkpoints_have_the_official_tensor_lists() {
    for (preset, file) in [(Preset::VoxCpm05B, "preset_voxcpm_0_5b.json"), (Preset::VoxCpm15, "preset_voxcpm1_5.json")]
    {
        let official: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(fixtures().join(file)).unwrap()).unwrap();
        let config_json = preset_config(preset);
        let official_config: serde_json::Value =
            serde_json::from_str(official["config_json"].as_str().unwrap()).unwrap();
        assert_eq!(config_json, official_config, "{file}: the release's config.json");

        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("config.json");
        std::fs::write(&path, config_json.to_string()).unwrap();
        let config = VoxCpmConfig::load(&path).unwrap();
        assert_eq!(config.architecture, Architecture::V1);
        let (mut model, mut vae) = VoxCpm::tensor_inventory(&config);
        for (part, ours, dtype) in [("model", &mut model, "BF16"), ("audio_vae", &mut vae, "F32")] {
            let listed = official[part]["tensors"].as_array().unwrap();
            let theirs: Vec<(String, Vec<usize>)> = listed
                .iter()
                .map(|t| {
                    assert_eq!(t[2], dtype, "{file} {part}: {t}");
                    (t[0].as_str().unwrap().to_owned(), serde_json::from_value(t[1].clone()).unwrap())
                })
                .collect();
            ours.sort();
            assert_eq!(*ours, theirs, "{file} {part}");
            assert_eq!(ours.len() as u64, official[part]["count"].as_u64().unwrap());
            let params: usize = ours.iter().map(|(_, shape)| shape.iter().product::<usize>()).sum();
            assert_eq!(params as u64, official[part]["params"].as_u64().unwrap(), "{file} {part} parameters");
        }
    }
}
