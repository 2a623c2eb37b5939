//! Whole zero-shot generations against the official loop, noise replayed from the cases.

mod common;

use common::*;
use voxcpm_engine::parity::ZeroShotCase;

/// Every `case_*.safetensors` under the fixture tree, with the checkpoint beside it.
fn cases() -> Vec<(std::path::PathBuf, std::path::PathBuf)> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(fixtures()).unwrap() {
        let dir = entry.unwrap().path();
        let Ok(files) = std::fs::read_dir(&dir) else {
            continue;
        };
        for file in files {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with("case_") && name.ends_with(".safetensors") {
                found.push((dir.join("checkpoint"), path));
            }
        }
    }
    found.sort();
    found
}

#[test]
fn zero_shot_cases_match_the_reference() {
    let cases = cases();
    assert!(cases.len() >= 3, "expected at least three committed cases, found {}", cases.len());
    for (checkpoint, path) in cases {
        let model = voxcpm_engine::model::VoxCpm2::load(&checkpoint, &device()).unwrap();
        let case = ZeroShotCase::read(&path).unwrap();
        let out = case.run(&model, &path).unwrap();
        let name = path.display().to_string();
        let (latents, shape) = case.latents.as_ref().expect("case has latents");
        assert_eq!(out.latent_shape.to_vec(), *shape, "{name}: generated length differs");
        assert_close(&format!("{name} latents"), &out.latents, latents, LATENT_TOLERANCE);
        assert_close(&format!("{name} audio"), &out.audio, case.audio.as_ref().unwrap(), AUDIO_TOLERANCE);
    }
}
