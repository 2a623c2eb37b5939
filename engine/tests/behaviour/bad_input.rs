//! Broken checkpoints and cases give a clear error naming the file and key, never a panic.

use std::path::Path;

use crate::common::damage::*;
use crate::common::*;
use safetensors::Dtype;
use voxcpm_engine::Error;
use voxcpm_engine::config::VoxCpmConfig;
use voxcpm_engine::model::VoxCpm;
use voxcpm_engine::testkit::parity::ZeroShotCase;

fn load_error(dir: &Path) -> String {
    match VoxCpm::load(dir, &load_options()) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_untouched_copy_loads() {
    let (_tmp, dir) = scratch_checkpoint();
    VoxCpm::load(&dir, &load_options()).unwrap();
}

#[test]
fn truncated_safetensors_is_reported_with_its_path() {
    let (_tmp, dir) = scratch_checkpoint();
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let message = load_error(&dir);
    assert!(message.contains("model.safetensors"), "{message}");
}

#[test]
fn garbage_safetensors_is_reported() {
    let (_tmp, dir) = scratch_checkpoint();
    std::fs::write(dir.join("model.safetensors"), b"definitely not a tensor file").unwrap();
    let message = load_error(&dir);
    assert!(message.contains("model.safetensors") && message.contains("not a valid safetensors"), "{message}");
}

#[test]
fn missing_tensor_is_named() {
    let (_tmp, dir) = scratch_checkpoint();
    rewrite_model(&dir, |t| t.retain(|(n, ..)| n != "stop_head.weight"));
    let message = load_error(&dir);
    assert!(message.contains("missing tensor stop_head.weight"), "{message}");
}

#[test]
fn wrong_shape_is_named_with_both_shapes() {
    let (_tmp, dir) = scratch_checkpoint();
    rewrite_model(&dir, |t| {
        let entry = t.iter_mut().find(|(n, ..)| n == "fsq_layer.in_proj.bias").unwrap();
        entry.2 = vec![entry.2[0] / 2, 2];
    });
    let message = load_error(&dir);
    assert!(message.contains("tensor fsq_layer.in_proj.bias has shape"), "{message}");
}

#[test]
fn unexpected_tensor_is_named_and_all_problems_are_listed() {
    let (_tmp, dir) = scratch_checkpoint();
    rewrite_model(&dir, |t| {
        t.push(("base_lm.layers.99.mystery".into(), Dtype::F32, vec![1], vec![0; 4]));
        t.retain(|(n, ..)| n != "lm_to_dit_proj.bias");
    });
    let message = load_error(&dir);
    assert!(message.contains("unexpected tensor base_lm.layers.99.mystery"), "{message}");
    assert!(message.contains("missing tensor lm_to_dit_proj.bias"), "{message}");
}

#[test]
fn unknown_architecture_is_named() {
    let (_tmp, dir) = scratch_checkpoint();
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).unwrap().replace("\"voxcpm2\"", "\"voxcpm9\"");
    std::fs::write(&path, text).unwrap();
    let err = VoxCpm::load(&dir, &load_options()).unwrap_err();
    assert!(matches!(err, Error::UnsupportedArchitecture { ref found, .. } if found == "voxcpm9"), "{err}");
}

#[test]
fn config_that_breaks_a_constraint_is_rejected() {
    let (_tmp, dir) = scratch_checkpoint();
    let path = dir.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    config["lm_config"]["num_key_value_heads"] = 3.into();
    std::fs::write(&path, config.to_string()).unwrap();
    let message = load_error(&dir);
    assert!(message.contains("config.json") && message.contains("num_key_value_heads"), "{message}");
}

#[test]
fn missing_and_corrupt_vae_files_are_named() {
    let (_tmp, dir) = scratch_checkpoint();
    std::fs::write(dir.join("audiovae.pth"), b"PK\x03\x04 broken zip").unwrap();
    let message = load_error(&dir);
    assert!(message.contains("audiovae.pth"), "{message}");
    std::fs::remove_file(dir.join("audiovae.pth")).unwrap();
    let message = load_error(&dir);
    assert!(message.contains("audiovae"), "{message}");
}

