//! Writes a state dict the way `torch.save({"state_dict": sd}, path)` does: a zip archive with
//! a protocol-2 pickle (`archive/data.pkl`) whose tensors point at raw little-endian storages
//! (`archive/data/<key>`). Only what a flat dict of contiguous tensors needs.

use std::io::Write;
use std::path::Path;

use zip::write::SimpleFileOptions;

use crate::error::{Error, Result};

pub struct PthTensor {
    name: String,
    shape: Vec<usize>,
    storage_type: &'static str,
    bytes: Vec<u8>,
}

impl PthTensor {
    pub fn float32(name: &str, shape: &[usize], values: Vec<f32>) -> Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        PthTensor { name: name.into(), shape: shape.to_vec(), storage_type: "FloatStorage", bytes }
    }

    pub fn int32(name: &str, shape: &[usize], values: Vec<i32>) -> Self {
        let bytes = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        PthTensor { name: name.into(), shape: shape.to_vec(), storage_type: "IntStorage", bytes }
    }
}

pub fn write_state_dict(path: &Path, tensors: &[PthTensor]) -> Result<()> {
    let io = |e: std::io::Error| Error::write(path, e);
    let zip_err = |e: zip::result::ZipError| Error::write(path, std::io::Error::other(e.to_string()));
    let file = std::fs::File::create(path).map_err(io)?;
    let mut zip = zip::ZipWriter::new(file);
    let stored = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let entries: [(&str, Vec<u8>); 2] =
        [("archive/data.pkl", pickle(tensors)), ("archive/byteorder", b"little".to_vec())];
    for (name, bytes) in entries {
        zip.start_file(name, stored).map_err(zip_err)?;
        zip.write_all(&bytes).map_err(io)?;
    }
    for (key, tensor) in tensors.iter().enumerate() {
        // torch aligns storages to 64 bytes so they can be memory-mapped.
        zip.start_file(format!("archive/data/{key}"), stored.with_alignment(64)).map_err(zip_err)?;
        zip.write_all(&tensor.bytes).map_err(io)?;
    }
    zip.start_file("archive/version", stored).map_err(zip_err)?;
    zip.write_all(b"3\n").map_err(io)?;
    zip.finish().map_err(zip_err)?;
    Ok(())
}

/// `{"state_dict": OrderedDict(name -> _rebuild_tensor_v2(storage, 0, shape, stride, False, OrderedDict()))}`
fn pickle(tensors: &[PthTensor]) -> Vec<u8> {
    let mut p = Pickle(vec![0x80, 2]);
    p.op(b'}');
    p.string("state_dict");
    p.global("collections", "OrderedDict");
    p.op(b')');
    p.op(b'R');
    p.op(b'(');
    for (key, t) in tensors.iter().enumerate() {
        p.string(&t.name);
        p.global("torch._utils", "_rebuild_tensor_v2");
        p.op(b'(');
        p.op(b'(');
        p.string("storage");
        p.global("torch", t.storage_type);
        p.string(&key.to_string());
        p.string("cpu");
        p.int(t.shape.iter().product::<usize>());
        p.op(b't');
        p.op(b'Q');
        p.int(0);
        p.tuple(&t.shape);
        let strides: Vec<usize> = (0..t.shape.len()).map(|i| t.shape[i + 1..].iter().product()).collect();
        p.tuple(&strides);
        p.op(0x89);
        p.global("collections", "OrderedDict");
        p.op(b')');
        p.op(b'R');
        p.op(b't');
        p.op(b'R');
    }
    p.op(b'u');
    p.op(b's');
    p.op(b'.');
    p.0
}

struct Pickle(Vec<u8>);

impl Pickle {
    fn op(&mut self, code: u8) {
        self.0.push(code);
    }

    fn string(&mut self, s: &str) {
        self.0.push(b'X');
        self.0.extend_from_slice(&(s.len() as u32).to_le_bytes());
        self.0.extend_from_slice(s.as_bytes());
    }

    fn global(&mut self, module: &str, name: &str) {
        self.0.push(b'c');
        self.0.extend_from_slice(format!("{module}\n{name}\n").as_bytes());
    }

    fn int(&mut self, v: usize) {
        if let Ok(small) = i32::try_from(v) {
            self.0.push(b'J');
            self.0.extend_from_slice(&small.to_le_bytes());
        } else {
            // LONG1 with 8 little-endian bytes.
            self.0.extend_from_slice(&[0x8a, 8]);
            self.0.extend_from_slice(&(v as u64).to_le_bytes());
        }
    }

    fn tuple(&mut self, values: &[usize]) {
        self.op(b'(');
        for &v in values {
            self.int(v);
        }
        self.op(b't');
    }
}
