//! Tensor files as the official checkpoints ship them: safetensors (memory-mapped) and torch
//! zip pickles (`audiovae.pth`, read lazily through `pytorch-reader`).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;

use crate::error::{Error, Result};

/// Element types a checkpoint may store floats in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoredDtype {
    F32,
    F16,
    BF16,
    F64,
    I32,
    I64,
}

impl StoredDtype {
    fn size(self) -> usize {
        match self {
            StoredDtype::F16 | StoredDtype::BF16 => 2,
            StoredDtype::F32 | StoredDtype::I32 => 4,
            StoredDtype::F64 | StoredDtype::I64 => 8,
        }
    }
}

enum Bytes {
    Mapped { map: Arc<Mmap>, start: usize, end: usize },
    Pickled(pytorch_reader::Tensor),
}

/// One stored tensor: its type, shape and where its bytes are.
pub struct StoredTensor {
    pub dtype: StoredDtype,
    pub shape: Vec<usize>,
    bytes: Bytes,
}

/// Every tensor of one file, by name.
pub struct WeightFile {
    pub path: PathBuf,
    pub tensors: BTreeMap<String, StoredTensor>,
}

impl WeightFile {
    /// Opens a `.safetensors` file, or a torch pickle (`.pth`/`.pt`/`.bin`) whose tensors may sit
    /// under a top-level `state_dict` key.
    pub fn open(path: &Path) -> Result<Self> {
        let is_safetensors = path.extension().is_some_and(|e| e == "safetensors");
        if is_safetensors { Self::open_safetensors(path) } else { Self::open_pickle(path) }
    }

    fn open_safetensors(path: &Path) -> Result<Self> {
        let bad = |message: String| Error::WeightFile { path: path.to_owned(), message };
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        // SAFETY: the file is opened read-only; like every mmap user we assume nobody truncates
        // a checkpoint while it is being loaded.
        let map = Arc::new(unsafe { Mmap::map(&file) }.map_err(|e| Error::io(path, e))?);
        check_offsets(&map).map_err(bad)?;
        let (header_len, metadata) = safetensors::SafeTensors::read_metadata(&map)
            .map_err(|e| bad(format!("not a valid safetensors file ({e})")))?;
        let data_start = 8 + header_len;
        let mut tensors = BTreeMap::new();
        for (name, info) in metadata.tensors() {
            let dtype = match info.dtype {
                safetensors::Dtype::F32 => StoredDtype::F32,
                safetensors::Dtype::F16 => StoredDtype::F16,
                safetensors::Dtype::BF16 => StoredDtype::BF16,
                safetensors::Dtype::F64 => StoredDtype::F64,
                safetensors::Dtype::I32 => StoredDtype::I32,
                safetensors::Dtype::I64 => StoredDtype::I64,
                other => {
                    return Err(bad(format!("tensor {name} has unsupported dtype {other:?}")));
                }
            };
            let (start, end) = info.data_offsets;
            let (start, end) = (data_start + start, data_start + end);
            if end > map.len() {
                return Err(bad(format!("tensor {name} lies past the end of the file (truncated?)")));
            }
            let bytes = Bytes::Mapped { map: map.clone(), start, end };
            tensors.insert(name, StoredTensor { dtype, shape: info.shape.clone(), bytes });
        }
        Ok(WeightFile { path: path.to_owned(), tensors })
    }

    fn open_pickle(path: &Path) -> Result<Self> {
        let bad = |message: String| Error::WeightFile { path: path.to_owned(), message };
        if !path.exists() {
            return Err(Error::io(path, std::io::ErrorKind::NotFound.into()));
        }
        let reader = match pytorch_reader::PytorchReader::with_top_level_key(path, "state_dict") {
            Ok(reader) => reader,
            Err(pytorch_reader::PytorchError::KeyNotFound(_)) => pytorch_reader::PytorchReader::new(path)
                .map_err(|e| bad(format!("not a readable torch checkpoint ({e})")))?,
            Err(e) => return Err(bad(format!("not a readable torch checkpoint ({e})"))),
        };
        let mut tensors = BTreeMap::new();
        for (name, tensor) in reader.into_tensors() {
            use pytorch_reader::DType as D;
            let dtype = match tensor.dtype() {
                D::F32 => StoredDtype::F32,
                D::F16 => StoredDtype::F16,
                D::BF16 => StoredDtype::BF16,
                D::F64 => StoredDtype::F64,
                D::I32 => StoredDtype::I32,
                D::I64 => StoredDtype::I64,
                other => {
                    return Err(bad(format!("tensor {name} has unsupported dtype {other:?}")));
                }
            };
            let shape = tensor.shape().to_vec();
            tensors.insert(name, StoredTensor { dtype, shape, bytes: Bytes::Pickled(tensor) });
        }
        Ok(WeightFile { path: path.to_owned(), tensors })
    }
}

