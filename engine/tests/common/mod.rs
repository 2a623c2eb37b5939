//! Shared by the integration tests: fixture paths, model loading and tolerance checks.
#![allow(dead_code)]

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorData};
use voxcpm_engine::model::VoxCpm2;
use voxcpm_engine::parity::{TensorFile, relative_max_error};

pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

/// The fixture configs with per-module goldens.
pub const CONFIGS: [&str; 2] = ["tiny", "odd"];

pub fn device() -> Device {
    Device::flex()
}

pub fn load_model(config: &str) -> VoxCpm2 {
    let dir = fixtures().join(config).join("checkpoint");
    VoxCpm2::load(&dir, &device()).unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
}

pub fn goldens(config: &str) -> TensorFile {
    let path = fixtures().join(config).join("modules.safetensors");
    TensorFile::read(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// A golden tensor uploaded to the test device.
pub fn tensor<const D: usize>(file: &TensorFile, name: &str) -> Tensor<D> {
    let shape = file.shape(name).unwrap();
    let values = file.f32(name).unwrap();
    let shape: [usize; D] =
        shape.try_into().unwrap_or_else(|s| panic!("{name} has rank {}, expected {D}", Vec::len(&s)));
    Tensor::from_data(TensorData::new(values, shape), &device())
}

pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    voxcpm_engine::model::nn::to_vec(t).unwrap()
}

/// Asserts `actual` is within `tolerance` of `expected`, relative to the expected max |value|.
pub fn assert_close(what: &str, actual: &[f32], expected: &[f32], tolerance: f32) {
    assert_eq!(actual.len(), expected.len(), "{what}: length {} vs expected {}", actual.len(), expected.len());
    let error = relative_max_error(actual, expected);
    assert!(error <= tolerance, "{what}: relative max error {error:e} exceeds {tolerance:e}");
}

/// Latent tolerance from the issue: 1e-4 of the reference's max |value|.
pub const LATENT_TOLERANCE: f32 = 1e-4;
/// Audio tolerance: 1e-3 of the reference's max |value|.
pub const AUDIO_TOLERANCE: f32 = 1e-3;
