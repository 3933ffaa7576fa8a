//! The GPU ops, one module per kernel family, each with an encode-API form (record into
//! the caller's encoder on the caller's buffers) and slice-API forms (upload, compute,
//! read back; async at the root, with blocking wrappers on native targets).

mod class_index;
mod elementwise;
mod linear_cross_entropy;
mod softmax;

pub use class_index::{ClassShard, LossBuffers, RowPartial, cross_entropy_from_partials, merge_row_partials};
pub use elementwise::ElementwiseBuffers;
pub use linear_cross_entropy::LinearBuffers;