#[test]
fn a_case_for_another_model_is_rejected_with_the_mismatch() {
    let model = load_model("tiny");
    let case_path = fixtures().join("odd/case_full.safetensors");
    let case = ZeroShotCase::read(&case_path).unwrap();
    let err = case.run(&model, &case_path).unwrap_err().to_string();
    assert!(err.contains("case_full.safetensors") && err.contains("feat_dim"), "{err}");
}

#[test]
fn a_case_with_too_little_noise_is_rejected() {
    let case_path = fixtures().join("tiny/case_full.safetensors");
    let mut case = ZeroShotCase::read(&case_path).unwrap();
    let per_patch = case.noise_shape[2] * case.noise_shape[3];
    case.noise.truncate(per_patch);
    case.noise_shape[0] = 1;
    let err = case.run(&load_model("tiny"), &case_path).unwrap_err().to_string();
    assert!(err.contains("noise covers 1 patches"), "{err}");
}

#[test]
fn missing_tensors_that_get_reshaped_are_reported_not_panicked_on() {
    let (_tmp, dir) = scratch_checkpoint();
    rewrite_model(&dir, |t| t.retain(|(n, ..)| n != "feat_encoder.special_token"));
    let message = load_error(&dir);
    assert!(message.contains("missing tensor feat_encoder.special_token"), "{message}");
}

/// Each value would once have panicked ("capacity overflow"), aborted on allocation or made the
/// model produce NaN; each is now a config error naming the key and value, found before any
/// tensor is built.
#[test]
fn every_absurd_config_value_is_named() {
    use serde_json::json;
    let cases = [
        ("/scalar_quantization_scale", json!(0), "scalar_quantization_scale = 0"),
        ("/residual_lm_num_layers", json!(9223372036854775808u64), "residual_lm_num_layers = 9223372036854775808"),
        ("/lm_config/rms_norm_eps", json!(0.0), "lm_config.rms_norm_eps = 0"),
        ("/lm_config/rms_norm_eps", json!(-1e-5), "lm_config.rms_norm_eps = -0.00001"),
        ("/lm_config/rope_theta", json!(0), "lm_config.rope_theta = 0"),
        ("/lm_config/scale_emb", json!("12"), "lm_config.scale_emb"),
        ("/lm_config/hidden_size", json!(-1), "lm_config.hidden_size"),
        ("/lm_config/hidden_size", json!(1u64 << 40), "lm_config.hidden_size = 1099511627776"),
        ("/lm_config/intermediate_size", json!(0), "lm_config.intermediate_size = 0"),
        ("/lm_config/num_hidden_layers", json!(100_000), "lm_config.num_hidden_layers = 100000"),
        ("/lm_config/num_key_value_heads", json!(0), "lm_config.num_key_value_heads = 0"),
        ("/lm_config/vocab_size", json!(50), "lm_config.vocab_size = 50"),
        ("/lm_config/kv_channels", json!(0), "lm_config.kv_channels = 0"),
        ("/lm_config/rope_scaling/original_max_position_embeddings", json!(1), "original_max_position_embeddings = 1"),
        ("/lm_config/rope_scaling/short_factor/3", json!(0.0), "short_factor[3] = 0"),
        ("/lm_config/rope_scaling/long_factor", json!([1.0]), "long_factor has 1 values"),
        ("/max_length", json!(0), "max_length = 0"),
        (
            "/lm_config/max_position_embeddings",
            json!(3),
            "max_position_embeddings = 3 is shorter than the 128 positions",
        ),
        ("/max_length", json!(129), "max_position_embeddings = 128 is shorter than the 129 positions"),
        ("/max_length", json!(1u64 << 40), "max_length = 1099511627776"),
        ("/patch_size", json!(0), "patch_size = 0"),
        ("/feat_dim", json!(1_000_000), "feat_dim = 1000000"),
        ("/encoder_config/num_layers", json!(0), "encoder_config.num_layers = 0"),
        ("/dit_config/hidden_dim", json!(31), "dit_config.hidden_dim = 31 must be even"),
        ("/audio_vae_config/decoder_rates", json!([0]), "audio_vae_config.decoder_rates[0] = 0"),
        ("/audio_vae_config/encoder_rates", json!([2, 1_000_000]), "audio_vae_config.encoder_rates[1] = 1000000"),
        ("/audio_vae_config/encoder_rates", json!([]), "audio_vae_config.encoder_rates (its length) = 0"),
        ("/audio_vae_config/encoder_dim", json!(16384), "the VAE encoder's stage 0 convolution"),
        ("/audio_vae_config/decoder_dim", json!(100), "decoder_dim = 100 is not divisible by 2^6"),
        ("/audio_vae_config/sample_rate", json!(0), "audio_vae_config.sample_rate = 0"),
        ("/audio_vae_config/out_sample_rate", json!(1u64 << 33), "audio_vae_config.out_sample_rate"),
    ];
    for (pointer, value, expected) in cases {
        let (_tmp, dir) = scratch_checkpoint();
        set_config_value(&dir, pointer, value.clone());
        match VoxCpm::load(&dir, &load_options()) {
            Err(Error::Config { path, message }) => {
                assert!(path.ends_with("config.json"), "{pointer}: {}", path.display());
                assert!(message.contains(expected), "{pointer} = {value}: {message}");
            }
            other => panic!("{pointer} = {value}: expected a config error, got {:?}", other.map(|_| "a model")),
        }
    }
    let (_tmp, dir) = scratch_checkpoint();
    set_config_value(&dir, "/lm_config/kv_channels", serde_json::Value::Null);
    set_config_value(&dir, "/lm_config/num_attention_heads", json!(128));
    let message = load_error(&dir);
    assert!(message.contains("hidden size 64 is smaller than its 128 heads"), "{message}");
}

