//! Options shared by the NLL / cross-entropy family, and the argument checks that the GPU
//! ops and their CPU twins both run, so both refuse the same inputs with the same `Err`.

mod elementwise;
mod linear;
mod softmax;

pub use elementwise::{BceOptions, KlDivOptions, KlDivReduction};
pub(crate) use elementwise::{Combine, Elementwise, Pointwise};
pub(crate) use linear::LinearShape;
pub use linear::{LinearCrossEntropyGrads, LinearCrossEntropyOutputs, WeightLayout};
pub use softmax::SoftmaxOp;

use crate::error::{Error, Result};

/// How per-row losses are combined, as PyTorch's `reduction` argument.
///
/// ```
/// use wgpu_loss::Reduction;
/// assert_eq!(Reduction::default(), Reduction::Mean);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Reduction {
    /// One loss per row.
    None,
    /// The sum of the per-row losses.
    Sum,
    /// The sum divided by the summed target weights of the rows that are not ignored.
    #[default]
    Mean,
}

/// What a loss gives where PyTorch's answer is 0/0: a row of cross-entropy whose logits are
/// all `-inf`, and a mean over a total target weight of 0 (every row ignored).
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions, EmptyPolicy};
/// let mut opts = CrossEntropyOptions::default();
/// let all_ignored = cpu::cross_entropy(&[1.0, 2.0], &[-100], 1, 2, &opts)?;
/// assert!(all_ignored[0].is_nan()); // PyTorch's answer
/// opts.empty = EmptyPolicy::Zero;
/// assert_eq!(cpu::cross_entropy(&[1.0, 2.0], &[-100], 1, 2, &opts)?, [0.0]);
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum EmptyPolicy {
    /// NaN loss, as PyTorch (the gradient of an all-ignored mean is still exactly 0; an
    /// all-`-inf` row's gradient is NaN).
    #[default]
    Nan,
    /// Loss 0 and gradient 0.
    Zero,
}

/// Options of `nll_loss` and `cross_entropy` (PyTorch's keyword arguments).
///
/// New options arrive as new fields, so build it from `Default` and set fields:
///
/// ```
/// use wgpu_loss::{CrossEntropyOptions, Reduction};
/// let mut opts = CrossEntropyOptions::default();
/// opts.reduction = Reduction::Sum;
/// opts.label_smoothing = 0.1;
/// opts.weight = Some(vec![1.0, 2.0, 0.5]);
/// assert_eq!(opts.ignore_index, -100);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct CrossEntropyOptions {
    /// `none`, `sum` or `mean` (the default).
    pub reduction: Reduction,
    /// A weight per class (`classes` finite values), or `None` for all ones.
    pub weight: Option<Vec<f32>>,
    /// Rows whose target equals this get loss 0 and gradient 0 and do not count in the mean.
    pub ignore_index: i32,
    /// ε in `[0, 1]`: the target distribution is `(1-ε)·onehot + ε/C`. Ignored by `nll_loss`.
    pub label_smoothing: f32,
    /// What an all-`-inf` row and a mean over zero total weight give (default: NaN, as PyTorch).
    pub empty: EmptyPolicy,
    /// `(N, C, d1, …, dk)` inputs (segmentation maps): `d1·…·dk`, 1 (the default) for
    /// `rows × classes`. With `spatial > 1`, `rows` is N, the input is laid out as PyTorch's
    /// (class `c` of position `s` of sample `n` at `(n·C + c)·spatial + s`: the class
    /// dimension is strided, not contiguous), and targets, per-row losses and the
    /// `grad_output` of `Reduction::None` have `rows × spatial` entries in `(n, s)` order.
    pub spatial: usize,
    /// z-loss (PaLM): `z_loss_scale · lse²` is added to each counted row's loss, and its
    /// gradient `2·z_loss_scale·lse·softmax` to the gradient (0, the default, turns it off;
    /// cross-entropy only). Ignored rows get neither; mean divides it like the rest of the row.
    pub z_loss_scale: f32,
    /// Logit soft-capping (Gemma 2): the loss sees `cap · tanh(x / cap)` instead of `x`, and
    /// the gradient carries tanh's slope `1 - tanh²` (0, the default, turns it off;
    /// cross-entropy only). Capped `±inf` logits become `±cap`.
    pub logit_softcap: f32,
}

