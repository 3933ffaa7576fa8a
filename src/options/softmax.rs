//! Which op of the softmax family an `(N, C, d1, …)` entry point runs.

use crate::error::Result;

/// The ops of the softmax family, for the `(N, C, d1, …)` entry points
/// ([`Gpu::softmax_spatial`](crate::Gpu::softmax_spatial), [`Gpu::encode_softmax_spatial`](crate::Gpu::encode_softmax_spatial), [`cpu::softmax_spatial`](crate::cpu::softmax_spatial)).
///
/// ```
/// use wgpu_loss::{cpu, SoftmaxOp};
/// let y = cpu::softmax_spatial(SoftmaxOp::LogSoftmax, &[0.0, 0.0], None, 1, 2, 1)?;
/// assert!((y[0] + 2f32.ln()).abs() < 1e-7);
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SoftmaxOp {
    /// `log_softmax(input)`.
    LogSoftmax,
    /// `softmax(input)`.
    Softmax,
    /// The gradient of log-softmax from its output and `grad_output`.
    LogSoftmaxBackward,
    /// The gradient of softmax from its output and `grad_output`.
    SoftmaxBackward,
}

impl SoftmaxOp {
    /// The names of the op's input and output, checking that `grad_output` is given exactly
    /// for the backward ops.
    pub(crate) fn arguments(self, has_grad_output: bool) -> Result<(&'static str, &'static str)> {
        let (names, backward) = match self {
            SoftmaxOp::LogSoftmax | SoftmaxOp::Softmax => (("input", "output"), false),
            SoftmaxOp::LogSoftmaxBackward | SoftmaxOp::SoftmaxBackward => (("output", "grad_input"), true),
        };
        if backward != has_grad_output {
            return Err(crate::Error::InvalidArgument {
                argument: "grad_output",
                message: format!("{self:?} {} an upstream gradient", if backward { "needs" } else { "does not take" }),
            });
        }
        Ok(names)
    }
}
