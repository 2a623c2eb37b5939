//! Which burn device a server runs on. "cpu" is the pure-Rust `flex` backend; GPU names select
//! the `wgpu` backend when the engine is built with the `wgpu` feature and an adapter answers.
//! Anything unavailable falls back to cpu, and the server reports what it really used.

use burn::tensor::Device;
#[cfg(feature = "wgpu")]
use burn::tensor::FloatDType;

use crate::error::{Error, Result};
use crate::kernels::Products;

/// A device request as users spell it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceRequest {
    Cpu,
    /// A hardware GPU: "gpu", "cuda", "cuda:N", "vulkan", "mps" (discrete first, then
    /// integrated; index N among discrete GPUs).
    Gpu {
        index: usize,
    },
    /// "wgpu": whatever adapter wgpu prefers, software rasterisers included (for testing).
    WgpuDefault,
}

impl DeviceRequest {
    /// Parses a device name; unknown names are an error naming the accepted ones.
    pub fn parse(name: &str) -> Result<Self> {
        let name = name.trim().to_ascii_lowercase();
        match name.as_str() {
            "cpu" => Ok(DeviceRequest::Cpu),
            "gpu" | "cuda" | "vulkan" | "mps" | "auto" => Ok(DeviceRequest::Gpu { index: 0 }),
            "wgpu" => Ok(DeviceRequest::WgpuDefault),
            _ => match name.strip_prefix("cuda:").map(str::parse) {
                Some(Ok(index)) => Ok(DeviceRequest::Gpu { index }),
                _ => Err(Error::InvalidInput(format!(
                    "unknown device {name:?} (use cpu, gpu, cuda, cuda:N, vulkan, mps, wgpu or auto)"
                ))),
            },
        }
    }
}

/// What the model computes in. The GPU's float type for f32 and f16; bf16 is the CPU's fast
/// path: weights in bf16 and the inputs of every matrix product rounded to bf16, summed in f32,
/// the arithmetic of the official bf16 release (twice the products per cycle where the CPU has
/// AVX-512 BF16). Otherwise the CPU computes in f32, over weights in the checkpoint's precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    F32,
    /// GPUs: half the memory and bandwidth of f32; norms and softmax still reduce in f32.
    F16,
    /// The CPU: bf16 products (see above); the quantiser and the AudioVAE stay in f32.
    Bf16,
}

