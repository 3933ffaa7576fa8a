//! GPU loss kernels (WGSL on wgpu) with PyTorch's semantics, each checked against a CPU twin.
//!
//! ```
//! use wgpu_loss::{cpu, CrossEntropyOptions, Gpu};
//! let gpu = Gpu::new()?;
//! let logits = [2.0, 0.5, -1.0, 0.0, 0.0, 3.0];
//! let targets = [0, 2];
//! let opts = CrossEntropyOptions::default(); // mean, no weight, ignore_index -100
//! let (loss, grad) = gpu.cross_entropy_with_grad(&logits, &targets, 2, 3, &opts, &[1.0])?;
//! let (cpu_loss, cpu_grad) = cpu::cross_entropy_with_grad(&logits, &targets, 2, 3, &opts, &[1.0])?;
//! assert!((loss[0] - cpu_loss[0]).abs() < 1e-6);
//! assert!(grad.iter().zip(&cpu_grad).all(|(g, c)| (g - c).abs() < 1e-6));
//! # Ok::<(), wgpu_loss::Error>(())
//! ```

#![deny(missing_docs)]

mod error;
mod gpu;
mod ops;
mod options;
mod reduction;

pub mod cpu;

pub use error::{Error, Result};
pub use gpu::{Gpu, GpuOptions, Workspace};
pub use ops::{
    ClassShard, ElementwiseBuffers, LossBuffers, RowPartial, cross_entropy_from_partials, merge_row_partials,
};
pub use options::{
    BceOptions, ClassTargets, CrossEntropyOptions, CrossEntropyOutputs, EmptyPolicy, Extras, HalfLogits, KlDivOptions,
    KlDivReduction, Precision, Reduction, SoftmaxOp,
};
