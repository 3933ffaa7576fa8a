//! The first stage: every argument of a class-index op checked once, where it enters. The
//! shape and options make a [`Problem`] (checked by the public method, slice or encode API
//! alike); the caller's buffers for it a [`Bound`] (checked by the encode stage).

use super::{ClassIndexOp, LossBuffers};
use crate::error::{Error, Result};
use crate::gpu::{Binding, Gpu};
use crate::options::{CrossEntropyOptions, Precision, check_spatial};

pub(super) fn invalid(argument: &'static str, message: &str) -> Error {
    Error::InvalidArgument { argument, message: message.into() }
}

/// A class-index op's shape and options, checked.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Problem<'o> {
    pub op: ClassIndexOp,
    /// N: the kernels see `loss_rows = N × spatial` rows.
    pub rows: usize,
    pub loss_rows: u64,
    /// Classes per row in memory (a shard's for the shard ops).
    pub classes: usize,
    /// Classes of a whole row and where the memory's start among them (for shards; else
    /// `classes` and 0).
    pub total_classes: usize,
    pub class_offset: usize,
    pub opts: &'o CrossEntropyOptions,
}

impl<'o> Problem<'o> {
    /// Whether the rows are plain cross-entropy rows (weighted class indices alone: no
    /// smoothing, soft-capping or argmax), the register kernels' case.
    pub(crate) fn is_plain(&self, bound: &Bound<'_>) -> bool {
        self.op == ClassIndexOp::CrossEntropy
            && self.opts.label_smoothing == 0.0
            && self.opts.logit_softcap == 0.0
            && !bound.wants_argmax()
    }

    /// Checks `rows` (N), `classes` and `opts` for `op`: a non-empty batch whose size
    /// fits, options valid for the whole row's classes, a shard within its row, and no
    /// cross-entropy-only option for NLL or a shard.
    pub(crate) fn new(op: ClassIndexOp, rows: usize, classes: usize, opts: &'o CrossEntropyOptions) -> Result<Self> {
        check_spatial(opts.spatial)?;
        let loss_rows = opts.loss_rows(rows);
        if loss_rows == 0 || classes == 0 {
            return Err(Error::EmptyBatch { rows, classes });
        }
        if loss_rows.checked_mul(classes).is_none() {
            return Err(invalid("rows", &format!("rows × classes = {loss_rows} × {classes} overflows usize")));
        }
        let (total_classes, class_offset) = match op {
            ClassIndexOp::ShardPartials(shard) | ClassIndexOp::ShardGrad(shard) => {
                shard.check()?;
                (shard.total_classes, shard.offset)
            }
            _ => (classes, 0),
        };
        opts.check(total_classes)?;
        if !op.is_cross_entropy() {
            opts.check_plain(if op.is_shard() { "a class shard" } else { "nll_loss" })?;
            if opts.spatial != 1 && op.is_shard() {
                return Err(invalid("spatial", "class shards take rows × classes inputs only"));
            }
        }
        Ok(Self { op, rows, loss_rows: loss_rows as u64, classes, total_classes, class_offset, opts })
    }

    /// Elements of the `loss_rows × classes` input.
    pub(crate) fn elements(&self) -> u64 {
        self.loss_rows * self.classes as u64
    }

    /// Values of the loss and of `grad_output`: one per loss row for `None`, else one.
    pub(crate) fn loss_len(&self) -> u64 {
        self.opts.grad_output_len(self.rows) as u64
    }
}

impl CrossEntropyOptions {
    /// Checks a cross-entropy call's shape and these options without a device — what
    /// [`Gpu::encode_cross_entropy`] checks before it looks at buffers (`probs`: against
    /// probability targets, as [`Gpu::encode_cross_entropy_probs`]). For layers that must
    /// report bad arguments before they record, such as a deferred executor.
    ///
    /// ```
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// assert!(opts.check_cross_entropy(4, 10, false).is_ok());
    /// assert!(opts.check_cross_entropy(0, 10, false).is_err());
    /// ```
    pub fn check_cross_entropy(&self, rows: usize, classes: usize, probs: bool) -> Result<()> {
        let op = if probs { ClassIndexOp::CrossEntropyProbs } else { ClassIndexOp::CrossEntropy };
        Problem::new(op, rows, classes, self).map(|_| ())
    }
}

/// The caller's buffers for a [`Problem`], checked: present where needed, long enough, with
/// the usages and alignment the op needs, in a precision the op and the device take.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bound<'a> {
    pub precision: Precision,
    /// The gradient overwrites the logits (`grad` is the input buffer; `input` is `None`).
    pub in_place: bool,
    /// The input the kernels read (`None` where NLL's gradient alone reads none).
    pub input: Option<wgpu::BufferSlice<'a>>,
    pub targets: wgpu::BufferSlice<'a>,
    pub grad: Option<wgpu::BufferSlice<'a>>,
    pub loss: Option<wgpu::BufferSlice<'a>>,
    pub grad_output: Option<wgpu::BufferSlice<'a>>,
    pub lse: Option<wgpu::BufferSlice<'a>>,
    pub argmax: Option<wgpu::BufferSlice<'a>>,
    pub accuracy: Option<wgpu::BufferSlice<'a>>,
}