impl Default for CrossEntropyOptions {
    fn default() -> Self {
        Self {
            reduction: Reduction::Mean,
            weight: None,
            ignore_index: -100,
            label_smoothing: 0.0,
            empty: EmptyPolicy::Nan,
            spatial: 1,
            z_loss_scale: 0.0,
            logit_softcap: 0.0,
        }
    }
}

/// The element type of the logits (and of cross-entropy's gradient) in the caller's buffers.
/// Everything is computed in f32 whatever the storage.
///
/// ```
/// use wgpu_loss::Precision;
/// assert_eq!(Precision::default(), Precision::F32);
/// assert_eq!(Precision::Bf16.bytes(), 2);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Precision {
    /// `f32` logits and gradient.
    #[default]
    F32,
    /// IEEE half logits and gradient (`half::f16`); needs the adapter's `SHADER_F16`.
    F16,
    /// bfloat16 logits (`half::bf16`, the format most language models emit), two per
    /// 32-bit word in memory order; any adapter. The gradient is `f32`.
    Bf16,
}

impl Precision {
    /// Bytes per logit.
    ///
    /// ```
    /// assert_eq!(wgpu_loss::Precision::F32.bytes(), 4);
    /// ```
    pub fn bytes(self) -> u64 {
        match self {
            Precision::F32 => 4,
            Precision::F16 | Precision::Bf16 => 2,
        }
    }

    /// Bytes per gradient element.
    pub(crate) fn grad_bytes(self) -> u64 {
        match self {
            Precision::F16 => 2,
            Precision::F32 | Precision::Bf16 => 4,
        }
    }
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for half::f16 {}
    impl Sealed for half::bf16 {}
}

/// Half-precision logits for the slice API ([`Gpu::cross_entropy_half`](crate::Gpu::cross_entropy_half)):
/// `half::f16` (whose gradient is `half::f16` too; needs the adapter's `SHADER_F16`) or
/// `half::bf16` (whose gradient is `f32`). Sealed: implemented for those two only.
///
/// ```
/// use wgpu_loss::{HalfLogits, Precision};
/// assert_eq!(<half::bf16 as HalfLogits>::PRECISION, Precision::Bf16);
/// ```
pub trait HalfLogits: bytemuck::Pod + sealed::Sealed {
    /// The element type of the gradient.
    type Grad: bytemuck::Pod;
    /// How the logits are stored.
    const PRECISION: Precision;
}

impl HalfLogits for half::f16 {
    type Grad = half::f16;
    const PRECISION: Precision = Precision::F16;
}

impl HalfLogits for half::bf16 {
    type Grad = f32;
    const PRECISION: Precision = Precision::Bf16;
}

/// Which extra outputs [`Gpu::cross_entropy_with_extras`](crate::Gpu::cross_entropy_with_extras)
/// (and its CPU twin) compute beside the loss. Each costs nothing when off.
///
/// ```
/// use wgpu_loss::Extras;
/// let mut extras = Extras::default(); // none
/// extras.lse = true;
/// assert!(!extras.argmax);
/// assert!(Extras::all().accuracy);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Extras {
    /// Each row's log-sum-exp of the (soft-capped) logits, as `torch.logsumexp`.
    pub lse: bool,
    /// Each row's argmax over the raw logits (the first class holding the largest; a NaN
    /// counts as largest, as `torch.argmax`).
    pub argmax: bool,
    /// The share of rows with a valid, non-ignored target whose argmax is that target (NaN
    /// when no row counts, 0 under `EmptyPolicy::Zero`).
    pub accuracy: bool,
}

impl Extras {
    /// Every extra output.
    ///
    /// ```
    /// assert!(wgpu_loss::Extras::all().lse);
    /// ```
    pub fn all() -> Self {
        Self { lse: true, argmax: true, accuracy: true }
    }
}

/// What [`Gpu::cross_entropy_with_extras`](crate::Gpu::cross_entropy_with_extras) returns:
/// each field empty (or `None`) unless asked for.
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions, Extras};
/// let out = cpu::cross_entropy_with_extras(&[1.0, 0.0], &[0], 1, 2, &CrossEntropyOptions::default(), Extras::all(), None)?;
/// assert_eq!((out.argmax[0], out.accuracy), (0, Some(1.0)));
/// assert!(out.grad.is_empty());
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct CrossEntropyOutputs {
    /// The loss (`rows × spatial` values for `Reduction::None`, else one).
    pub loss: Vec<f32>,
    /// The gradient with respect to the logits, when a `grad_output` was given.
    pub grad: Vec<f32>,
    /// Per-row log-sum-exp.
    pub lse: Vec<f32>,
    /// Per-row argmax.
    pub argmax: Vec<i32>,
    /// Batch accuracy.
    pub accuracy: Option<f32>,
}

