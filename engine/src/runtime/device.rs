//! Which burn device a server runs on. "cpu" is the pure-Rust `flex` backend; GPU names select
//! the `wgpu` backend when the engine is built with the `wgpu` feature and an adapter answers.
//! Anything unavailable falls back to cpu, and the server reports what it really used.

use burn::tensor::Device;
#[cfg(feature = "wgpu")]
use burn::tensor::FloatDType;

use crate::error::{Error, Result};

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

/// The float type a GPU computes in. The CPU always computes in f32, over weights kept in the
/// checkpoint's own precision (see [`crate::kernels`]), so this only applies to wgpu.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Precision {
    #[default]
    F32,
    /// Half the memory and bandwidth of f32; norms and softmax still reduce in f32.
    F16,
}

impl Precision {
    /// Parses a precision name; bf16 is refused with the reason (WGSL has no bf16).
    pub fn parse(name: &str) -> Result<Self> {
        match name.trim().to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" => Ok(Precision::F32),
            "f16" | "fp16" | "float16" | "half" => Ok(Precision::F16),
            "bf16" | "bfloat16" => Err(Error::InvalidInput(
                "precision bf16 is not offered: wgpu's shader language has no bf16 (use f16 or f32)".into(),
            )),
            other => Err(Error::InvalidInput(format!("unknown precision {other:?} (use f32 or f16)"))),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
        }
    }

    #[cfg(feature = "wgpu")]
    fn dtype(self) -> FloatDType {
        match self {
            Precision::F32 => FloatDType::F32,
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
    /// What it computes in (f32 on the cpu, whatever was asked).
    pub precision: Precision,
    /// Why a GPU request fell back to cpu, or why a precision was not applied.
    pub fallback_reason: Option<String>,
}

impl ResolvedDevice {
    fn cpu(fallback_reason: Option<String>) -> Self {
        ResolvedDevice { device: Device::flex(), name: "cpu".into(), precision: Precision::F32, fallback_reason }
    }
}

/// Resolves a request to a working device computing in `precision`.
pub fn resolve(request: &DeviceRequest, precision: Precision) -> ResolvedDevice {
    match request {
        DeviceRequest::Cpu if precision != Precision::F32 => ResolvedDevice::cpu(Some(format!(
            "cpu computes in f32 over the checkpoint's own weights; precision {} applies to GPUs",
            precision.name()
        ))),
        DeviceRequest::Cpu => ResolvedDevice::cpu(None),
        gpu => gpu_device(gpu, precision).unwrap_or_else(|reason| {
            tracing::warn!(%reason, "falling back to cpu");
            ResolvedDevice::cpu(Some(reason))
        }),
    }
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
    fn precisions_parse_and_bf16_is_refused_with_the_reason() {
        assert_eq!(Precision::parse("F16").unwrap(), Precision::F16);
        assert_eq!(Precision::parse("fp32").unwrap(), Precision::F32);
        let err = Precision::parse("bf16").unwrap_err().to_string();
        assert!(err.contains("bf16") && err.contains("f16"), "{err}");
        assert!(Precision::parse("f8").unwrap_err().to_string().contains("f8"));
    }

    #[test]
    fn the_cpu_says_it_computes_in_f32_when_f16_is_asked() {
        let resolved = resolve(&DeviceRequest::Cpu, Precision::F16);
        assert_eq!((resolved.name.as_str(), resolved.precision), ("cpu", Precision::F32));
        assert!(resolved.fallback_reason.unwrap().contains("f16"));
        assert!(resolve(&DeviceRequest::Cpu, Precision::F32).fallback_reason.is_none());
    }
}