/// Sizes within the limits that contradict the weights: the loader's stand-ins for the
/// mismatched tensors are cheap, and the answer is the list of mismatches.
#[test]
fn large_sizes_that_contradict_the_weights_are_reported_as_mismatches() {
    let (_tmp, dir) = scratch_checkpoint();
    set_config_value(&dir, "/lm_config/intermediate_size", serde_json::json!(32768));
    let message = load_error(&dir);
    assert!(message.contains("mlp.up_proj.weight has shape"), "{message}");
}

#[test]
fn trailing_garbage_after_the_config_is_named() {
    let (_tmp, dir) = scratch_checkpoint();
    let path = dir.join("config.json");
    let text = std::fs::read_to_string(&path).unwrap() + "}";
    std::fs::write(&path, text).unwrap();
    let message = load_error(&dir);
    assert!(message.contains("config.json") && message.contains("trailing characters"), "{message}");
}

/// A truncated tokenizer.json once panicked inside the tokenizers crate.
#[test]
fn truncated_or_foreign_tokenizer_files_are_named() {
    use voxcpm_engine::tokenizer::TextTokenizer;
    let (_tmp, dir) = scratch_checkpoint();
    let path = dir.join("tokenizer.json");
    let text = std::fs::read_to_string(&path).unwrap();
    for (what, damaged) in [
        ("truncated in its decoder", text[..text.find("\"decoder\"").unwrap() + 20].to_owned()),
        ("truncated", text[..text.len() / 2].to_owned()),
        ("not a tokenizer", "{\"decoder\": {\"type\": 7}}".to_owned()),
    ] {
        std::fs::write(&path, damaged).unwrap();
        match TextTokenizer::load(&path) {
            Err(Error::Tokenizer { path: named, message }) => assert_eq!(named, path, "{what}: {message}"),
            Err(other) => panic!("{what}: expected a tokenizer error, got {other}"),
            Ok(_) => panic!("{what}: loaded"),
        }
    }
    std::fs::write(&path, [0xff, 0xfe, 0x00]).unwrap();
    let message = TextTokenizer::load(&path).err().expect("non-UTF-8 bytes load").to_string();
    assert!(message.contains("tokenizer.json") && message.contains("not valid JSON"), "{message}");
    // A missing tokenizer_config.json means the class defaults; an unreadable one is an error.
    std::fs::write(&path, &text).unwrap();
    let config = dir.join("tokenizer_config.json");
    std::fs::remove_file(&config).unwrap();
    TextTokenizer::load(&path).unwrap();
    std::fs::write(&config, [b'{', 0xff, b'}']).unwrap();
    let message = TextTokenizer::load(&path).err().expect("a non-UTF-8 config loads").to_string();
    assert!(message.contains("tokenizer_config.json") && message.contains("UTF-8"), "{message}");
}

