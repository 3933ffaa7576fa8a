//! GPU loss kernels (WGSL on wgpu) with PyTorch's semantics, each checked against a CPU twin.

mod error;
mod options;

pub mod cpu;

pub use error::{Error, Result};
pub use options::{CrossEntropyOptions, Reduction};
