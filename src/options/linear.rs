//! The shape, options and results of the fused linear + cross-entropy op.

use super::{CrossEntropyOptions, check_len};
use crate::error::{Error, Result};

/// How the output layer's weight `W` is laid out in memory.
///
/// ```
/// use wgpu_loss::WeightLayout;
/// assert_eq!(WeightLayout::default(), WeightLayout::VocabByHidden);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WeightLayout {
    /// `vocab × hidden_size`, row-major: `W[v, k]` at `v·H + k`, as `torch.nn.Linear.weight`.
    #[default]
    VocabByHidden,
    /// `hidden_size × vocab`, row-major: `W[v, k]` at `k·V + v`, as burn's `Linear`.
    HiddenByVocab,
}

/// The gradients of [`Gpu::linear_cross_entropy_with_grad`](crate::Gpu::linear_cross_entropy_with_grad)
/// (and its CPU twin), all `f32`.
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions};
/// // One token, hidden size 1, two classes: logits (1·1, 1·-1) = (1, -1).
/// let g = cpu::linear_cross_entropy_with_grad(&[1.0], &[1.0, -1.0], None, &[0], 1, 1, 2,
///     &CrossEntropyOptions::default(), &[1.0])?;
/// assert_eq!((g.grad_hidden.len(), g.grad_weight.len(), g.grad_bias), (1, 2, None));
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LinearCrossEntropyGrads {
    /// The loss (`tokens` values for `Reduction::None`, else one).
    pub loss: Vec<f32>,
    /// `∂L/∂h`, `tokens × hidden_size`.
    pub grad_hidden: Vec<f32>,
    /// `∂L/∂W`, laid out as the weight.
    pub grad_weight: Vec<f32>,
    /// `∂L/∂b` (`vocab` values), `Some` exactly when a bias was given.
    pub grad_bias: Option<Vec<f32>>,
}

/// What [`Gpu::linear_cross_entropy_with_extras`](crate::Gpu::linear_cross_entropy_with_extras)
/// returns: the loss, the gradients when an upstream gradient was given (else empty and
/// `None`), and the extras asked for (else empty and `None`).
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions, Extras};
/// let out = cpu::linear_cross_entropy_with_extras(&[1.0], &[1.0, -1.0], None, &[0], 1, 1, 2,
///     &CrossEntropyOptions::default(), Extras::all(), None)?;
/// assert_eq!((out.argmax[0], out.accuracy), (0, Some(1.0)));
/// assert!(out.grads.grad_hidden.is_empty());
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct LinearCrossEntropyOutputs {
    /// The loss and, with an upstream gradient, the gradients.
    pub grads: LinearCrossEntropyGrads,
    /// Per-token log-sum-exp of the (soft-capped) logits.
    pub lse: Vec<f32>,
    /// Per-token argmax of the logits.
    pub argmax: Vec<i32>,
    /// Batch accuracy.
    pub accuracy: Option<f32>,
}

/// The shape of a fused linear + cross-entropy op: `tokens` hidden states of `hidden_size`
/// values, a `vocab`-class output layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LinearShape {
    pub tokens: usize,
    pub hidden: usize,
    pub vocab: usize,
}

impl LinearShape {
    /// Checks the sizes and options: none empty, every product fits, options valid for
    /// `vocab` classes and `spatial` 1 (the op's rows are tokens).
    pub(crate) fn new(tokens: usize, hidden: usize, vocab: usize, opts: &CrossEntropyOptions) -> Result<Self> {
        if opts.spatial != 1 {
            return Err(Error::InvalidArgument {
                argument: "spatial",
                message: format!(
                    "is {}; linear cross-entropy takes tokens × hidden_size inputs (spatial 1)",
                    opts.spatial
                ),
            });
        }
        for (argument, value) in [("tokens", tokens), ("hidden_size", hidden), ("vocab", vocab)] {
            if value == 0 {
                return Err(Error::InvalidArgument { argument, message: "must be at least 1".into() });
            }
        }
        for (argument, a, b) in [("tokens", tokens, hidden), ("vocab", vocab, hidden)] {
            if a.checked_mul(b).is_none_or(|n| n > u32::MAX as usize) {
                return Err(Error::InvalidArgument {
                    argument,
                    message: format!("{a} × {b} elements is more than 2³² (indices are 32-bit on the GPU)"),
                });
            }
        }
        opts.check(vocab)?;
        Ok(Self { tokens, hidden, vocab })
    }

    /// Checks host slices: `hidden`, `weight`, `bias`, `targets` and `grad_output` lengths.
    pub(crate) fn check_slices(
        &self, hidden: usize, weight: usize, bias: Option<usize>, targets: usize, grad_output: Option<usize>,
        opts: &CrossEntropyOptions,
    ) -> Result<()> {
        check_len("hidden", hidden, self.tokens * self.hidden)?;
        check_len("weight", weight, self.vocab * self.hidden)?;
        if let Some(bias) = bias {
            check_len("bias", bias, self.vocab)?;
        }
        check_len("targets", targets, self.tokens)?;
        if let Some(g) = grad_output {
            check_len("grad_output", g, opts.grad_output_len(self.tokens))?;
        }
        Ok(())
    }
}
