//! Whole zero-shot generations against the official loop, noise replayed from the cases.

mod common;

use common::*;
use voxcpm_engine::parity::ZeroShotCase;

#[test]
fn zero_shot_cases_match_the_reference() {
    let cases = case_files("case_");
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
