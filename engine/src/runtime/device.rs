//! Which burn device a server runs on. "cpu" is the pure-Rust `flex` backend; GPU names select
//! the `wgpu` backend when the engine is built with the `wgpu` feature and an adapter answers.
//! Anything unavailable falls back to cpu, and the server reports what it really used.

use burn::tensor::Device;

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

/// The device a server ended up with.
#[derive(Debug, Clone)]
pub struct ResolvedDevice {
    pub device: Device,
    /// "cpu" or "wgpu".
    pub name: String,
    /// Why a GPU request fell back to cpu, if it did.
    pub fallback_reason: Option<String>,
}

impl ResolvedDevice {
    fn cpu(fallback_reason: Option<String>) -> Self {
        ResolvedDevice { device: Device::flex(), name: "cpu".into(), fallback_reason }
    }
}

/// Resolves a request to a working device.
pub fn resolve(request: &DeviceRequest) -> ResolvedDevice {
    match request {
        DeviceRequest::Cpu => ResolvedDevice::cpu(None),
        gpu => gpu_device(gpu).unwrap_or_else(|reason| {
            tracing::warn!(%reason, "falling back to cpu");
            ResolvedDevice::cpu(Some(reason))
        }),
    }
}

#[cfg(not(feature = "wgpu"))]
fn gpu_device(_request: &DeviceRequest) -> std::result::Result<ResolvedDevice, String> {
    Err("this build has no GPU backend (build with --features wgpu)".into())
}

#[cfg(feature = "wgpu")]
fn gpu_device(request: &DeviceRequest) -> std::result::Result<ResolvedDevice, String> {
    use burn::tensor::DeviceKind;
    let kinds = match request {
        DeviceRequest::Gpu { index } => vec![DeviceKind::DiscreteGpu(*index), DeviceKind::IntegratedGpu(*index)],
        _ => vec![DeviceKind::DefaultDevice],
    };
    for kind in kinds {
        if let Some(device) = probe(Device::wgpu(kind.clone())) {
            return Ok(ResolvedDevice { device, name: "wgpu".into(), fallback_reason: None });
        }
    }
    Err("no wgpu adapter of the requested kind answered".into())
}

/// Runs one tiny computation; wgpu panics when an adapter is missing, so catch that.
#[cfg(feature = "wgpu")]
fn probe(device: Device) -> Option<Device> {
    use burn::tensor::{Tensor, TensorData};
    let answered = std::panic::catch_unwind(|| {
        let x = Tensor::<1>::from_data(TensorData::new(vec![1.0f32, 2.0], [2]), &device);
        crate::model::nn::to_vec(x * 2.0).ok() == Some(vec![2.0, 4.0])
    });
    matches!(answered, Ok(true)).then_some(device)
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
        let resolved = resolve(&DeviceRequest::Gpu { index: 0 });
        assert_eq!(resolved.name, "cpu");
        assert!(resolved.fallback_reason.unwrap().contains("wgpu"));
    }
}
