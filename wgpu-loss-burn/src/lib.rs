//! [wgpu-loss](wgpu_loss)'s fused cross-entropy kernels as losses for [burn] 0.22 on its
//! wgpu backend: on burn's own device and queue, reading burn's tensor buffers where they
//! are, with fusion on and under autodiff.
//!
//! ```
//! use burn::tensor::{DeviceKind, Int, Tensor, wgpu::WgpuBackend};
//! use wgpu_loss_burn::CrossEntropyOptions;
//!
//! let device = wgpu_loss_burn::wgpu_device(DeviceKind::DefaultDevice, WgpuBackend::Auto).unwrap().autodiff();
//! let logits = Tensor::<2>::from_floats([[2.0, 0.5, -1.0], [0.0, 1.0, 0.0]], &device).require_grad();
//! let targets = Tensor::<1, Int>::from_ints([0, 1], &device);
//! let loss = wgpu_loss_burn::cross_entropy(logits.clone(), targets, &CrossEntropyOptions::default()).unwrap();
//! let grads = loss.backward();
//! assert_eq!(logits.grad(&grads).unwrap().dims(), [2, 3]);
//! ```
//!
//! Start burn's runtime through [`wgpu_device`] (or [`register`] the setup of your own
//! `init_with_setup`): burn hands out its `wgpu::Device` and queue only then. Each loss
//! reads the batch state back (16 bytes, and a wait for the loss to be computed) to turn
//! an out-of-range target into an `Err`.

mod autodiff;
mod device;
mod ops;
mod record;

use burn::backend::Dispatch;
use burn::tensor::{DType, Int, Tensor};
pub use device::{allocated_bytes, gpu, register, wgpu_device};
use wgpu_loss::Workspace;
pub use wgpu_loss::{CrossEntropyOptions, EmptyPolicy, Error, Reduction, Result};

use crate::device::shared_for;
use crate::ops::{CeArgs, LinearArgs, LossOps};

/// Cross-entropy of `rows × classes` logits against class-index targets, as
/// [`Gpu::cross_entropy`](wgpu_loss::Gpu::cross_entropy) with every option of
/// [`CrossEntropyOptions`]: `rows` values for `Reduction::None`, else one. Under autodiff
/// the gradient is computed in the forward pass (reading the logits once) and scaled by
/// the upstream gradient in the backward; nothing of `rows × classes` is kept but that
/// gradient. Targets may be any of burn's integer types. [`cross_entropy_spatial`] takes
/// `(N, C, d…)` logits, [`cross_entropy_probs`] probability targets.
///
/// ```
/// use burn::tensor::{DeviceKind, Int, Tensor, wgpu::WgpuBackend};
/// let device = wgpu_loss_burn::wgpu_device(DeviceKind::DefaultDevice, WgpuBackend::Auto).unwrap();
/// let logits = Tensor::<2>::from_floats([[0.0, 0.0]], &device);
/// let targets = Tensor::<1, Int>::from_ints([1], &device);
/// let loss = wgpu_loss_burn::cross_entropy(logits, targets, &Default::default()).unwrap();
/// let value: f32 = loss.into_scalar();
/// assert!((value - 2f32.ln()).abs() < 1e-6);
/// ```
pub fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>, opts: &CrossEntropyOptions) -> Result<Tensor<1>> {
    cross_entropy_spatial(logits, targets, opts)
}

