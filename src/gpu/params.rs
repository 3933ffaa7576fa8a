//! The uniform parameter block every kernel reads.

use bytemuck::{Pod, Zeroable};

pub(crate) const FLAG_WEIGHT: u32 = 1;
pub(crate) const FLAG_MEAN: u32 = 2;
pub(crate) const FLAG_SUM: u32 = 4;
pub(crate) const FLAG_GRAD_BUFFER: u32 = 8;
pub(crate) const FLAG_EMPTY_ZERO: u32 = 16;
pub(crate) const FLAG_IN_PLACE: u32 = 32;
pub(crate) const FLAG_PROB_TARGETS: u32 = 64;
pub(crate) const FLAG_LSE: u32 = 128;
pub(crate) const FLAG_ARGMAX: u32 = 256;

/// Mirrors `Params` in shaders/common.wgsl field for field.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub(crate) struct LossParams {
    pub rows: u32,
    pub classes: u32,
    pub ignore_index: i32,
    pub flags: u32,
    pub label_smoothing: f32,
    pub grad_scale: f32,
    pub input_off: u32,
    pub target_off: u32,
    pub grad_output_off: u32,
    pub row_loss_off: u32,
    pub grad_off: u32,
    pub loss_out_off: u32,
    pub row_base: u32,
    pub seg_len: u32,
    pub segments: u32,
    pub class_offset: u32,
    pub total_classes: u32,
    pub spatial: u32,
    pub softcap: f32,
    pub z_loss_scale: f32,
    pub lse_off: u32,
    pub argmax_off: u32,
    pub arg_partial_off: u32,
    pub accuracy_off: u32,
    pub batch_len: u32,
}

impl Default for LossParams {
    /// All zeros but `spatial` = 1 (rows × classes).
    fn default() -> Self {
        Self {
            spatial: 1,
            ..Zeroable::zeroed()
        }
    }
}
