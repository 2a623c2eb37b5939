//! Takes tensors out of a [`WeightFile`] by name, checking each shape against the config and
//! collecting every problem, so a broken checkpoint yields one error that lists all of them.

use std::collections::BTreeSet;

use burn::tensor::{DType, Device, Tensor, TensorCreationOptions, TensorData};

use super::file::{StoredTensor, WeightFile};
use crate::error::{Error, Result};
use crate::kernels::{PackedMatrix, Products, bf16_bits};

/// Tensor values in the precision they are stored in (bf16 as its bits).
#[derive(Debug, Clone)]
pub enum NativeValues {
    F32(Vec<f32>),
    Bf16(Vec<u16>),
}

pub struct WeightLoader<'a> {
    /// `None` in inventory mode: nothing is read, every request is recorded.
    file: Option<&'a WeightFile>,
    device: Device,
    taken: BTreeSet<String>,
    problems: Vec<String>,
    requested: Vec<(String, Vec<usize>)>,
    /// Upload in f32 whatever the device's float type (see [`in_f32`](Self::in_f32)).
    force_f32: bool,
    /// What the CPU's packed linear layers compute their products in.
    products: Products,
    /// See [`uses_cpu_kernels`](Self::uses_cpu_kernels).
    cpu_kernels: bool,
}

impl<'a> WeightLoader<'a> {
    pub fn new(file: &'a WeightFile, device: &Device) -> Self {
        WeightLoader { file: Some(file), ..Self::inventory(device) }
    }

    /// A loader that reads nothing and records the name and shape of every tensor the model
    /// asks for: the checkpoint layout a config implies (for writing synthetic checkpoints).
    pub fn inventory(device: &Device) -> Self {
        WeightLoader {
            file: None,
            device: device.clone(),
            taken: BTreeSet::new(),
            problems: Vec::new(),
            requested: Vec::new(),
            force_f32: false,
            products: Products::F32,
            cpu_kernels: *device == Device::flex(),
        }
    }

    /// Packed linear layers (the CPU's) compute their products in `products`: with
    /// [`Products::Bf16`], f32 weights are rounded to bf16 as they are packed. Parts loaded
    /// [`in_f32`](Self::in_f32) keep f32 products.
    pub fn with_products(mut self, products: Products) -> Self {
        self.products = products;
        self
    }

    /// Loads what `load` asks for in f32 even on a device that computes in f16: for the parts
    /// that must keep full precision (the quantiser, whose rounding a half-precision weight
    /// would move). On the CPU it keeps the packed linear layers' products in f32 when the
    /// loader was set to bf16 products.
    pub fn in_f32<T>(&mut self, load: impl FnOnce(&mut Self) -> T) -> T {
        let outer = std::mem::replace(&mut self.force_f32, true);
        let loaded = load(self);
        self.force_f32 = outer;
        loaded
    }