impl<'a> Bound<'a> {
    pub(crate) fn check(gpu: &Gpu, problem: &Problem<'_>, buffers: &LossBuffers<'a>) -> Result<Self> {
        let op = problem.op;
        let extras = buffers.lse.is_some() || buffers.argmax.is_some() || buffers.accuracy.is_some();
        if !op.is_cross_entropy() && extras {
            return Err(invalid("buffers", "lse, argmax and accuracy are outputs of cross-entropy only"));
        }
        check_precision(gpu, op, buffers)?;
        if op == ClassIndexOp::CrossEntropyProbs && buffers.accuracy.is_some() {
            return Err(invalid("accuracy", "needs class-index targets"));
        }
        if buffers.in_place && (!op.is_cross_entropy() || buffers.grad.is_some()) {
            return Err(invalid(
                "grad_in_place",
                "only for cross-entropy, and not together with a separate `grad` buffer",
            ));
        }
        let grad = if buffers.in_place { buffers.input } else { buffers.grad };
        let nothing = buffers.loss.is_none() && grad.is_none() && !extras;
        if nothing && !matches!(op, ClassIndexOp::ShardPartials(_)) {
            return Err(invalid("buffers", "neither `loss` nor `grad` was given: nothing to compute"));
        }
        let reads_input = op != ClassIndexOp::Nll || buffers.loss.is_some();
        let input = match (buffers.input, reads_input) {
            (Some(s), true) => Some(s),
            (None, true) => {
                return Err(invalid("input", "required: the logits (cross-entropy) or log-probabilities (NLL loss)"));
            }
            (_, false) => None,
        };
        let bound = Self {
            precision: buffers.precision,
            in_place: buffers.in_place,
            input: input.filter(|_| !buffers.in_place),
            targets: buffers.targets,
            grad,
            loss: buffers.loss,
            grad_output: buffers.grad_output,
            lse: buffers.lse,
            argmax: buffers.argmax,
            accuracy: buffers.accuracy,
        };
        bound.check_sizes(problem, input)?;
        Ok(bound)
    }

    /// Every buffer holds what `problem` needs, with `STORAGE` (and `COPY_DST` for the
    /// extra outputs, copied into) usage at a 4-byte-aligned offset.
    fn check_sizes(&self, problem: &Problem<'_>, input: Option<wgpu::BufferSlice<'_>>) -> Result<()> {
        let (rows, elements) = (problem.loss_rows, problem.elements());
        if let Some(s) = &input {
            Binding::check_sized("input", s, elements, self.precision.bytes())?;
        }
        if let Some(s) = &self.grad {
            Binding::check_sized("grad", s, elements, self.precision.grad_bytes())?;
        }
        let targets = if problem.op == ClassIndexOp::CrossEntropyProbs { elements } else { rows };
        Binding::check("targets", &self.targets, targets)?;
        for (argument, slice, words) in
            [("lse", &self.lse, rows), ("argmax", &self.argmax, rows), ("accuracy", &self.accuracy, 1)]
        {
            if let Some(slice) = slice {
                check_copy_target(argument, slice, words)?;
            }
        }
        for (argument, slice) in [("loss", &self.loss), ("grad_output", &self.grad_output)] {
            if let Some(slice) = slice {
                Binding::check(argument, slice, problem.loss_len())?;
            }
        }
        Ok(())
    }

    /// Whether the argmax is computed (for itself or for the accuracy).
    pub(crate) fn wants_argmax(&self) -> bool {
        self.argmax.is_some() || self.accuracy.is_some()
    }
}

/// Half-precision logits are for cross-entropy, not in place, and f16 needs `SHADER_F16`.
fn check_precision(gpu: &Gpu, op: ClassIndexOp, buffers: &LossBuffers<'_>) -> Result<()> {
    if buffers.precision == Precision::F32 {
        return Ok(());
    }
    if !op.is_cross_entropy() || buffers.in_place {
        return Err(invalid("precision", "half-precision logits are for cross-entropy, and not with grad_in_place"));
    }
    if buffers.precision == Precision::F16 && !gpu.device().features().contains(wgpu::Features::SHADER_F16) {
        return Err(invalid("precision", "F16 needs the adapter's SHADER_F16 feature"));
    }
    Ok(())
}

/// Checks a caller's buffer for an extra output, copied into with `copy_buffer_to_buffer`.
pub(crate) fn check_copy_target(argument: &'static str, slice: &wgpu::BufferSlice<'_>, elements: u64) -> Result<()> {
    Binding::check(argument, slice, elements)?;
    let usage = slice.buffer().usage();
    if !usage.contains(wgpu::BufferUsages::COPY_DST) {
        return Err(Error::InvalidArgument {
            argument,
            message: format!("the buffer needs COPY_DST usage (the result is copied into it), it has {usage:?}"),
        });
    }
    Ok(())
}
