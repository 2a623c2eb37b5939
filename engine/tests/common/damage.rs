//! Damaged copies of the fixture checkpoints, for the bad-input tests.

use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use super::fixtures;

/// A scratch copy of the tiny checkpoint.
pub fn scratch_checkpoint() -> (tempfile::TempDir, PathBuf) {
    scratch_copy("tiny")
}

/// A scratch copy of the checkpoint of the fixture config `config` ("tiny", "v1_odd", ...).
pub fn scratch_copy(config: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("checkpoint");
    std::fs::create_dir(&dir).unwrap();
    for entry in std::fs::read_dir(fixtures().join(config).join("checkpoint")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    (tmp, dir)
}

/// Rewrites `model.safetensors`, letting `edit` change the list of (name, dtype, shape, bytes).
pub fn rewrite_model(dir: &Path, edit: impl FnOnce(&mut Vec<(String, Dtype, Vec<usize>, Vec<u8>)>)) {
    let path = dir.join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Vec<_> =
        file.tensors().into_iter().map(|(n, v)| (n, v.dtype(), v.shape().to_vec(), v.data().to_vec())).collect();
    edit(&mut tensors);
    let views: Vec<_> =
        tensors.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize_to_file(views, None, &path).unwrap();
}

/// Sets `pointer` (a JSON pointer) to `value` in a scratch copy's `config.json`.
pub fn set_config_value(dir: &Path, pointer: &str, value: serde_json::Value) {
    edit_config(dir, |config| {
        *config.pointer_mut(pointer).unwrap_or_else(|| panic!("{pointer} is not in the fixture config")) = value;
    });
}

/// Lets `edit` change a scratch copy's `config.json` (add or remove keys).
pub fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut config: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, config.to_string()).unwrap();
}

/// Rewrites the torch zip file `path` (a `pytorch_model.bin` or `audiovae.pth`) with the entry
/// whose name ends in `entry` ("/data.pkl") replaced by what `edit` makes of its bytes.
pub fn rewrite_zip_entry(path: &Path, entry: &str, edit: impl FnOnce(&[u8]) -> Vec<u8>) {
    use std::io::{Read, Write};
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut entries = Vec::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes).unwrap();
        entries.push((file.name().unwrap().into_owned(), bytes));
    }
    let mut edit = Some(edit);
    let mut writer = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    for (name, bytes) in entries {
        let bytes = if name.ends_with(entry) { edit.take().expect("one entry matches")(&bytes) } else { bytes };
        writer.start_file(name, stored.with_alignment(64)).unwrap();
        writer.write_all(&bytes).unwrap();
    }
    assert!(edit.is_none(), "no entry of {} ends in {entry}", path.display());
    writer.finish().unwrap();
}

/// Writes NaN over every value of `tensor` in the scratch copy's f32 `model.safetensors`.
pub fn poison_tensor(dir: &Path, tensor: &str) {
    rewrite_model(dir, |t| {
        let entry = t.iter_mut().find(|(n, ..)| n == tensor).unwrap();
        assert_eq!(entry.1, Dtype::F32);
        entry.3 = f32::NAN.to_le_bytes().repeat(entry.3.len() / 4);
    });
}

/// Replaces the scratch copy's `audiovae.pth` with an `audiovae.safetensors` (which the loader
/// prefers) holding the same tensors, the decoder's biases set to NaN.
pub fn poison_vae_decoder(dir: &Path) {
    use voxcpm_engine::weights::{StoredDtype, WeightFile};
    let pth = dir.join("audiovae.pth");
    let file = WeightFile::open(&pth).unwrap();
    let mut tensors = Vec::new();
    for (name, stored) in &file.tensors {
        let values = stored.to_f32().unwrap();
        let bytes: Vec<u8> = match stored.dtype {
            StoredDtype::I32 | StoredDtype::I64 => values.iter().flat_map(|&v| (v as i32).to_le_bytes()).collect(),
            _ if name.starts_with("decoder.model.") && name.ends_with(".bias") => {
                f32::NAN.to_le_bytes().repeat(values.len())
            }
            _ => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        };
        let dtype = if matches!(stored.dtype, StoredDtype::I32 | StoredDtype::I64) { Dtype::I32 } else { Dtype::F32 };
        tensors.push((name.clone(), dtype, stored.shape.clone(), bytes));
    }
    let views: Vec<_> =
        tensors.iter().map(|(n, d, s, b)| (n.clone(), TensorView::new(*d, s.clone(), b).unwrap())).collect();
    safetensors::serialize_to_file(views, None, &dir.join("audiovae.safetensors")).unwrap();
    drop(file);
    std::fs::remove_file(pth).unwrap();
}
