//! The GPU path in f32 against the official goldens: every module and whole generations of both
//! architectures, on wgpu's default adapter (Mesa's lavapipe on machines without a GPU). f16 needs its own
//! process (a device's float type is fixed once per process): see `wgpu_f16_parity.rs`.
#![cfg(feature = "wgpu")]

use crate::common::module_checks::ModuleChecks;
use crate::common::*;
use voxcpm_engine::kernels::Products;
use voxcpm_engine::runtime::Precision;
use voxcpm_engine::testkit::parity::relative_max_error;

/// GPU reductions run in another order than the CPU's; f32 stays well inside the latent tolerance.
const WGPU_F32_TOLERANCE: f32 = 1e-4;

#[test]
fn every_module_matches_in_f32() {
    ModuleChecks {
        device: wgpu_device(Precision::F32),
        products: Products::F32,
        tolerance: WGPU_F32_TOLERANCE,
        checkpoints: fixtures(),
    }
    .all();
}

#[test]
fn a_whole_generation_matches_in_f32() {
    let device = wgpu_device(Precision::F32);
    let (checkpoint, path) = case_files("case_full").into_iter().next().expect("a full case");
    let (case, out, _) = run_zero_shot_case(&checkpoint, &path, &device, Products::F32);
    let (latents, _) = case.latents.as_ref().expect("case has latents");
    assert_close("wgpu latents", &out.latents, latents, LATENT_TOLERANCE);
    assert_close("wgpu audio", &out.audio, case.audio.as_ref().unwrap(), AUDIO_TOLERANCE);
}

/// v1 (VoxCPM-0.5B and VoxCPM1.5 flavours): every module with a v1 golden.
#[test]
fn every_v1_module_matches_in_f32() {
    ModuleChecks {
        device: wgpu_device(Precision::F32),
        products: Products::F32,
        tolerance: WGPU_F32_TOLERANCE,
        checkpoints: fixtures(),
    }
    .on_configs(&V1_CONFIGS, |l| l.all_v1());
}

/// A whole v1 take of each flavour (`v1_tiny` loads from `pytorch_model.bin`), with its length.
#[test]
fn a_whole_v1_generation_matches_in_f32() {
    let device = wgpu_device(Precision::F32);
    for config in V1_CONFIGS {
        let checkpoint = fixtures().join(config).join("checkpoint");
        let path = fixtures().join(config).join("case_full.safetensors");
        let (case, out, _) = run_zero_shot_case(&checkpoint, &path, &device, Products::F32);
        let (latents, _) = case.latents.as_ref().expect("case has latents");
        let audio = case.audio.as_ref().unwrap();
        eprintln!(
            "{config} on wgpu: latents {:.2e}, audio {:.2e}",
            relative_max_error(&out.latents, latents),
            relative_max_error(&out.audio, audio)
        );
        assert_close(&format!("{config} wgpu latents"), &out.latents, latents, LATENT_TOLERANCE);
        assert_close(&format!("{config} wgpu audio"), &out.audio, audio, AUDIO_TOLERANCE);
    }
}
