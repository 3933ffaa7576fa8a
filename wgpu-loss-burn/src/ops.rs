//! The losses as a burn backend extension: one trait, implemented by burn's cubecl backend
//! (recording this crate's kernels on burn's buffers, `record.rs`), generated for fusion
//! (deferred to burn's fusion stream) and implemented for autodiff with a backward
//! (`autodiff.rs`).

use burn::backend::fusion::custom::TensorSpec;
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, backend_extension};
use burn::tensor::{DType, Shape};
use wgpu_loss::{CrossEntropyOptions, Error, Reduction, Result};

/// Shape and options of a cross-entropy on `rows × classes` logits (`rows × classes ×
/// opts.spatial` for `(N, C, d…)` inputs), checked by the caller.
#[derive(Debug, Clone)]
pub struct CeArgs {
    pub rows: usize,
    pub classes: usize,
    pub opts: CrossEntropyOptions,
    /// The logits' shape, which their gradient takes.
    pub dims: Vec<usize>,
}

impl CeArgs {
    /// The problem of logits of shape `dims` (`(N, C, d1, …, dk)`): `opts` with the
    /// shape's `spatial = d1·…·dk`, which the caller's must be 1 or equal, checked as the
    /// core crate checks them (`probs`: against probability targets).
    pub fn of(dims: &[usize], opts: &CrossEntropyOptions, probs: bool) -> Result<Self> {
        let [rows, classes, rest @ ..] = dims else {
            let message = format!("has shape {dims:?}; cross-entropy takes (N, C) or (N, C, d1, …) logits");
            return Err(Error::InvalidArgument { argument: "logits", message });
        };
        let spatial = rest.iter().product();
        if opts.spatial != 1 && opts.spatial != spatial {
            let message = format!("is {}; the logits' shape {dims:?} gives {spatial} (leave it at 1)", opts.spatial);
            return Err(Error::InvalidArgument { argument: "spatial", message });
        }
        let mut opts = opts.clone();
        opts.spatial = spatial;
        opts.check_cross_entropy(*rows, *classes, probs)?;
        Ok(Self { rows: *rows, classes: *classes, opts, dims: dims.to_vec() })
    }

    /// The shape of class-index targets for these logits: `(N, d1, …, dk)`.
    pub fn index_target_dims(&self) -> Vec<usize> {
        self.dims.iter().enumerate().filter(|&(d, _)| d != 1).map(|(_, &n)| n).collect()
    }

    /// Rows the softmax runs over: `N·d1·…·dk`.
    pub fn loss_rows(&self) -> usize {
        self.rows * self.opts.spatial
    }
}

/// Shape and options of a fused linear + cross-entropy, checked by the caller. `has_bias`
/// says whether the bias tensor is real (else a placeholder); `scaled` whether the
/// gradients take the `grad_output` tensor as the upstream gradient (else 1, and the
/// `grad_output` argument is a placeholder).
#[derive(Debug, Clone)]
pub struct LinearArgs {
    pub tokens: usize,
    pub hidden_size: usize,
    pub vocab: usize,
    pub opts: CrossEntropyOptions,
    pub has_bias: bool,
    pub scaled: bool,
}

/// Values of the loss: one per row for `Reduction::None`, else one.
pub(crate) fn loss_len(opts: &CrossEntropyOptions, rows: usize) -> usize {
    if opts.reduction == Reduction::None { rows } else { 1 }
}

/// The batch state copied out of the workspace: four 32-bit words.
fn status_spec() -> TensorSpec {
    TensorSpec::new(Shape::new([4]), DType::I32)
}

fn loss_spec(opts: &CrossEntropyOptions, rows: usize) -> TensorSpec {
    TensorSpec::new(Shape::new([loss_len(opts, rows)]), DType::F32)
}

fn f32_spec(shape: Shape) -> TensorSpec {
    TensorSpec::new(shape, DType::F32)
}

fn ce_meta(_logits: &TensorSpec, _targets: &TensorSpec, args: &CeArgs) -> (TensorSpec, TensorSpec) {
    (loss_spec(&args.opts, args.loss_rows()), status_spec())
}

