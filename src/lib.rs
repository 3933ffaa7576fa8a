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

/// The slice API of an op, one way for every op: each async method (the root form, for the
/// web and async apps) written once with its docs, and beside it its blocking form (native
/// only), which has the same arguments, its own docs, and waits on the async one.
macro_rules! slice_api {
    ($(
        $(#[doc = $blocking_doc:expr])*
        pub fn $blocking:ident;
        $(#[$attr:meta])*
        pub async fn $async:ident $(<$($generic:ident: $bound:path),*>)? (
            &$self:tt $(, $arg:ident: $ty:ty)* $(,)?
        ) -> $ret:ty $body:block
    )*) => {
        impl crate::gpu::Gpu {$(
            $(#[doc = $blocking_doc])*
            #[cfg(not(target_arch = "wasm32"))]
            #[allow(clippy::too_many_arguments)]
            pub fn $blocking $(<$($generic: $bound),*>)? (&$self $(, $arg: $ty)*) -> $ret {
                pollster::block_on($self.$async($($arg),*))
            }

            $(#[$attr])*
            pub async fn $async $(<$($generic: $bound),*>)? (&$self $(, $arg: $ty)*) -> $ret $body
        )*}
    };
}

mod error;
mod gpu;
mod ops;
mod options;
mod reduction;

pub mod cpu;

pub use error::{Error, Result};
pub use gpu::{Gpu, GpuOptions, Workspace};
pub use ops::{
    ClassShard, ElementwiseBuffers, LinearBuffers, LossBuffers, RowPartial, cross_entropy_from_partials,
    merge_row_partials,
};
pub use options::{
    BceOptions, ClassTargets, CrossEntropyOptions, CrossEntropyOutputs, EmptyPolicy, Extras, HalfLogits, KlDivOptions,
    KlDivReduction, LinearCrossEntropyGrads, LinearCrossEntropyOutputs, Precision, Reduction, SoftmaxOp, WeightLayout,
};
