//! Checkpoints written by `synthetic` (the layout used for full-size benchmarks) load back
//! through the same path as official ones.

use crate::common::*;
use voxcpm_engine::model::VoxCpm;
use voxcpm_engine::testkit::synthetic::{WeightDtype, write_checkpoint};

fn tiny_config() -> serde_json::Value {
    let text = std::fs::read_to_string(fixtures().join("tiny/checkpoint/config.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

#[test]
fn synthetic_checkpoints_load_in_both_dtypes() {
    for dtype in [WeightDtype::F32, WeightDtype::BF16] {
        let tmp = tempfile::tempdir().unwrap();
        write_checkpoint(&tiny_config(), tmp.path(), dtype, &fixtures().join("tiny/checkpoint"), 7).unwrap();
        let model = VoxCpm::load(tmp.path(), &load_options()).unwrap();
        let latents = burn::tensor::Tensor::<3>::zeros([1, model.config().feat_dim, 4], &device());
        let audio = values(model.audio_vae().decode(latents));
        assert!(audio.iter().all(|x| x.is_finite()), "{dtype:?}: decoded audio is finite");
    }
}

#[test]
fn synthetic_tensor_list_matches_the_official_fixture() {
    let tmp = tempfile::tempdir().unwrap();
    write_checkpoint(&tiny_config(), tmp.path(), WeightDtype::F32, &fixtures().join("tiny/checkpoint"), 1).unwrap();
    let names = |path: std::path::PathBuf| {
        let file = voxcpm_engine::weights::WeightFile::open(&path).unwrap();
        file.tensors.iter().map(|(n, t)| (n.clone(), t.shape.clone())).collect::<Vec<_>>()
    };
    for file in ["model.safetensors", "audiovae.pth"] {
        assert_eq!(names(tmp.path().join(file)), names(fixtures().join("tiny/checkpoint").join(file)), "{file}");
    }
}

#[test]
fn audiovae_safetensors_is_preferred_and_decodes_like_the_pth() {
    let tmp = tempfile::tempdir().unwrap();
    let src = fixtures().join("tiny/checkpoint");
    for entry in std::fs::read_dir(&src).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, tmp.path().join(path.file_name().unwrap())).unwrap();
    }
    // The same VAE tensors, as safetensors.
    let pth = voxcpm_engine::weights::WeightFile::open(&src.join("audiovae.pth")).unwrap();
    let tensors: Vec<(String, Vec<usize>, Vec<u8>)> = pth
        .tensors
        .iter()
        .map(|(n, t)| (n.clone(), t.shape.clone(), t.to_f32().unwrap().iter().flat_map(|v| v.to_le_bytes()).collect()))
        .collect();
    let views: Vec<_> = tensors
        .iter()
        .map(|(n, s, b)| {
            (n.clone(), safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.clone(), b).unwrap())
        })
        .collect();
    safetensors::serialize_to_file(views, None, &tmp.path().join("audiovae.safetensors")).unwrap();
    std::fs::write(tmp.path().join("audiovae.pth"), b"not used: the safetensors file wins").unwrap();

    let from_safetensors = VoxCpm::load(tmp.path(), &load_options()).unwrap();
    let from_pth = load_model("tiny");
    let latents = tensor::<3>(&goldens("tiny"), "vae.decode.input");
    let a = values(from_safetensors.audio_vae().decode(latents.clone()));
    let b = values(from_pth.audio_vae().decode(latents));
    assert_eq!(a, b);
}