/// Cross-entropy of `(N, C, d1, …, dk)` logits (classes on dimension 1, as burn's and
/// PyTorch's convolutions lay out segmentation maps) against `(N, d1, …, dk)` class
/// indices, as [`cross_entropy`] (which is the case `k = 0`). `opts.spatial` comes from
/// the shape (`d1·…·dk`; leave it at 1). `Reduction::None` gives `N·d1·…·dk` values in the
/// targets' order, flat: `.reshape(targets_dims)` restores their shape.
///
/// ```
/// use burn::tensor::{DeviceKind, Int, Tensor, wgpu::WgpuBackend};
/// let device = wgpu_loss_burn::wgpu_device(DeviceKind::DefaultDevice, WgpuBackend::Auto).unwrap();
/// // One sample, 2 classes, a 1 × 2 map: position 0 favours class 0, position 1 class 1.
/// let logits = Tensor::<4>::from_floats([[[[5.0, 0.0]], [[0.0, 5.0]]]], &device);
/// let targets = Tensor::<3, Int>::from_ints([[[0, 1]]], &device);
/// let mut opts = wgpu_loss_burn::CrossEntropyOptions::default();
/// opts.reduction = wgpu_loss_burn::Reduction::None;
/// let loss = wgpu_loss_burn::cross_entropy_spatial(logits, targets, &opts).unwrap();
/// assert_eq!(loss.dims(), [2]);
/// assert!(loss.into_data().to_vec::<f32>().unwrap().iter().all(|&l| l < 0.01));
/// ```
pub fn cross_entropy_spatial<const D: usize, const T: usize>(
    logits: Tensor<D>, targets: Tensor<T, Int>, opts: &CrossEntropyOptions,
) -> Result<Tensor<1>> {
    let args = CeArgs::of(&logits.dims(), opts, false)?;
    check_shape("targets", &targets.dims(), &args.index_target_dims())?;
    check_f32("logits", logits.dtype())?;
    shared_for(&logits.device(), "logits")?;
    let classes = args.classes;
    let (loss, status) = Dispatch::wgpu_loss_cross_entropy(logits.into_dispatch(), targets.into_dispatch(), args);
    check_status(Tensor::from_dispatch(status), classes)?;
    Ok(Tensor::from_dispatch(loss))
}

/// Cross-entropy against probability targets of the logits' shape (`(N, C)` or
/// `(N, C, d…)`, classes on dimension 1), as
/// [`Gpu::cross_entropy_probs`](wgpu_loss::Gpu::cross_entropy_probs): for distillation and
/// soft labels. `ignore_index` is unused and `Reduction::Mean` divides by the rows
/// (`N·d1·…·dk`), as PyTorch. Under autodiff the logits get their gradient as in
/// [`cross_entropy`]; the targets get none, so a tracked targets tensor is an `Err` (pass
/// `targets.detach()`).
///
/// ```
/// use burn::tensor::{DeviceKind, Tensor, wgpu::WgpuBackend};
/// let device = wgpu_loss_burn::wgpu_device(DeviceKind::DefaultDevice, WgpuBackend::Auto).unwrap();
/// let logits = Tensor::<2>::from_floats([[0.0, 0.0]], &device);
/// let probs = Tensor::<2>::from_floats([[0.25, 0.75]], &device);
/// let loss = wgpu_loss_burn::cross_entropy_probs(logits, probs, &Default::default()).unwrap();
/// assert!((loss.into_scalar::<f32>() - 2f32.ln()).abs() < 1e-6);
/// ```
pub fn cross_entropy_probs<const D: usize>(
    logits: Tensor<D>, targets: Tensor<D>, opts: &CrossEntropyOptions,
) -> Result<Tensor<1>> {
    let args = CeArgs::of(&logits.dims(), opts, true)?;
    check_shape("targets", &targets.dims(), &args.dims)?;
    check_f32("logits", logits.dtype())?;
    check_f32("targets", targets.dtype())?;
    if targets.is_tracked() {
        let message = "are tracked by autodiff, but only the logits get a gradient here: pass `targets.detach()`";
        return Err(Error::InvalidArgument { argument: "targets", message: message.into() });
    }
    shared_for(&logits.device(), "logits")?;
    let classes = args.classes;
    let (loss, status) = Dispatch::wgpu_loss_cross_entropy_probs(logits.into_dispatch(), targets.into_dispatch(), args);
    check_status(Tensor::from_dispatch(status), classes)?;
    Ok(Tensor::from_dispatch(loss))
}