    /// What an inventory loader recorded, in request order.
    pub fn into_requested(self) -> Vec<(String, Vec<usize>)> {
        self.requested
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Whether the layers with a CPU path (linear, the AudioVAE's convs, Snake) load their
    /// weights for [`crate::kernels`] and fused loops rather than for burn's ops: on burn's CPU
    /// (flex) device, where those beat burn's ops, and nowhere else. Answered here, once per
    /// loader, so that every layer makes the same choice.
    pub fn uses_cpu_kernels(&self) -> bool {
        self.cpu_kernels
    }

    /// The stored tensor `name`, checked to have `shape` (recorded and `None` otherwise).
    fn stored(&mut self, name: &str, shape: &[usize]) -> Option<&'a StoredTensor> {
        let Some(file) = self.file else {
            self.requested.push((name.to_owned(), shape.to_vec()));
            return None;
        };
        let Some(stored) = file.tensors.get(name) else {
            self.problems.push(format!("missing tensor {name} (expected shape {shape:?})"));
            return None;
        };
        self.taken.insert(name.to_owned());
        if stored.shape != shape {
            self.problems.push(format!("tensor {name} has shape {:?}, the config needs {shape:?}", stored.shape));
            return None;
        }
        Some(stored)
    }

    /// Reads `name` as f32 values, checking that its shape is `shape`.
    pub fn values(&mut self, name: &str, shape: &[usize]) -> Option<Vec<f32>> {
        let stored = self.stored(name, shape)?;
        let values = self.readable(name, stored.to_f32());
        stored.release();
        values
    }

    fn readable<T>(&mut self, name: &str, read: std::io::Result<T>) -> Option<T> {
        read.map_err(|e| self.problems.push(format!("tensor {name} cannot be read: {e}"))).ok()
    }

    /// `name` in its stored precision: bf16 stays bf16 (exact, half the memory of f32),
    /// anything else becomes f32.
    pub fn native_values(&mut self, name: &str, shape: &[usize]) -> Option<NativeValues> {
        let stored = self.stored(name, shape)?;
        let values = match stored.bf16_bits() {
            Some(bits) => self.readable(name, bits).map(NativeValues::Bf16),
            None => self.readable(name, stored.to_f32()).map(NativeValues::F32),
        };
        stored.release();
        values
    }

    /// A PyTorch `nn.Linear` weight `[out, in]` packed for the CPU kernels, in its stored
    /// precision (see [`native_values`](Self::native_values)), or rounded to bf16 for bf16
    /// products (see [`with_products`](Self::with_products)).
    pub fn packed_linear(&mut self, name: &str, d_in: usize, d_out: usize) -> PackedMatrix {
        let products = if self.force_f32 { Products::F32 } else { self.products };
        match (self.native_values(name, &[d_out, d_in]), products) {
            (Some(NativeValues::Bf16(bits)), _) => PackedMatrix::from_bf16(&bits, d_out, d_in, products),
            (Some(NativeValues::F32(values)), Products::Bf16) => {
                let bits: Vec<u16> = values.into_iter().map(bf16_bits).collect();
                PackedMatrix::from_bf16(&bits, d_out, d_in, products)
            }
            (Some(NativeValues::F32(values)), Products::F32) => PackedMatrix::from_f32(&values, d_out, d_in),
            // A stand-in so that loading goes on and reports every problem; never run (`finish`).
            (None, _) => PackedMatrix::zeros(d_in, d_out),
        }
    }

    /// A tensor of the given shape, as stored.
    pub fn tensor<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Tensor<D> {
        match self.values(name, &shape) {
            Some(values) => self.upload(values, shape),
            None => self.placeholder(shape),
        }
    }

    /// A PyTorch `nn.Linear` weight `[out, in]`, transposed to the `[in, out]` burn multiplies by.
    pub fn linear_weight(&mut self, name: &str, d_in: usize, d_out: usize) -> Tensor<2> {
        match self.values(name, &[d_out, d_in]) {
            Some(values) => self.upload(transpose(&values, d_out, d_in), [d_in, d_out]),
            None => self.placeholder([d_in, d_out]),
        }
    }

    /// A weight-normed conv weight folded to `g · v / ‖v‖`, the norm taken over every dimension
    /// but the first (architecture doc §5.9; for transposed convs dim 0 is the input channels).
    pub fn weight_norm(&mut self, name: &str, shape: [usize; 3]) -> Tensor<3> {
        match self.weight_norm_values(name, shape) {
            Some(values) => self.upload(values, shape),
            None => self.placeholder(shape),
        }
    }

    /// [`weight_norm`](Self::weight_norm)'s values, row-major (`None` if a part is missing).
    pub fn weight_norm_values(&mut self, name: &str, shape: [usize; 3]) -> Option<Vec<f32>> {
        let g = self.values(&format!("{name}.weight_g"), &[shape[0], 1, 1]);
        let v = self.values(&format!("{name}.weight_v"), &shape);
        let (g, mut v) = (g?, v?);
        let row = shape[1] * shape[2];
        for (gain, chunk) in g.iter().zip(v.chunks_mut(row)) {
            let norm = chunk.iter().map(|x| x * x).sum::<f32>().sqrt();
            let factor = gain / norm;
            chunk.iter_mut().for_each(|x| *x *= factor);
        }
        Some(v)
    }

    /// Records a problem found by the caller (e.g. a stored value that contradicts the config).
    pub fn report(&mut self, problem: String) {
        self.problems.push(problem);
    }

    /// Marks a tensor that inference does not use (e.g. `fc_logvar`) as accounted for.
    pub fn skip(&mut self, name: &str, shape: &[usize]) {
        match self.file {
            None => self.requested.push((name.to_owned(), shape.to_vec())),
            Some(file) if file.tensors.contains_key(name) => {
                self.taken.insert(name.to_owned());
            }
            Some(_) => self.problems.push(format!("missing tensor {name} (expected shape {shape:?})")),
        }
    }

    /// Ends loading: any problem, or any tensor the model did not take, is an error.
    pub fn finish(mut self) -> Result<()> {
        let file = self.file.expect("finish() is for loaders that read a file");
        for name in file.tensors.keys() {
            if !self.taken.contains(name) {
                self.problems.push(format!("unexpected tensor {name}"));
            }
        }
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(Error::WeightMismatch { path: file.path.clone(), problems: self.problems })
        }
    }

    fn upload<const D: usize>(&self, values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
        Tensor::from_data(TensorData::new(values, shape), self.creation_options())
    }

    fn creation_options(&self) -> TensorCreationOptions {
        let options = TensorCreationOptions::new(self.device.clone());
        if self.force_f32 { options.with_dtype(DType::F32) } else { options }
    }

    /// Stands in for a tensor that failed to load, with the expected shape so that building
    /// the model goes on and every problem gets reported; `finish` fails before any forward pass
    /// can see it. Zeroed memory is mapped lazily, so even a whole missing model costs little.
    fn placeholder<const D: usize>(&self, shape: [usize; D]) -> Tensor<D> {
        Tensor::zeros(shape, self.creation_options())
    }
}

fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}
