//! Where and how a checkpoint is loaded: one argument for every loader, so a new setting does
//! not double the number of `load_with_...` functions.

use burn::tensor::Device;

use crate::kernels::Products;

/// The device the model runs on and what the CPU's linear layers compute their products in.
#[derive(Debug, Clone)]
pub struct LoadOptions {
    pub device: Device,
    /// Ignored off the CPU (a GPU's float type is its device's, see `runtime::Precision`).
    pub products: Products,
}

impl LoadOptions {
    /// `device` with f32 products, the default everywhere.
    pub fn on(device: &Device) -> Self {
        LoadOptions { device: device.clone(), products: Products::F32 }
    }

    /// The same, computing the CPU's products in `products`.
    pub fn with_products(self, products: Products) -> Self {
        LoadOptions { products, ..self }
    }
}

impl Default for LoadOptions {
    /// The CPU (burn's flex device) with f32 products.
    fn default() -> Self {
        LoadOptions::on(&Device::flex())
    }
}