impl Precision {
    pub fn parse(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "f16" | "fp16" | "float16" | "half" => Ok(Precision::F16),
            "bf16" | "bfloat16" => Ok(Precision::Bf16),
            other => Err(Error::InvalidInput(format!("unknown precision {other:?} (use f32, f16 or bf16)"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        }
    }

    /// What the CPU's linear layers compute their products in at this precision.
    pub fn cpu_products(self) -> Products {
        match self {
            Precision::Bf16 => Products::Bf16,
            Precision::F32 | Precision::F16 => Products::F32,
        }
    }

    #[cfg(feature = "wgpu")]
    fn dtype(self) -> FloatDType {
        match self {
            Precision::F32 | Precision::Bf16 => FloatDType::F32,
            Precision::F16 => FloatDType::F16,
        }
    }
}

/// The device a server ended up with.
#[derive(Debug, Clone)]
pub struct ResolvedDevice {
    pub device: Device,
    /// "cpu" or "wgpu".
    pub name: String,
    /// What it computes in: what was asked where the device offers it, else f32.
    pub precision: Precision,
    /// Why a GPU request fell back to cpu, or why a precision was not applied.
    pub fallback_reason: Option<String>,
}

impl ResolvedDevice {
    fn cpu(precision: Precision, fallback_reason: Option<String>) -> Self {
        ResolvedDevice { device: Device::flex(), name: "cpu".into(), precision, fallback_reason }
    }
}

/// Resolves a request to a working device computing in `precision`.
pub fn resolve(request: &DeviceRequest, precision: Precision) -> ResolvedDevice {
    match (request, precision) {
        (DeviceRequest::Cpu, Precision::F16) => ResolvedDevice::cpu(
            Precision::F32,
            Some("the cpu computes in f32 (or bf16) over the checkpoint's own weights; f16 applies to GPUs".into()),
        ),
        (DeviceRequest::Cpu, Precision::Bf16) => {
            let note = match crate::kernels::selected_level() {
                Ok(level) if level.native_bf16() => None,
                Ok(level) => Some(format!(
                    "the {level} kernels have no AVX-512 BF16: bf16 products are emulated, at the speed of f32 ones"
                )),
                Err(error) => Some(error.to_string()),
            };
            ResolvedDevice::cpu(Precision::Bf16, note)
        }
        (DeviceRequest::Cpu, Precision::F32) => ResolvedDevice::cpu(Precision::F32, None),
        (gpu, Precision::Bf16) => {
            let note = "wgpu's shader language has no bf16: the GPU computes in f32 (f16 is its half precision)";
            let mut resolved = gpu_or_cpu(gpu, Precision::F32);
            resolved.fallback_reason.get_or_insert_with(|| note.into());
            resolved
        }
        (gpu, precision) => gpu_or_cpu(gpu, precision),
    }
}

/// The GPU asked for, or the cpu (in f32) with the reason it did not answer.
fn gpu_or_cpu(request: &DeviceRequest, precision: Precision) -> ResolvedDevice {
    gpu_device(request, precision).unwrap_or_else(|reason| {
        tracing::warn!(%reason, "falling back to cpu");
        ResolvedDevice::cpu(Precision::F32, Some(reason))
    })
}

#[cfg(not(feature = "wgpu"))]
fn gpu_device(_request: &DeviceRequest, _precision: Precision) -> std::result::Result<ResolvedDevice, String> {
    Err("this build has no GPU backend (build with --features wgpu)".into())
}

#[cfg(feature = "wgpu")]
fn gpu_device(request: &DeviceRequest, precision: Precision) -> std::result::Result<ResolvedDevice, String> {
    use burn::tensor::DeviceKind;
    let kinds = match request {
        DeviceRequest::Gpu { index } => vec![DeviceKind::DiscreteGpu(*index), DeviceKind::IntegratedGpu(*index)],
        _ => vec![DeviceKind::DefaultDevice],
    };
    let mut reason = match request {
        DeviceRequest::Gpu { index } => {
            format!(
                "no discrete or integrated GPU {index} answered through wgpu (`wgpu` takes any adapter, software ones included)"
            )
        }
        _ => "no wgpu adapter answered".to_owned(),
    };
    for kind in kinds {
        match probe(Device::wgpu(kind.clone()), precision) {
            Ok(device) => {
                return Ok(ResolvedDevice { device, name: "wgpu".into(), precision, fallback_reason: None });
            }
            Err(Some(why)) => reason = why,
            Err(None) => {}
        }
    }
    Err(reason)
}

/// Sets the device's float type, then runs one tiny computation. wgpu panics when an adapter
/// is missing, so that is caught (`Err(None)`); `Err(Some(_))` is an adapter that answered
/// but cannot compute in `precision`.
#[cfg(feature = "wgpu")]
fn probe(mut device: Device, precision: Precision) -> std::result::Result<Device, Option<String>> {
    use burn::tensor::{Tensor, TensorData};
    let answered = std::panic::catch_unwind(move || {
        // The float type is fixed per device and process by the first tensor made on it: a
        // second server on the same adapter can only share the first one's.
        let configured = device.configure(precision.dtype()).is_ok();
        let current = device.settings().float_dtype;
        if !configured && current != precision.dtype() {
            return Err(Some(format!(
                "this process already computes in {current:?} on that adapter; {} cannot be set as well",
                precision.name()
            )));
        }
        let x = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0], [2]), &device);
        match crate::model::nn::to_vec(x * 2.0) {
            Ok(values) if values == [2.0, 4.0] => Ok(device),
            _ => Err(Some(format!("the adapter computed 2 × [1, 2] wrongly in {}", precision.name()))),
        }
    });
    answered.unwrap_or(Err(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_and_unknown_ones_are_rejected() {
        assert_eq!(DeviceRequest::parse("CPU").unwrap(), DeviceRequest::Cpu);
        assert_eq!(DeviceRequest::parse("cuda:2").unwrap(), DeviceRequest::Gpu { index: 2 });
        assert_eq!(DeviceRequest::parse("mps").unwrap(), DeviceRequest::Gpu { index: 0 });
        let err = DeviceRequest::parse("tpu").unwrap_err().to_string();
        assert!(err.contains("tpu") && err.contains("cpu"), "{err}");
        assert!(DeviceRequest::parse("cuda:x").is_err());
    }

    #[cfg(not(feature = "wgpu"))]
    #[test]
    fn a_gpu_request_without_the_backend_falls_back_to_cpu_and_says_why() {
        let resolved = resolve(&DeviceRequest::Gpu { index: 0 }, Precision::F32);
        assert_eq!(resolved.name, "cpu");
        assert!(resolved.fallback_reason.unwrap().contains("wgpu"));
    }

    #[test]
    fn precisions_parse_and_unknown_ones_are_rejected() {
        assert_eq!(Precision::parse("F16").unwrap(), Precision::F16);
        assert_eq!(Precision::parse("fp32").unwrap(), Precision::F32);
        assert_eq!(Precision::parse("bfloat16").unwrap(), Precision::Bf16);
        let err = Precision::parse("f8").unwrap_err().to_string();
        assert!(err.contains("f8") && err.contains("bf16"), "{err}");
    }

    #[test]
    fn the_cpu_says_it_computes_in_f32_when_f16_is_asked() {
        let resolved = resolve(&DeviceRequest::Cpu, Precision::F16);
        assert_eq!((resolved.name.as_str(), resolved.precision), ("cpu", Precision::F32));
        assert!(resolved.fallback_reason.unwrap().contains("f16"));
        assert!(resolve(&DeviceRequest::Cpu, Precision::F32).fallback_reason.is_none());
    }

    #[test]
    fn the_cpu_computes_bf16_products_and_says_when_they_are_emulated() {
        let resolved = resolve(&DeviceRequest::Cpu, Precision::Bf16);
        assert_eq!((resolved.name.as_str(), resolved.precision), ("cpu", Precision::Bf16));
        assert_eq!(resolved.fallback_reason.is_some(), !crate::kernels::level().native_bf16());
        assert_eq!(Precision::Bf16.cpu_products(), Products::Bf16);
        assert_eq!(Precision::F16.cpu_products(), Products::F32);
    }
}