/// Checks `rows`/`classes` and that `len` (the length of `argument`) is `rows × classes`.
pub(crate) fn check_matrix(argument: &'static str, len: usize, rows: usize, classes: usize) -> Result<()> {
    if rows == 0 || classes == 0 {
        return Err(Error::EmptyBatch { rows, classes });
    }
    let expected = rows.checked_mul(classes).ok_or(Error::InvalidArgument {
        argument: "rows",
        message: format!("rows × classes = {rows} × {classes} overflows usize"),
    })?;
    check_len(argument, len, expected)
}

/// Checks `spatial` (the product of the dimensions after the classes) before anything is
/// sized by it.
pub(crate) fn check_spatial(spatial: usize) -> Result<()> {
    if spatial == 0 {
        return Err(Error::InvalidArgument {
            argument: "spatial",
            message: "must be at least 1 (the product of the dimensions after the classes)".into(),
        });
    }
    Ok(())
}

/// Checks that `argument` has exactly `expected` elements.
pub(crate) fn check_len(argument: &'static str, actual: usize, expected: usize) -> Result<()> {
    if actual != expected {
        return Err(Error::LengthMismatch { argument, expected, actual });
    }
    Ok(())
}

impl CrossEntropyOptions {
    /// Checks `weight` (length and finiteness), `label_smoothing`, `spatial`, `z_loss_scale`
    /// and `logit_softcap` against `classes`.
    pub(crate) fn check(&self, classes: usize) -> Result<()> {
        check_spatial(self.spatial)?;
        if !self.z_loss_scale.is_finite() {
            return Err(Error::InvalidArgument {
                argument: "z_loss_scale",
                message: format!("must be finite, got {}", self.z_loss_scale),
            });
        }
        if !(self.logit_softcap.is_finite() && self.logit_softcap >= 0.0) {
            return Err(Error::InvalidArgument {
                argument: "logit_softcap",
                message: format!("must be finite and ≥ 0 (0 turns it off), got {}", self.logit_softcap),
            });
        }
        if !(0.0..=1.0).contains(&self.label_smoothing) {
            return Err(Error::InvalidArgument {
                argument: "label_smoothing",
                message: format!("must be in [0, 1], got {}", self.label_smoothing),
            });
        }
        if let Some(w) = &self.weight {
            check_len("weight", w.len(), classes)?;
            if let Some((i, v)) = w.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(Error::InvalidArgument {
                    argument: "weight",
                    message: format!("weight[{i}] = {v} is not finite"),
                });
            }
        }
        Ok(())
    }

    /// The weight of class `c` (1 without `weight`).
    pub(crate) fn class_weight(&self, c: usize) -> f32 {
        self.weight.as_ref().map_or(1.0, |w| w[c])
    }

    /// Checks that the cross-entropy-only options are off (for `nll_loss` and shards).
    pub(crate) fn check_plain(&self, op: &str) -> Result<()> {
        for (argument, value) in [("z_loss_scale", self.z_loss_scale), ("logit_softcap", self.logit_softcap)] {
            if value != 0.0 {
                return Err(Error::InvalidArgument {
                    argument,
                    message: format!("{op} does not take it (got {value}): cross-entropy only"),
                });
            }
        }
        Ok(())
    }

    /// The rows the kernels see: `rows × spatial` (saturating; checked with the input).
    pub(crate) fn loss_rows(&self, rows: usize) -> usize {
        rows.saturating_mul(self.spatial)
    }

    /// How many `grad_output` values the reduction takes: `rows × spatial` for `None`, else 1.
    pub(crate) fn grad_output_len(&self, rows: usize) -> usize {
        match self.reduction {
            Reduction::None => self.loss_rows(rows),
            Reduction::Sum | Reduction::Mean => 1,
        }
    }
}