/// Refuses a safetensors header whose data offsets lie past the end of the file. safetensors
/// 0.6 checks that the offsets tile the data, then adds the last one to the header's length
/// unchecked: offsets summing near 2^64 (eight 2^61-byte tensors) overflow, a panic in debug
/// builds (a case built while writing the fuzz target: fuzz/regressions/safetensors/). A
/// header that does not parse is left to safetensors to report.
fn check_offsets(file: &[u8]) -> std::result::Result<(), String> {
    let Some(len) = file.get(..8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes"))) else {
        return Ok(());
    };
    let Some(header) = usize::try_from(len).ok().and_then(|n| file.get(8..n.checked_add(8)?)) else {
        return Ok(());
    };
    let Ok(serde_json::Value::Object(entries)) = serde_json::from_slice(header) else {
        return Ok(());
    };
    let data_len = (file.len() - 8 - header.len()) as u64;
    for (name, entry) in &entries {
        let offsets = entry.get("data_offsets").and_then(|o| o.as_array()).into_iter().flatten();
        if offsets.filter_map(|o| o.as_u64()).any(|o| o > data_len) {
            return Err(format!("tensor {name} lies past the end of the file (truncated?)"));
        }
    }
    Ok(())
}

impl StoredTensor {
    /// Number of elements.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The stored bytes, checked against the shape.
    fn raw(&self) -> std::io::Result<std::borrow::Cow<'_, [u8]>> {
        let raw = match &self.bytes {
            Bytes::Mapped { map, start, end } => std::borrow::Cow::Borrowed(&map[*start..*end]),
            Bytes::Pickled(t) => std::borrow::Cow::Owned(t.read()?),
        };
        if raw.len() != self.len() * self.dtype.size() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!(
                    "holds {} bytes, its shape {:?} needs {}",
                    raw.len(),
                    self.shape,
                    self.len() * self.dtype.size()
                ),
            ));
        }
        Ok(raw)
    }

    /// Drops this tensor's mapped pages from the process once it has been read (they stay in the
    /// page cache), so loading does not hold the checkpoint and the model in memory together.
    pub fn release(&self) {
        #[cfg(unix)]
        if let Bytes::Mapped { map, start, end } = &self.bytes {
            // SAFETY: the mapping is a read-only view of a file: dropped pages are read back from
            // the file if touched again, so no contents can change or be lost.
            let _ = unsafe { map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, *start, end - start) };
        }
    }

    /// The raw bits of a bf16 tensor (`None` for any other type), for weights kept in bf16.
    pub fn bf16_bits(&self) -> Option<std::io::Result<Vec<u16>>> {
        (self.dtype == StoredDtype::BF16)
            .then(|| Ok(self.raw()?.chunks_exact(2).map(|b| u16::from_le_bytes([b[0], b[1]])).collect()))
    }

    /// The values converted to f32, whatever the stored type.
    pub fn to_f32(&self) -> std::io::Result<Vec<f32>> {
        let raw = self.raw()?;
        let words = |n: usize| raw.chunks_exact(n);
        Ok(match self.dtype {
            StoredDtype::F32 => words(4).map(|b| f32::from_le_bytes(b.try_into().unwrap())).collect(),
            StoredDtype::F64 => words(8).map(|b| f64::from_le_bytes(b.try_into().unwrap()) as f32).collect(),
            StoredDtype::F16 => words(2).map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            StoredDtype::BF16 => words(2).map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32()).collect(),
            StoredDtype::I32 => words(4).map(|b| i32::from_le_bytes(b.try_into().unwrap()) as f32).collect(),
            StoredDtype::I64 => words(8).map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn safetensors_file(header: &serde_json::Value, data: &[u8]) -> tempfile::NamedTempFile {
        let header = serde_json::to_vec(header).unwrap();
        let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
        bytes.extend(header);
        bytes.extend(data);
        let file = tempfile::Builder::new().suffix(".safetensors").tempfile().unwrap();
        std::fs::write(file.path(), bytes).unwrap();
        file
    }

    #[test]
    fn offsets_past_the_end_are_refused_before_safetensors_adds_them() {
        // Eight U8 tensors of 2^61 - 1 bytes tile offsets up to 2^64 - 8.
        let size = (1u64 << 61) - 1;
        let header: serde_json::Map<String, serde_json::Value> = (0..8u64)
            .map(|i| {
                let entry =
                    serde_json::json!({ "dtype": "U8", "shape": [size], "data_offsets": [i * size, (i + 1) * size] });
                (format!("t{i}"), entry)
            })
            .collect();
        let file = safetensors_file(&header.into(), &[]);
        let err = WeightFile::open(file.path()).err().expect("refused").to_string();
        assert!(err.contains("past the end"), "{err}");

        let fine = serde_json::json!({ "a": { "dtype": "F32", "shape": [2], "data_offsets": [0, 8] } });
        let file = safetensors_file(&fine, &[0; 8]);
        assert_eq!(WeightFile::open(file.path()).unwrap().tensors["a"].to_f32().unwrap(), [0.0, 0.0]);
    }
}