fn ce_grad_meta(logits: &TensorSpec, _targets: &TensorSpec, args: &CeArgs) -> (TensorSpec, TensorSpec, TensorSpec) {
    (loss_spec(&args.opts, args.loss_rows()), f32_spec(logits.shape.clone()), status_spec())
}

fn linear_meta(
    _hidden: &TensorSpec, _weight: &TensorSpec, _bias: &TensorSpec, _targets: &TensorSpec, args: &LinearArgs,
) -> (TensorSpec, TensorSpec) {
    (loss_spec(&args.opts, args.tokens), status_spec())
}

type LinearGradSpecs = (TensorSpec, TensorSpec, TensorSpec, TensorSpec, TensorSpec);

fn linear_grad_meta(
    hidden: &TensorSpec, weight: &TensorSpec, bias: &TensorSpec, _targets: &TensorSpec, _grad_output: &TensorSpec,
    args: &LinearArgs,
) -> LinearGradSpecs {
    (
        loss_spec(&args.opts, args.tokens),
        f32_spec(hidden.shape.clone()),
        f32_spec(weight.shape.clone()),
        f32_spec(bias.shape.clone()),
        status_spec(),
    )
}

/// This crate's losses as operations of a burn backend. Every method also returns the
/// batch state (`[total weight, bad row key, bad value, 0]`), which the public functions
/// read back to report an out-of-range target.
// The outputs are a tuple, as burn's fusion metadata mirrors them; the generated impls
// repeat it, so the lint is allowed for the whole trait.
#[allow(clippy::type_complexity)]
#[backend_extension(Cube, Fusion, Autodiff)]
pub trait LossOps: Backend {
    /// Cross-entropy of the logits against class indices: the loss.
    #[fusion(meta = ce_meta)]
    fn wgpu_loss_cross_entropy(
        logits: FloatTensor<Self>, targets: IntTensor<Self>, args: CeArgs,
    ) -> (FloatTensor<Self>, IntTensor<Self>);

    /// Cross-entropy and its gradient with respect to the logits for an upstream gradient
    /// of 1 (per row for `Reduction::None`): the loss, the gradient.
    #[fusion(meta = ce_grad_meta)]
    fn wgpu_loss_cross_entropy_with_grad(
        logits: FloatTensor<Self>, targets: IntTensor<Self>, args: CeArgs,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, IntTensor<Self>);

    /// Cross-entropy of the logits against probability targets of their shape: the loss.
    #[fusion(meta = ce_meta)]
    fn wgpu_loss_cross_entropy_probs(
        logits: FloatTensor<Self>, targets: FloatTensor<Self>, args: CeArgs,
    ) -> (FloatTensor<Self>, IntTensor<Self>);

    /// Cross-entropy against probability targets and its gradient with respect to the
    /// logits, as [`LossOps::wgpu_loss_cross_entropy_with_grad`].
    #[fusion(meta = ce_grad_meta)]
    fn wgpu_loss_cross_entropy_probs_with_grad(
        logits: FloatTensor<Self>, targets: FloatTensor<Self>, args: CeArgs,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, IntTensor<Self>);

    /// Fused linear + cross-entropy (weight `hidden_size × vocab`, as burn's `Linear`): the loss.
    #[fusion(meta = linear_meta)]
    fn wgpu_loss_linear_cross_entropy(
        hidden: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, targets: IntTensor<Self>,
        args: LinearArgs,
    ) -> (FloatTensor<Self>, IntTensor<Self>);

    /// Fused linear + cross-entropy with the gradients of hidden states, weight and bias:
    /// the loss, `∂h`, `∂W`, `∂b`.
    #[fusion(meta = linear_grad_meta)]
    fn wgpu_loss_linear_cross_entropy_with_grad(
        hidden: FloatTensor<Self>, weight: FloatTensor<Self>, bias: FloatTensor<Self>, targets: IntTensor<Self>,
        grad_output: FloatTensor<Self>, args: LinearArgs,
    ) -> (FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, FloatTensor<Self>, IntTensor<Self>);
}
