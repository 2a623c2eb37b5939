//! Broken checkpoints and cases give a clear error naming the file and key, never a panic.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use voxcpm_engine::Error;
use voxcpm_engine::model::VoxCpm2;
use voxcpm_engine::parity::ZeroShotCase;

/// A scratch copy of the tiny checkpoint.
fn scratch_checkpoint() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("checkpoint");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(fixtures().join("tiny/checkpoint")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    (tmp, dir)
}

/// Rewrites `model.safetensors`, letting `edit` change the list of (name, dtype, shape, bytes).
fn rewrite_model(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>)) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<_> =
        file.tensors().into_iter().map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec())).collect();
    edit(&mut tensors);
    let views: Vec<_> =
        tensors.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize_to_file(views, None, &path).unwrap();
}

fn load_error(dir: &Path) -> String {
    match VoxCpm2::load(dir, &device()) {
        Ok(_) => panic!("loading {} should fail", dir.display()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_untouched_copy_loads() {
    let (_tmp, dir) = scratch_checkpoint();
    VoxCpm2::load(&dir, &device()).unwrap();
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
    let err = VoxCpm2::load(&dir, &device()).unwrap_err();
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
