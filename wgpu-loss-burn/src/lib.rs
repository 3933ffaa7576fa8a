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
/// [`CrossEntropyOptions`] (`spatial` must be 1): `rows` values for `Reduction::None`,
/// else one. Under autodiff the gradient is computed in the forward pass (reading the
/// logits once) and scaled by the upstream gradient in the backward; nothing of
/// `rows × classes` is kept but that gradient. Targets may be any of burn's integer types.
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
    let [rows, classes] = logits.dims();
    check_len("targets", targets.dims()[0], rows)?;
    opts.check_cross_entropy(rows, classes, false)?;
    check_f32("logits", logits.dtype())?;
    shared_for(&logits.device(), "logits")?;
    let args = CeArgs { rows, classes, opts: opts.clone() };
    let (loss, status) = Dispatch::wgpu_loss_cross_entropy(logits.into_dispatch(), targets.into_dispatch(), args);
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
