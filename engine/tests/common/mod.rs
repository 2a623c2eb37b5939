//! Shared by the integration tests: fixture paths, model loading and tolerance checks.
#![allow(dead_code)]

pub mod bf16_checkpoint;
pub mod damage;
pub mod module_checks;

use std::path::PathBuf;

use burn::tensor::{Device, Tensor, TensorCreationOptions, TensorData};
use voxcpm_engine::LoadOptions;
use voxcpm_engine::kernels::Products;
use voxcpm_engine::model::VoxCpm;
use voxcpm_engine::testkit::parity::{TensorFile, relative_max_error};

/// engine/tests/fixtures, found from the workspace root: the CLI's tests include this module.
pub fn fixtures() -> PathBuf {
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    crate_dir.parent().expect("a workspace member").join("engine/tests/fixtures")
}

/// The fixture configs with per-module goldens.
pub const CONFIGS: [&str; 2] = ["tiny", "odd"];

/// The v1 fixture configs (VoxCPM-0.5B and VoxCPM1.5 flavours) with per-module goldens.
pub const V1_CONFIGS: [&str; 2] = ["v1_tiny", "v1_odd"];

pub fn device() -> Device {
    Device::flex()
}

/// The test device with f32 products: what most tests load with.
pub fn load_options() -> LoadOptions {
    LoadOptions::on(&device())
}

pub fn load_model(config: &str) -> VoxCpm {
    load_model_on(config, &device())
}

pub fn load_model_on(config: &str, device: &Device) -> VoxCpm {
    load_model_with(config, device, Products::F32)
}

/// A fixture config on `device`, the cpu's linear layers computing in `products`.
pub fn load_model_with(config: &str, device: &Device, products: Products) -> VoxCpm {
    load_model_from(&fixtures().join(config).join("checkpoint"), device, products)
}

/// The checkpoint in `dir` on `device`, the cpu's linear layers computing in `products`.
pub fn load_model_from(dir: &std::path::Path, device: &Device, products: Products) -> VoxCpm {
    VoxCpm::load(dir, &LoadOptions::on(device).with_products(products))
        .unwrap_or_else(|e| panic!("loading {}: {e}", dir.display()))
}

pub fn goldens(config: &str) -> TensorFile {
    let path = fixtures().join(config).join("modules.safetensors");
    TensorFile::read(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// A golden tensor uploaded to the test device.
pub fn tensor<const D: usize>(file: &TensorFile, name: &str) -> Tensor<D> {
    tensor_on(file, name, &device())
}

/// A golden tensor uploaded to `device` (in the device's float type).
pub fn tensor_on<const D: usize>(file: &TensorFile, name: &str, device: &Device) -> Tensor<D> {
    tensor_with(file, name, device)
}

/// A golden tensor created with `options` (a device, and a float type other than its default).
pub fn tensor_with<const D: usize>(
    file: &TensorFile,
    name: &str,
    options: impl Into<TensorCreationOptions>,
) -> Tensor<D> {
    let shape = file.shape(name).unwrap();
    let values = file.f32(name).unwrap();
    let shape: [usize; D] =
        shape.try_into().unwrap_or_else(|s| panic!("{name} has rank {}, expected {D}", Vec::len(&s)));
    Tensor::from_data(TensorData::new(values, shape), options)
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
/// Module outputs in f32 sit well inside the end-to-end latent tolerance.
pub const MODULE_TOLERANCE: f32 = 1e-5;
/// bf16 against the f32 goldens, for every bf16 check (bf16 products, bf16-stored weights,
/// modules and a take's first patch alike): see the measurements in `cpu_bf16_parity.rs`.
pub const BF16_TOLERANCE: f32 = 2e-2;

/// Writes a 16-bit PCM WAV whose sample at (`frame`, `channel`) is `sample(frame, channel)`.
pub fn write_wav_i16(
    path: &std::path::Path,
    sample_rate: u32,
    channels: u16,
    frames: usize,
    sample: impl Fn(usize, u16) -> i16,
) {
    let spec = hound::WavSpec { channels, sample_rate, bits_per_sample: 16, sample_format: hound::SampleFormat::Int };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for frame in 0..frames {
        for channel in 0..channels {
            w.write_sample(sample(frame, channel)).unwrap();
        }
    }
    w.finalize().unwrap();
}

/// Every `<prefix>*.safetensors` case under the fixture configs, with the checkpoint beside it.
pub fn case_files(prefix: &str) -> Vec<(PathBuf, PathBuf)> {
    let mut found = Vec::new();
    for config in CONFIGS {
        let dir = fixtures().join(config);
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if name.starts_with(prefix) && name.ends_with(".safetensors") {
                found.push((dir.join("checkpoint"), path));
            }
        }
    }
    found.sort();
    found
}

/// The wgpu device computing in `precision`, failing the test (never falling back to cpu)
/// when no adapter answers: `scripts/setup` installs Mesa's lavapipe for machines without a GPU.
pub fn wgpu_device(precision: voxcpm_engine::runtime::Precision) -> Device {
    use voxcpm_engine::runtime::{DeviceRequest, resolve_device};
    let resolved = resolve_device(&DeviceRequest::WgpuDefault, precision);
    assert_eq!(
        resolved.name, "wgpu",
        "no wgpu adapter: {:?} (install mesa-vulkan-drivers and libvulkan1, as scripts/setup does)",
        resolved.fallback_reason
    );
    resolved.device
}

/// A zero-shot case run on `device` from its checkpoint, with the generated length checked
/// against the reference's: the case, what the engine made, and the model that made it.
pub fn run_zero_shot_case(
    checkpoint: &std::path::Path,
    path: &std::path::Path,
    device: &Device,
    products: Products,
) -> (voxcpm_engine::testkit::parity::ZeroShotCase, voxcpm_engine::testkit::parity::CaseOutput, VoxCpm) {
    let model = VoxCpm::load(checkpoint, &LoadOptions::on(device).with_products(products)).unwrap();
    let case = voxcpm_engine::testkit::parity::ZeroShotCase::read(path).unwrap();
    let out = case.run(&model, path).unwrap();
    let (_, shape) = case.latents.as_ref().expect("case has latents");
    assert_eq!(out.latent_shape.to_vec(), *shape, "{}: generated length differs", path.display());
    (case, out, model)
}

/// The base LM's prefill of `config`'s golden input, by the model in
/// `<checkpoints>/<config>/checkpoint` computing in `products`.
pub fn base_lm_prefill(config: &str, checkpoints: &std::path::Path, products: Products) -> Vec<f32> {
    let model = load_model_from(&checkpoints.join(config).join("checkpoint"), &device(), products);
    let lm = model.base_lm();
    let mut cache = lm.new_cache(model.config().max_length);
    values(lm.forward_cached(tensor(&goldens(config), "base_lm.prefill.input"), &mut cache).unwrap())
}

/// The first `patch` frames of every latent dimension of a `[dims, frames]` track: what an
/// autoregressive take makes before any of its own output feeds back.
pub fn first_patch(track: &[f32], [dims, frames]: [usize; 2], patch: usize) -> Vec<f32> {
    (0..dims).flat_map(|d| track[d * frames..d * frames + patch].to_vec()).collect()
}