/// Damaged weights that load fine but compute NaN end the request with an error naming the
/// likely cause; no audio comes out, and the bad-case retry does not run it again.
#[test]
fn a_model_that_computes_nan_fails_the_request_instead_of_speaking_garbage() {
    use std::ops::ControlFlow;
    use voxcpm_engine::noise::SeededNoise;
    use voxcpm_engine::pipeline::{SpeechRequest, TextToSpeech};
    for (tensor, stage) in [("lm_to_dit_proj.weight", "a generated patch"), ("stop_head.weight", "the stop head")] {
        let (_tmp, dir) = scratch_checkpoint();
        poison_tensor(&dir, tensor);
        let tts = TextToSpeech::load(&dir, &load_options()).unwrap();
        let request = SpeechRequest { text: "hello".into(), ..Default::default() };
        let mut attempts = Vec::new();
        let result = tts.speak(&request, &mut SeededNoise::new(1), |p| {
            attempts.push(p.attempt);
            ControlFlow::Continue(())
        });
        match result {
            Err(Error::NonFinite { stage: named }) => assert_eq!(named, stage, "{tensor}"),
            other => panic!("{tensor}: expected a non-finite error, got {:?}", other.map(|a| a.len())),
        }
        assert!(attempts.iter().all(|&a| a == 1), "{tensor}: retried: {attempts:?}");
        let mut chunks = Vec::new();
        let streamed = tts.speak_streaming(&request, &mut SeededNoise::new(1), |chunk| {
            chunks.push(chunk.iter().all(|x| x.is_finite()));
            ControlFlow::Continue(())
        });
        assert!(matches!(streamed, Err(Error::NonFinite { .. })), "{tensor}: {streamed:?}");
        // A NaN patch is never decoded; the stop head is read after its patch was streamed.
        let expected_chunks = if stage == "the stop head" { vec![true] } else { vec![] };
        assert_eq!(chunks, expected_chunks, "{tensor}: chunks (finite?) delivered");
    }
}

#[test]
fn a_vae_that_decodes_nan_fails_the_request() {
    use std::ops::ControlFlow;
    use voxcpm_engine::noise::SeededNoise;
    use voxcpm_engine::pipeline::{SpeechRequest, TextToSpeech};
    let (_tmp, dir) = scratch_checkpoint();
    poison_vae_decoder(&dir);
    let tts = TextToSpeech::load(&dir, &load_options()).unwrap();
    let request = SpeechRequest { text: "hello".into(), ..Default::default() };
    let whole = tts.speak(&request, &mut SeededNoise::new(1), |_| ControlFlow::Continue(()));
    assert!(matches!(whole, Err(Error::NonFinite { stage: "the decoded audio" })), "{:?}", whole.map(|a| a.len()));
    let streamed = tts.speak_streaming(&request, &mut SeededNoise::new(1), |_| ControlFlow::Continue(()));
    assert!(matches!(streamed, Err(Error::NonFinite { stage: "the decoded audio" })), "{streamed:?}");
}

// ---------------------------------------------------------------- v1 and VoxCPM2 keys mixed

/// The config error of a scratch copy of `config` after `edit`: it names config.json.
fn config_error(config: &str, edit: impl FnOnce(&mut serde_json::Value)) -> String {
    let (_tmp, dir) = scratch_copy(config);
    edit_config(&dir, edit);
    match VoxCpm::load(&dir, &load_options()) {
        Err(Error::Config { path, message }) => {
            assert!(path.ends_with("config.json"), "{}", path.display());
            message
        }
        other => panic!("{config}: expected a config error, got {:?}", other.map(|_| "a model")),
    }
}

