//! bf16 copies of the fixture checkpoints, stored as the released VoxCPM2 stores its weights:
//! `model.safetensors` in bf16, the AudioVAE (`audiovae.pth`) in f32.

use std::path::Path;

use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};
use tempfile::TempDir;
use voxcpm_engine::kernels::bf16_bits;

use super::{CONFIGS, fixtures};

/// A temporary folder holding `<config>/checkpoint` for every fixture config, each a copy of the
/// fixture's with `model.safetensors`'s f32 tensors in bf16 (the same layout as the fixtures,
/// so it can stand for them as [`ModuleChecks::checkpoints`](super::module_checks::ModuleChecks)).
pub fn bf16_fixture_checkpoints() -> TempDir {
    let root = tempfile::tempdir().unwrap();
    for config in CONFIGS {
        let (from, to) = (fixtures().join(config).join("checkpoint"), root.path().join(config).join("checkpoint"));
        std::fs::create_dir_all(&to).unwrap();
        for file in std::fs::read_dir(&from).unwrap() {
            let name = file.unwrap().file_name();
            if name == "model.safetensors" {
                write_in_bf16(&from.join(&name), &to.join(&name));
            } else {
                std::fs::copy(from.join(&name), to.join(&name)).unwrap();
            }
        }
    }
    root
}

/// Copies a safetensors file with every f32 tensor rounded to bf16 (to nearest, ties to even, as
/// PyTorch's `.to(torch.bfloat16)` does); tensors of other types and the header's metadata are
/// kept as they are.
fn write_in_bf16(from: &Path, to: &Path) {
    let bytes = std::fs::read(from).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let converted: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = file
        .tensors()
        .into_iter()
        .map(|(name, view)| match view.dtype() {
            Dtype::F32 => {
                let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes(b.try_into().unwrap()));
                let data = values.flat_map(|v| bf16_bits(v).to_le_bytes()).collect();
                (name, Dtype::BF16, view.shape().to_vec(), data)
            }
            other => (name, other, view.shape().to_vec(), view.data().to_vec()),
        })
        .collect();
    let views = converted
        .iter()
        .map(|(name, dtype, shape, data)| (name.as_str(), TensorView::new(*dtype, shape.clone(), data).unwrap()));
    safetensors::serialize_to_file(views, header.metadata().clone(), to).unwrap();
}
