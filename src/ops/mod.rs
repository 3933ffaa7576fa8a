//! The GPU ops, one module per kernel family, each with an encode-API form (record into
//! the caller's encoder on the caller's buffers) and slice-API forms (upload, compute,
//! read back; async at the root, with blocking wrappers on native targets).

mod class_index;
mod cross_entropy;
mod elementwise;
mod nll;
mod softmax;

pub use class_index::LossBuffers;
pub(crate) use class_index::{ClassIndexOp, encode_class_index};
pub use elementwise::ElementwiseBuffers;
pub use softmax::SoftmaxOp;
