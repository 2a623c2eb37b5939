//! LoRA adapters in the official fine-tuning layout: parity with the official `LoRALinear`
//! path, exact unloading, replacement, and bad adapters.

use std::path::{Path, PathBuf};

use crate::common::*;
use voxcpm_engine::model::VoxCpm;
use voxcpm_engine::testkit::parity::{TensorFile, ZeroShotCase};

fn adapter() -> PathBuf {
    fixtures().join("tiny/lora")
}

fn case() -> (ZeroShotCase, PathBuf) {
    let path = fixtures().join("tiny/lora_case.safetensors");
    (ZeroShotCase::read(&path).unwrap(), path)
}

/// Latents of the LoRA case's inputs (noise included) on `model` as it is now.
fn latents(model: &VoxCpm) -> Vec<f32> {
    let (case, path) = case();
    case.run(model, &path).unwrap().latents
}

#[test]
fn an_adapter_gives_the_official_lora_output_and_counts() {
    let mut model = load_model("tiny");
    let (loaded, skipped) = model.load_lora(&adapter()).unwrap();
    let file = TensorFile::read(&case().1).unwrap();
    assert_eq!(vec![loaded as i64, skipped as i64], file.i64("lora_counts").unwrap(), "official (loaded, skipped)");

    let (case, path) = case();
    let out = case.run(&model, &path).unwrap();
    assert_close("LoRA latents", &out.latents, &case.latents.unwrap().0, LATENT_TOLERANCE);
    assert_close("LoRA audio", &out.audio, &case.audio.unwrap(), AUDIO_TOLERANCE);
}

#[test]
fn unloading_restores_the_base_model_bit_for_bit() {
    let fresh = latents(&load_model("tiny"));
    let file = TensorFile::read(&case().1).unwrap();
    assert_close("base latents", &fresh, &file.f32("base_latents").unwrap(), LATENT_TOLERANCE);

    let mut model = load_model("tiny");
    model.load_lora(&adapter()).unwrap();
    assert_ne!(latents(&model), fresh, "the adapter changes the output");
    model.unload_lora();
    assert_eq!(latents(&model), fresh, "identical to a model that never had an adapter");
}

/// Copies the fixture adapter, letting `edit` change its tensors before writing.
fn edited_adapter(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Vec<usize>, Vec<f32>)>)) -> PathBuf {
    let file = TensorFile::read(&adapter().join("lora_weights.safetensors")).unwrap();
    let mut tensors: Vec<(String, Vec<usize>, Vec<f32>)> =
        file.names().map(|n| (n.to_owned(), file.shape(n).unwrap(), file.f32(n).unwrap())).collect();
    edit(&mut tensors);
    let bytes: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.into_iter().map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect())).collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = bytes
        .iter()
        .map(|(n, s, b)| {
            (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap())
        })
        .collect();
    std::fs::create_dir_all(dir).unwrap();
    safetensors::tensor::serialize_to_file(views, None, &dir.join("lora_weights.safetensors")).unwrap();
    std::fs::copy(adapter().join("lora_config.json"), dir.join("lora_config.json")).unwrap();
    dir.to_owned()
}

#[test]
fn a_second_adapter_replaces_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let doubled = edited_adapter(&tmp.path().join("doubled"), |tensors| {
        for (_, _, values) in tensors.iter_mut().filter(|(n, _, _)| n.ends_with("lora_B")) {
            values.iter_mut().for_each(|v| *v *= 2.0);
        }
    });
    let mut model = load_model("tiny");
    model.load_lora(&adapter()).unwrap();
    let once = latents(&model);
    model.load_lora(&doubled).unwrap();
    let other = latents(&model);
    assert_ne!(other, once);
    model.load_lora(&adapter()).unwrap();
    assert_eq!(latents(&model), once, "not stacked on the previous adapter");
}

#[test]
fn bad_adapters_are_refused_by_name_and_leave_the_model_as_it_was() {
    let tmp = tempfile::tempdir().unwrap();
    let mut model = load_model("tiny");
    let base = latents(&model);

    let wrong_shape = edited_adapter(&tmp.path().join("shape"), |tensors| {
        let q = tensors.iter_mut().find(|(n, _, _)| n == "base_lm.layers.0.self_attn.q_proj.lora_A").unwrap();
        q.1 = vec![4, 32];
        q.2.truncate(4 * 32);
    });
    let half = edited_adapter(&tmp.path().join("half"), |tensors| {
        tensors.retain(|(n, _, _)| n != "stop_proj.lora_B" && n != "enc_to_lm_proj.lora_B");
    });
    let no_config = edited_adapter(&tmp.path().join("no_config"), |_| {});
    std::fs::remove_file(no_config.join("lora_config.json")).unwrap();
    let bad_config = edited_adapter(&tmp.path().join("bad_config"), |_| {});
    std::fs::write(bad_config.join("lora_config.json"), r#"{"r": 0, "alpha": 8}"#).unwrap();
    let no_weights = tmp.path().join("no_weights");
    std::fs::create_dir_all(&no_weights).unwrap();
    std::fs::copy(adapter().join("lora_config.json"), no_weights.join("lora_config.json")).unwrap();
    let corrupt = edited_adapter(&tmp.path().join("corrupt"), |_| {});
    std::fs::write(corrupt.join("lora_weights.safetensors"), b"not safetensors").unwrap();

    for (dir, needle) in [
        (wrong_shape, "base_lm.layers.0.self_attn.q_proj: lora_A has shape [4, 32]"),
        (half, "enc_to_lm_proj: has only one of lora_A and lora_B"),
        (no_config, "lora_config.json"),
        (bad_config, "r must be positive"),
        (no_weights, "lora_weights.safetensors"),
        (corrupt, "lora_weights.safetensors"),
        (tmp.path().join("missing"), "not a directory"),
    ] {
        let err = model.load_lora(&dir).unwrap_err().to_string();
        assert!(err.contains(needle), "{err:?} should mention {needle:?}");
        assert_eq!(latents(&model), base, "unchanged after {needle}");
    }

    // Unknown tensors are skipped and counted, as the official loader does.
    let extra = edited_adapter(&tmp.path().join("extra"), |tensors| {
        tensors.push(("residual_lm.layers.9.self_attn.q_proj.lora_A".into(), vec![4, 64], vec![0.0; 256]));
    });
    assert_eq!(model.load_lora(&extra).unwrap(), (56, 2));
}