/// VoxCPM2 keys with values that would matter there, in a v1 config (declared, or meant by the
/// absent `architecture` key): each named, with the architecture it belongs to.
#[test]
fn a_v1_config_with_voxcpm2_keys_that_would_matter_is_refused_naming_each() {
    use serde_json::json;
    type Edit = fn(&mut serde_json::Value);
    let cases: [(Edit, &str); 4] = [
        (|c| c["residual_lm_no_rope"] = json!(true), "residual_lm_no_rope = true belongs to a \"voxcpm2\" config"),
        (
            |c| c["audio_vae_config"]["out_sample_rate"] = json!(48000),
            "audio_vae_config.out_sample_rate = 48000 belongs to a \"voxcpm2\" config",
        ),
        (
            |c| c["audio_vae_config"]["sr_bin_boundaries"] = json!([20000, 30000, 40000]),
            "audio_vae_config.sr_bin_boundaries = [20000, 30000, 40000] belongs to a \"voxcpm2\" config",
        ),
        (
            |c| c["dit_config"]["dit_mean_mode"] = json!(true),
            "dit_config.dit_mean_mode = true belongs to a \"voxcpm2\"",
        ),
    ];
    for (config, architecture) in [
        ("v1_tiny", "this config's architecture is \"voxcpm\""),
        ("v1_odd", "this config has no architecture key, which means \"voxcpm\""),
    ] {
        for (edit, expected) in cases {
            let message = config_error(config, edit);
            assert!(message.contains(expected) && message.contains(architecture), "{config}: {message}");
        }
    }
    // All of them at once: every key is listed.
    let message = config_error("v1_tiny", |c| cases.iter().for_each(|(edit, _)| edit(c)));
    assert!(cases.iter().all(|(_, expected)| message.contains(expected)), "{message}");
}

#[test]
fn a_voxcpm2_config_with_a_v1_key_that_would_matter_is_refused() {
    let message = config_error("tiny", |c| c["dit_mean_mode"] = true.into());
    assert!(message.contains("dit_mean_mode = true belongs to a \"voxcpm\" config"), "{message}");
    assert!(message.contains("this config's architecture is \"voxcpm2\""), "{message}");
}

/// Mean mode in its own class's place computes a time step the engine does not implement.
#[test]
fn mean_mode_is_refused_as_unsupported_in_either_architecture() {
    let v1 = config_error("v1_odd", |c| c["dit_mean_mode"] = true.into());
    assert!(v1.contains("dit_mean_mode = true is not supported"), "{v1}");
    let v2 = config_error("tiny", |c| c["dit_config"]["dit_mean_mode"] = true.into());
    assert!(v2.contains("dit_config.dit_mean_mode = true is not supported"), "{v2}");
}

/// What pydantic ignores and changes nothing is accepted: unknown keys, the other class's keys
/// at values that agree with this one, and VoxCPM2's released `dit_config.mean_mode` (a key its
/// class does not read).
#[test]
fn keys_that_change_nothing_are_accepted_as_the_official_loader_accepts_them() {
    use serde_json::json;
    let (_tmp, dir) = scratch_copy("v1_odd");
    let untouched = VoxCpmConfig::load(&dir.join("config.json")).unwrap();
    edit_config(&dir, |c| {
        c["residual_lm_no_rope"] = json!(false);
        c["dit_mean_mode"] = json!(false);
        c["a_key_of_a_later_release"] = json!({ "anything": [1, 2] });
        c["audio_vae_config"]["out_sample_rate"] = json!(44100);
        c["audio_vae_config"]["sr_bin_boundaries"] = json!(null);
        c["audio_vae_config"]["cond_type"] = json!("scale_bias");
        c["dit_config"]["mean_mode"] = json!(true);
    });
    let edited = VoxCpmConfig::load(&dir.join("config.json")).unwrap();
    assert_eq!(format!("{edited:?}"), format!("{untouched:?}"), "the same model");
    VoxCpm::load(&dir, &load_options()).unwrap();

    let (_tmp, dir) = scratch_checkpoint();
    edit_config(&dir, |c| {
        c["dit_mean_mode"] = json!(false);
        c["dit_config"]["mean_mode"] = json!(true);
        c["dit_config"]["dit_mean_mode"] = json!(false);
        c["a_key_of_a_later_release"] = json!(7);
    });
    VoxCpm::load(&dir, &load_options()).unwrap();
}