/// Checks the length of `targets` and that each is in `[0, classes)` or `ignore_index`.
pub(crate) fn check_targets(targets: &[i32], rows: usize, classes: usize, ignore_index: i32) -> Result<()> {
    check_len("targets", targets.len(), rows)?;
    match targets.iter().enumerate().find(|&(_, &t)| t != ignore_index && (t < 0 || t as usize >= classes)) {
        Some((row, &t)) => Err(Error::InvalidTarget { row, value: t as i64, classes }),
        None => Ok(()),
    }
}

/// Every check `nll_loss` / `cross_entropy` (and their gradients) make on their arguments.
pub(crate) fn check_class_index_loss(
    input: (&'static str, usize), targets: &[i32], rows: usize, classes: usize, opts: &CrossEntropyOptions,
    grad_output: Option<&[f32]>,
) -> Result<()> {
    check_loss_shapes(input, (targets.len(), 1), rows, classes, opts, grad_output)?;
    check_targets(targets, opts.loss_rows(rows), classes, opts.ignore_index)
}

/// The shape checks of the class-index and probability-target losses (all but the target
/// values, which the GPU checks on the device and reports through the batch status):
/// `targets` is `(length, per row)`, 1 class index or `classes` probabilities per row.
pub(crate) fn check_loss_shapes(
    input: (&'static str, usize), targets: (usize, usize), rows: usize, classes: usize, opts: &CrossEntropyOptions,
    grad_output: Option<&[f32]>,
) -> Result<()> {
    check_spatial(opts.spatial)?;
    let loss_rows = opts.loss_rows(rows);
    check_matrix(input.0, input.1, loss_rows, classes)?;
    opts.check(classes)?;
    // loss_rows × classes fits (the input's check above), so neither product overflows.
    check_len("targets", targets.0, loss_rows * targets.1)?;
    if let Some(g) = grad_output {
        check_len("grad_output", g.len(), opts.grad_output_len(rows))?;
    }
    Ok(())
}

/// Class-index targets: `i32` (the crate's native type, what the kernels read) or `i64`
/// (PyTorch's), as a slice, an array or a `Vec`. `i64` targets are checked on the host to fit
/// `i32`; one that does not is [`Error::InvalidTarget`] (it cannot be `ignore_index`, which is
/// an `i32`).
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions};
/// let opts = CrossEntropyOptions::default();
/// let a = cpu::cross_entropy(&[0.0, 1.0], &[1], 1, 2, &opts)?; // i32
/// let b = cpu::cross_entropy(&[0.0, 1.0], &[1i64], 1, 2, &opts)?; // i64, as PyTorch's
/// assert_eq!(a, b);
/// let too_big = cpu::cross_entropy(&[0.0, 1.0], &[1i64 << 40], 1, 2, &opts);
/// assert!(matches!(too_big, Err(wgpu_loss::Error::InvalidTarget { row: 0, .. })));
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
pub trait ClassTargets {
    /// The targets as `i32`, borrowed when they already are (`classes` names the class
    /// count in the error for a target that does not fit).
    fn to_i32(&self, classes: usize) -> Result<std::borrow::Cow<'_, [i32]>>;
}

impl ClassTargets for [i32] {
    fn to_i32(&self, _classes: usize) -> Result<std::borrow::Cow<'_, [i32]>> {
        Ok(std::borrow::Cow::Borrowed(self))
    }
}

impl ClassTargets for [i64] {
    fn to_i32(&self, classes: usize) -> Result<std::borrow::Cow<'_, [i32]>> {
        self.iter()
            .enumerate()
            .map(|(row, &value)| i32::try_from(value).map_err(|_| Error::InvalidTarget { row, value, classes }))
            .collect::<Result<Vec<i32>>>()
            .map(std::borrow::Cow::Owned)
    }
}

impl<const N: usize> ClassTargets for [i32; N] {
    fn to_i32(&self, classes: usize) -> Result<std::borrow::Cow<'_, [i32]>> {
        self[..].to_i32(classes)
    }
}

impl<const N: usize> ClassTargets for [i64; N] {
    fn to_i32(&self, classes: usize) -> Result<std::borrow::Cow<'_, [i32]>> {
        self[..].to_i32(classes)
    }
}

impl ClassTargets for Vec<i32> {
    fn to_i32(&self, classes: usize) -> Result<std::borrow::Cow<'_, [i32]>> {
        self[..].to_i32(classes)
    }
}

impl ClassTargets for Vec<i64> {
    fn to_i32(&self, classes: usize) -> Result<std::borrow::Cow<'_, [i32]>> {
        self[..].to_i32(classes)
    }
}