/// Fused linear + cross-entropy: the cross-entropy of `hidden · weight + bias` against
/// class-index targets, with burn's `Linear` parameters as they are stored (`weight` is
/// `hidden_size × vocab`, `bias` `vocab`), as
/// [`Gpu::linear_cross_entropy`](wgpu_loss::Gpu::linear_cross_entropy): the `tokens × vocab`
/// logits are never stored whole. Under autodiff, `Mean` and `Sum` compute `∂h`, `∂W` and
/// `∂b` in the forward pass and scale them in the backward; `None` recomputes them in the
/// backward with the upstream gradients.
///
/// ```
/// use burn::tensor::{DeviceKind, Int, Tensor, wgpu::WgpuBackend};
/// let device = wgpu_loss_burn::wgpu_device(DeviceKind::DefaultDevice, WgpuBackend::Auto).unwrap();
/// let hidden = Tensor::<2>::from_floats([[1.0, 0.0]], &device);
/// let weight = Tensor::<2>::from_floats([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], &device);
/// let targets = Tensor::<1, Int>::from_ints([2], &device);
/// let loss = wgpu_loss_burn::linear_cross_entropy(hidden, weight, None, targets, &Default::default()).unwrap();
/// assert!((loss.into_scalar::<f32>() - 3f32.ln()).abs() < 1e-6);
/// ```
pub fn linear_cross_entropy(
    hidden: Tensor<2>, weight: Tensor<2>, bias: Option<Tensor<1>>, targets: Tensor<1, Int>, opts: &CrossEntropyOptions,
) -> Result<Tensor<1>> {
    let [tokens, hidden_size] = hidden.dims();
    let [weight_rows, vocab] = weight.dims();
    check_len("weight", weight_rows, hidden_size)?;
    if let Some(b) = &bias {
        check_len("bias", b.dims()[0], vocab)?;
        check_f32("bias", b.dtype())?;
    }
    check_len("targets", targets.dims()[0], tokens)?;
    opts.check_linear_cross_entropy(tokens, hidden_size, vocab)?;
    check_f32("hidden", hidden.dtype())?;
    check_f32("weight", weight.dtype())?;
    let device = hidden.device();
    shared_for(&device, "hidden")?;
    let has_bias = bias.is_some();
    // Without a bias, an untracked placeholder fills its slot (the kernels do not read it).
    let bias = bias.unwrap_or_else(|| Tensor::zeros([1], &device));
    let args = LinearArgs { tokens, hidden_size, vocab, opts: opts.clone(), has_bias, scaled: false };
    let (loss, status) = Dispatch::wgpu_loss_linear_cross_entropy(
        hidden.into_dispatch(),
        weight.into_dispatch(),
        bias.into_dispatch(),
        targets.into_dispatch(),
        args,
    );
    check_status(Tensor::from_dispatch(status), vocab)?;
    Ok(Tensor::from_dispatch(loss))
}

fn check_len(argument: &'static str, actual: usize, expected: usize) -> Result<()> {
    if actual == expected { Ok(()) } else { Err(Error::LengthMismatch { argument, expected, actual }) }
}

/// `actual` against the `expected` shape: a rank that differs names both shapes, a length
/// that differs is a [`Error::LengthMismatch`].
fn check_shape(argument: &'static str, actual: &[usize], expected: &[usize]) -> Result<()> {
    if actual.len() != expected.len() {
        let message = format!("has shape {actual:?}; the logits need {expected:?}");
        return Err(Error::InvalidArgument { argument, message });
    }
    actual.iter().zip(expected).try_for_each(|(&a, &e)| check_len(argument, a, e))
}

fn check_f32(argument: &'static str, dtype: DType) -> Result<()> {
    if dtype == DType::F32 {
        return Ok(());
    }
    Err(Error::InvalidArgument { argument, message: format!("is {dtype:?}; these losses take F32 tensors") })
}

/// Reads the batch state back (this waits for the loss): a failed recording's error, or
/// the first out-of-range target as [`Error::InvalidTarget`].
fn check_status(status: Tensor<1, Int>, classes: usize) -> Result<()> {
    let words =
        status.into_data().convert::<i32>().try_into_vec::<i32>().map_err(|e| Error::Readback(format!("{e:?}")))?;
    if let Some(error) = record::take_failure() {
        return Err(error);
    }
    let state: [u32; 4] = std::array::from_fn(|i| words[i] as u32);
    Workspace::status_result(state, classes)
}
