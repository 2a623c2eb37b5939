//! Takes tensors out of a [`WeightFile`] by name, checking each shape against the config and
//! collecting every problem, so a broken checkpoint yields one error that lists all of them.

use std::collections::BTreeSet;

use burn::tensor::{Device, Tensor, TensorData};

use super::file::WeightFile;
use crate::error::{Error, Result};

pub struct WeightLoader<'a> {
    file: &'a WeightFile,
    device: Device,
    taken: BTreeSet<String>,
    problems: Vec<String>,
}

impl<'a> WeightLoader<'a> {
    pub fn new(file: &'a WeightFile, device: &Device) -> Self {
        WeightLoader { file, device: device.clone(), taken: BTreeSet::new(), problems: Vec::new() }
    }

    pub fn device(&self) -> &Device {
        &self.device
    }

    /// Reads `name` as f32 values, checking that its shape is `shape`.
    pub fn values(&mut self, name: &str, shape: &[usize]) -> Option<Vec<f32>> {
        let Some(stored) = self.file.tensors.get(name) else {
            self.problems.push(format!("missing tensor {name} (expected shape {shape:?})"));
            return None;
        };
        self.taken.insert(name.to_owned());
        if stored.shape != shape {
            self.problems.push(format!("tensor {name} has shape {:?}, the config needs {shape:?}", stored.shape));
            return None;
        }
        match stored.to_f32() {
            Ok(values) => Some(values),
            Err(e) => {
                self.problems.push(format!("tensor {name} cannot be read: {e}"));
                None
            }
        }
    }

    /// A tensor of the given shape, as stored.
    pub fn tensor<const D: usize>(&mut self, name: &str, shape: [usize; D]) -> Tensor<D> {
        match self.values(name, &shape) {
            Some(values) => self.upload(values, shape),
            None => self.placeholder(),
        }
    }

    /// A PyTorch `nn.Linear` weight `[out, in]`, transposed to the `[in, out]` burn multiplies by.
    pub fn linear_weight(&mut self, name: &str, d_in: usize, d_out: usize) -> Tensor<2> {
        match self.values(name, &[d_out, d_in]) {
            Some(values) => self.upload(transpose(&values, d_out, d_in), [d_in, d_out]),
            None => self.placeholder(),
        }
    }

    /// A weight-normed conv weight folded to `g · v / ‖v‖`, the norm taken over every dimension
    /// but the first (architecture doc §5.9; for transposed convs dim 0 is the input channels).
    pub fn weight_norm(&mut self, name: &str, shape: [usize; 3]) -> Tensor<3> {
        let g = self.values(&format!("{name}.weight_g"), &[shape[0], 1, 1]);
        let v = self.values(&format!("{name}.weight_v"), &shape);
        let (Some(g), Some(mut v)) = (g, v) else { return self.placeholder() };
        let row = shape[1] * shape[2];
        for (gain, chunk) in g.iter().zip(v.chunks_mut(row)) {
            let norm = chunk.iter().map(|x| x * x).sum::<f32>().sqrt();
            let factor = gain / norm;
            chunk.iter_mut().for_each(|x| *x *= factor);
        }
        self.upload(v, shape)
    }

    /// Records a problem found by the caller (e.g. a stored value that contradicts the config).
    pub fn report(&mut self, problem: String) {
        self.problems.push(problem);
    }

    /// Marks tensors that inference does not use (e.g. `fc_logvar`) as accounted for.
    pub fn skip(&mut self, name: &str) {
        if self.file.tensors.contains_key(name) {
            self.taken.insert(name.to_owned());
        } else {
            self.problems.push(format!("missing tensor {name}"));
        }
    }

    /// Ends loading: any problem, or any tensor the model did not take, is an error.
    pub fn finish(mut self) -> Result<()> {
        for name in self.file.tensors.keys() {
            if !self.taken.contains(name) {
                self.problems.push(format!("unexpected tensor {name}"));
            }
        }
        if self.problems.is_empty() {
            Ok(())
        } else {
            Err(Error::WeightMismatch { path: self.file.path.clone(), problems: self.problems })
        }
    }

    fn upload<const D: usize>(&self, values: Vec<f32>, shape: [usize; D]) -> Tensor<D> {
        Tensor::from_data(TensorData::new(values, shape), &self.device)
    }

    /// Stands in for a tensor that failed to load; `finish` reports the failure before any
    /// forward pass can see it.
    fn placeholder<const D: usize>(&self) -> Tensor<D> {
        Tensor::zeros([1; D], &self.device)
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
