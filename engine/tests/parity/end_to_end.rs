//! Whole zero-shot generations against the official loop, noise replayed from the cases.

use crate::common::*;

#[test]
fn zero_shot_cases_match_the_reference() {
    let cases = case_files("case_");
    assert!(cases.len() >= 3, "expected at least three committed cases, found {}", cases.len());
    for (checkpoint, path) in cases {
        let (case, out, _) = run_zero_shot_case(&checkpoint, &path, &device(), voxcpm_engine::kernels::Products::F32);
        let name = path.display().to_string();
        let (latents, _) = case.latents.as_ref().expect("case has latents");
        assert_close(&format!("{name} latents"), &out.latents, latents, LATENT_TOLERANCE);
        assert_close(&format!("{name} audio"), &out.audio, case.audio.as_ref().unwrap(), AUDIO_TOLERANCE);
    }
}