#[test]
fn an_unknown_architecture_in_a_v1_config_is_named() {
    let (_tmp, dir) = scratch_copy("v1_odd");
    edit_config(&dir, |c| c["architecture"] = "voxcpm1.5".into());
    match VoxCpm::load(&dir, &load_options()) {
        Err(e @ Error::UnsupportedArchitecture { .. }) => {
            let message = e.to_string();
            assert!(message.contains("\"voxcpm1.5\"") && message.contains("config.json"), "{message}");
        }
        other => panic!("expected an unsupported architecture, got {:?}", other.map(|_| "a model")),
    }
}

/// The weights give the architecture away when the config's key is wrong, and one error names
/// the problems of both files. A VoxCPM2 config over v1 weights: the VAE lacks VoxCPM2's
/// output-rate conditioning and the model lacks `fusion_concat_proj`. A v1 config over VoxCPM2
/// weights: the VAE's conditioning tensors and the model's `fusion_concat_proj` are unexpected.
#[test]
fn weights_of_the_other_architecture_are_named_by_their_tensors() {
    let (_tmp, dir) = scratch_copy("v1_odd");
    edit_config(&dir, |c| c["architecture"] = "voxcpm2".into());
    let message = load_error(&dir);
    assert!(message.contains("audiovae.pth: missing tensor decoder.sr_bin_boundaries"), "{message}");
    assert!(
        message.contains("model.safetensors") && message.contains("missing tensor fusion_concat_proj.weight"),
        "{message}"
    );
    edit_config(&dir, |c| {
        c["audio_vae_config"]["sr_bin_boundaries"] = serde_json::Value::Null;
        c["audio_vae_config"]["out_sample_rate"] = 44100.into();
    });
    let message = load_error(&dir);
    assert!(
        message.contains("model.safetensors") && message.contains("missing tensor fusion_concat_proj.weight"),
        "{message}"
    );

    let (_tmp, dir) = scratch_checkpoint();
    edit_config(&dir, |c| {
        c["architecture"] = "voxcpm".into();
        let top = c.as_object_mut().unwrap();
        top.remove("residual_lm_no_rope");
        let vae = top["audio_vae_config"].as_object_mut().unwrap();
        vae.remove("out_sample_rate");
        vae.remove("sr_bin_boundaries");
    });
    let message = load_error(&dir);
    assert!(message.contains("audiovae.pth: unexpected tensor decoder.sr_bin_boundaries"), "{message}");
    assert!(message.contains("unexpected tensor fusion_concat_proj.weight"), "{message}");
}

// ---------------------------------------------------------------- a damaged pytorch_model.bin

/// The VoxCPM-0.5B layout (`v1_tiny` ships only `pytorch_model.bin`), damaged five ways: each a
/// weight-file error naming it, never a panic.
#[test]
fn a_damaged_pytorch_model_bin_is_named() {
    type Damage = fn(&Path);
    let damages: [(&str, Damage); 5] = [
        ("truncated", |bin| {
            let bytes = std::fs::read(bin).unwrap();
            std::fs::write(bin, &bytes[..bytes.len() / 2]).unwrap();
        }),
        ("not a zip", |bin| std::fs::write(bin, b"definitely not a torch checkpoint").unwrap()),
        ("garbage pickle", |bin| rewrite_zip_entry(bin, "/data.pkl", |pickle| vec![0xff; pickle.len()])),
        ("truncated pickle", |bin| rewrite_zip_entry(bin, "/data.pkl", |pickle| pickle[..pickle.len() / 2].to_vec())),
        // A well-formed pickle of the number 7 (protocol 2): no dict of tensors.
        ("a pickle of no tensors", |bin| rewrite_zip_entry(bin, "/data.pkl", |_| b"\x80\x02K\x07.".to_vec())),
    ];
    for (what, damage) in damages {
        let (_tmp, dir) = scratch_copy("v1_tiny");
        let bin = dir.join("pytorch_model.bin");
        damage(&bin);
        let error = VoxCpm::load(&dir, &load_options()).err().unwrap_or_else(|| panic!("{what}: loaded"));
        let message = error.to_string();
        assert!(message.contains("pytorch_model.bin"), "{what}: {message}");
        assert!(
            matches!(error, Error::WeightFile { .. } | Error::WeightMismatch { .. }),
            "{what}: a weight-file error, got {message}"
        );
    }
}
