//! Reading checkpoint tensors: file formats in [`file`], name/shape bookkeeping in [`loader`].

mod file;
mod loader;

pub use file::{StoredDtype, StoredTensor, WeightFile};
pub use loader::{NativeValues, WeightLoader};
