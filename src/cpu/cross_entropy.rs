//! The fused softmax cross-entropy for class-index targets: forward, gradient, and both.

use super::softmax::log_softmax_row;
use super::{from_rows, row_options, to_f32, to_f64, to_rows};
use crate::error::Result;
use crate::options::{ClassTargets, CrossEntropyOutputs, Extras, check_class_index_loss, check_loss_shapes};
use crate::reduction::Targets;
use crate::{CrossEntropyOptions, EmptyPolicy, Reduction};

/// The smoothed, weighted target row `q[c] = (1-ε)·w[t]·[c = t] + (ε/C)·w[c]`.
fn smoothed_target(targets: &Targets, t: usize, classes: usize) -> Vec<f64> {
    let eps = f64::from(targets.opts.label_smoothing);
    let w_t = targets.weight(t);
    (0..classes)
        .map(|c| {
            let onehot = if c == t { w_t } else { 0.0 };
            (1.0 - eps) * onehot + eps / classes as f64 * targets.weight(c)
        })
        .collect()
}

/// One row's loss from its log-probabilities `lp`: `-w[t]·lp[t]` without smoothing, else
/// `(1-ε)·(-w[t]·lp[t]) + (ε/C)·Σ_c (-w[c]·lp[c])`, literally (so `-inf` log-probs give `+inf`).
fn row_loss(targets: &Targets, lp: &[f64], t: usize) -> f64 {
    let eps = f64::from(targets.opts.label_smoothing);
    let nll = -targets.weight(t) * lp[t];
    if eps == 0.0 {
        return nll;
    }
    let smooth: f64 = lp.iter().enumerate().map(|(c, &l)| -targets.weight(c) * l).sum();
    (1.0 - eps) * nll + eps / lp.len() as f64 * smooth
}

/// Whether row `i` has no finite logit and no NaN / `+inf` (all `-inf`) under
/// `EmptyPolicy::Zero`, which gives it loss 0 and gradient 0.
fn empty_row_gives_zero(logits: &[f64], targets: &Targets, i: usize, classes: usize) -> bool {
    targets.empty_gives_zero() && logits[i * classes..][..classes].iter().all(|&x| x == f64::NEG_INFINITY)
}

/// The logits as the loss sees them, and d(seen)/d(logit): `cap·tanh(x/cap)` and
/// `1 - tanh²` with soft-capping (`±inf` give `±cap` and slope 0), else `x` and 1.
fn seen_logits(logits: &[f64], opts: &CrossEntropyOptions) -> (Vec<f64>, Vec<f64>) {
    let cap = f64::from(opts.logit_softcap);
    if cap == 0.0 {
        return (logits.to_vec(), vec![1.0; logits.len()]);
    }
    logits
        .iter()
        .map(|&x| {
            let t = (x / cap).tanh();
            (cap * t, if x.is_infinite() { 0.0 } else { 1.0 - t * t })
        })
        .unzip()
}

/// `ln Σ exp(x)` of a row without NaN or `+inf` and with a finite entry (else unused).
fn row_lse(x: &[f64]) -> f64 {
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    m + x.iter().map(|&v| (v - m).exp()).sum::<f64>().ln()
}

/// `z_loss_scale · lse²` of a row (0 when off).
fn z_loss(opts: &CrossEntropyOptions, x: &[f64]) -> f64 {
    let z = f64::from(opts.z_loss_scale);
    if z == 0.0 {
        return 0.0;
    }
    let lse = row_lse(x);
    z * lse * lse
}

/// The row of the gradient from the softmax `p = exp(lp)`, the target masses `q` (summing
/// to `s`), the upstream `g` and the cap's slopes: `g·(p·(s + 2z·lse) - q)·slope`.
fn write_row_grad(
    opts: &CrossEntropyOptions, x: &[f64], lp: &[f64], q: &[f64], slope: &[f64], g: f64, row: &mut [f64],
) {
    let z = f64::from(opts.z_loss_scale);
    let s: f64 = q.iter().sum::<f64>() + if z == 0.0 { 0.0 } else { 2.0 * z * row_lse(x) };
    for (c, dx) in row.iter_mut().enumerate() {
        *dx = g * (lp[c].exp() * s - q[c]) * slope[c];
    }
}

/// The reduced loss (in f64).
fn cross_entropy_f64(logits: &[f64], targets: &Targets, classes: usize) -> Vec<f64> {
    let (y, _) = seen_logits(logits, targets.opts);
    targets.reduced_loss(|i, t| {
        let x = &y[i * classes..][..classes];
        if empty_row_gives_zero(&y, targets, i, classes) {
            return 0.0;
        }
        row_loss(targets, &log_softmax_row(x), t) + z_loss(targets.opts, x)
    })
}

/// The gradient w.r.t. the logits (in f64): row `i` is `g_i·(softmax_i·S_i - q_i)`, `S_i = Σ_c q[i, c]`
/// (plus the z-loss term, times the cap's slope).
fn cross_entropy_grad_f64(logits: &[f64], targets: &Targets, classes: usize, grad_output: &[f64]) -> Vec<f64> {
    let (y, slopes) = seen_logits(logits, targets.opts);
    targets.gradient(classes, grad_output, |i, t, g, row| {
        if empty_row_gives_zero(&y, targets, i, classes) {
            return;
        }
        let x = &y[i * classes..][..classes];
        let q = smoothed_target(targets, t, classes);
        write_row_grad(targets.opts, x, &log_softmax_row(x), &q, &slopes[i * classes..][..classes], g, row);
    })
}

/// `w[c]·y'[c]` of a probability-target row, `y' = (1-ε)·y + ε/C`; `None` when a target
/// is not finite (the row is NaN).
fn target_masses(opts: &CrossEntropyOptions, y: &[f64]) -> Option<Vec<f64>> {
    let eps = f64::from(opts.label_smoothing);
    let classes = y.len() as f64;
    y.iter()
        .enumerate()
        .map(|(c, &y)| y.is_finite().then(|| f64::from(opts.class_weight(c)) * ((1.0 - eps) * y + eps / classes)))
        .collect()
}

/// Cross-entropy against probability targets, `l_i = Σ_c -w[c]·y'[c]·lp[c]` (+ z-loss),
/// reduced with mean = Σ / rows; and its gradient when `grad_output` is given.
fn cross_entropy_probs_f64(
    logits: &[f64], probs: &[f64], classes: usize, opts: &CrossEntropyOptions, grad_output: Option<&[f64]>,
) -> (Vec<f64>, Vec<f64>) {
    let (y, slopes) = seen_logits(logits, opts);
    let rows = logits.len() / classes;
    let zero = opts.empty == EmptyPolicy::Zero;
    let mut losses = Vec::with_capacity(rows);
    let mut grad = vec![0.0; if grad_output.is_some() { logits.len() } else { 0 }];
    for i in 0..rows {
        let x = &y[i * classes..][..classes];
        if zero && x.iter().all(|&v| v == f64::NEG_INFINITY) {
            losses.push(0.0);
            continue;
        }
        let lp = log_softmax_row(x);
        let Some(q) = target_masses(opts, &probs[i * classes..][..classes]) else {
            losses.push(f64::NAN);
            if let Some(row) = grad.get_mut(i * classes..(i + 1) * classes) {
                row.fill(f64::NAN);
            }
            continue;
        };
        losses.push(-q.iter().zip(&lp).map(|(q, lp)| q * lp).sum::<f64>() + z_loss(opts, x));
        if let Some(g_out) = grad_output {
            let g = match opts.reduction {
                Reduction::None => g_out[i],
                Reduction::Sum => g_out[0],
                Reduction::Mean => g_out[0] / rows as f64,
            };
            let row = &mut grad[i * classes..][..classes];
            if g.is_finite() {
                write_row_grad(opts, x, &lp, &q, &slopes[i * classes..][..classes], g, row);
            } else {
                row.fill(f64::NAN);
            }
        }
    }
    let loss = match opts.reduction {
        Reduction::None => losses,
        Reduction::Sum => vec![losses.iter().sum()],
        Reduction::Mean => vec![losses.iter().sum::<f64>() / rows as f64],
    };
    (loss, grad)
}

/// Softmax cross-entropy of the `rows × classes` `logits` against class-index `targets`, as
/// `torch.nn.functional.cross_entropy`: one value per row for `Reduction::None`, else one value.
///
/// Rows whose target is `opts.ignore_index` contribute 0 and do not count in the mean, which
/// divides by `Σ w[t_i]` over the other rows (NaN when every row is ignored).
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions};
/// let loss = cpu::cross_entropy(&[1.0; 4], &[0, 3], 1, 4, &CrossEntropyOptions::default());
/// assert!(loss.is_err()); // one target for one row, not two
/// let loss = cpu::cross_entropy(&[1.0; 4], &[3], 1, 4, &CrossEntropyOptions::default())?;
/// assert_eq!(loss, [4f32.ln()]);
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
pub fn cross_entropy(
    logits: &[f32], targets: &(impl ClassTargets + ?Sized), rows: usize, classes: usize, opts: &CrossEntropyOptions,
) -> Result<Vec<f32>> {
    let targets = &*targets.to_i32(classes)?;
    check_class_index_loss(("logits", logits.len()), targets, rows, classes, opts, None)?;
    let row_opts = row_options(opts);
    let x = to_f64(&to_rows(logits, classes, opts.spatial));
    let targets = Targets { targets, opts: &row_opts };
    Ok(to_f32(&cross_entropy_f64(&x, &targets, classes)))
}

/// Gradient of [`cross_entropy`] w.r.t. the logits: row `i` is `g_i·(softmax_i·S_i - q_i)` with
/// `q[i, c] = (1-ε)·w[t_i]·[c = t_i] + (ε/C)·w[c]` and `S_i = Σ_c q[i, c]`.
///
/// `g_i` is `grad_output[i]` for `Reduction::None` (`rows` values), `grad_output[0]` for `Sum`
/// and `grad_output[0] / Σ w[t_i]` for `Mean` (one value each). Ignored rows are exactly 0,
/// whatever their logits; a row whose `g_i` is not finite, or whose logits contain NaN or `+inf`
/// or are all `-inf`, is all NaN.
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions, Reduction};
/// let mut opts = CrossEntropyOptions::default();
/// opts.reduction = Reduction::Sum;
/// let grad = cpu::cross_entropy_grad(&[0.0, 0.0], &[1], 1, 2, &opts, &[2.0])?;
/// assert_eq!(grad, [1.0, -1.0]);
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
pub fn cross_entropy_grad(
    logits: &[f32], targets: &(impl ClassTargets + ?Sized), rows: usize, classes: usize, opts: &CrossEntropyOptions,
    grad_output: &[f32],
) -> Result<Vec<f32>> {
    Ok(cross_entropy_with_grad(logits, targets, rows, classes, opts, grad_output)?.1)
}

/// [`cross_entropy`] and [`cross_entropy_grad`] together: `(loss, gradient)`.
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions};
/// let (loss, grad) =
///     cpu::cross_entropy_with_grad(&[0.0, 0.0], &[0], 1, 2, &CrossEntropyOptions::default(), &[1.0])?;
/// assert_eq!((loss, grad), (vec![std::f32::consts::LN_2], vec![-0.5, 0.5]));
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
pub fn cross_entropy_with_grad(
    logits: &[f32], targets: &(impl ClassTargets + ?Sized), rows: usize, classes: usize, opts: &CrossEntropyOptions,
    grad_output: &[f32],
) -> Result<(Vec<f32>, Vec<f32>)> {
    let targets = &*targets.to_i32(classes)?;
    check_class_index_loss(("logits", logits.len()), targets, rows, classes, opts, Some(grad_output))?;
    let row_opts = row_options(opts);
    let x = to_f64(&to_rows(logits, classes, opts.spatial));
    let targets = Targets { targets, opts: &row_opts };
    let grad = to_f32(&cross_entropy_grad_f64(&x, &targets, classes, &to_f64(grad_output)));
    Ok((to_f32(&cross_entropy_f64(&x, &targets, classes)), from_rows(grad, classes, opts.spatial)))
}

/// Cross-entropy of `rows × classes` logits against `rows × classes` probability targets,
/// as `torch.nn.functional.cross_entropy` with float targets: `l_i = Σ_c -w[c]·y'[c]·lp[c]`
/// with `y' = (1-ε)·y + ε/C` (plus z-loss when set); mean divides by the row count. Rows
/// need not sum to 1; a row with a non-finite target is NaN.
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions};
/// let loss = cpu::cross_entropy_probs(&[0.0, 0.0], &[0.3, 0.7], 1, 2, &CrossEntropyOptions::default())?;
/// assert!((loss[0] - 2f32.ln()).abs() < 1e-7);
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
pub fn cross_entropy_probs(
    logits: &[f32], targets: &[f32], rows: usize, classes: usize, opts: &CrossEntropyOptions,
) -> Result<Vec<f32>> {
    Ok(probs_with_grad(logits, targets, rows, classes, opts, None)?.0)
}

/// Gradient of [`cross_entropy_probs`] w.r.t. the logits: `g_i·(softmax_i·Σ_c q[i, c] - q_i)`
/// with `q[i, c] = w[c]·y'[i, c]`; `g_i` as in [`cross_entropy_grad`], but mean divides by
/// the row count.
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions, Reduction};
/// let mut opts = CrossEntropyOptions::default();
/// opts.reduction = Reduction::Sum;
/// let grad = cpu::cross_entropy_probs_grad(&[0.0, 0.0], &[0.25, 0.75], 1, 2, &opts, &[1.0])?;
/// assert_eq!(grad, [0.25, -0.25]);
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
pub fn cross_entropy_probs_grad(
    logits: &[f32], targets: &[f32], rows: usize, classes: usize, opts: &CrossEntropyOptions, grad_output: &[f32],
) -> Result<Vec<f32>> {
    Ok(probs_with_grad(logits, targets, rows, classes, opts, Some(grad_output))?.1)
}

/// [`cross_entropy_probs`] and [`cross_entropy_probs_grad`] together: `(loss, gradient)`.
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions};
/// let (loss, grad) = cpu::cross_entropy_probs_with_grad(&[0.0, 0.0], &[1.0, 0.0], 1, 2, &CrossEntropyOptions::default(), &[1.0])?;
/// assert_eq!(grad, [-0.5, 0.5]);
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
pub fn cross_entropy_probs_with_grad(
    logits: &[f32], targets: &[f32], rows: usize, classes: usize, opts: &CrossEntropyOptions, grad_output: &[f32],
) -> Result<(Vec<f32>, Vec<f32>)> {
    probs_with_grad(logits, targets, rows, classes, opts, Some(grad_output))
}

fn probs_with_grad(
    logits: &[f32], targets: &[f32], rows: usize, classes: usize, opts: &CrossEntropyOptions,
    grad_output: Option<&[f32]>,
) -> Result<(Vec<f32>, Vec<f32>)> {
    check_loss_shapes(("logits", logits.len()), (targets.len(), classes), rows, classes, opts, grad_output)?;
    let x = to_f64(&to_rows(logits, classes, opts.spatial));
    let y = to_f64(&to_rows(targets, classes, opts.spatial));
    let g = grad_output.map(to_f64);
    let (loss, grad) = cross_entropy_probs_f64(&x, &y, classes, &row_options(opts), g.as_deref());
    Ok((to_f32(&loss), from_rows(to_f32(&grad), classes, opts.spatial)))
}

/// The CPU twin of [`Gpu::cross_entropy_with_extras`](crate::Gpu::cross_entropy_with_extras):
/// the loss, the gradient when `grad_output` is given, and the extra outputs asked for —
/// per-row log-sum-exp of the (soft-capped) logits exactly as `torch.logsumexp` (NaN with a
/// NaN, `+inf` with a `+inf`, `-inf` when all are `-inf`), per-row argmax of the raw logits
/// (first of the largest, NaN largest, as `torch.argmax`) and the batch accuracy.
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions, Extras};
/// let out = cpu::cross_entropy_with_extras(&[0.0, 3.0, 1.0, 0.0], &[1, 1], 2, 2, &CrossEntropyOptions::default(), Extras::all(), None)?;
/// assert_eq!((out.argmax, out.accuracy), (vec![1, 0], Some(0.5)));
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
pub fn cross_entropy_with_extras(
    logits: &[f32], targets: &(impl ClassTargets + ?Sized), rows: usize, classes: usize, opts: &CrossEntropyOptions,
    extras: Extras, grad_output: Option<&[f32]>,
) -> Result<CrossEntropyOutputs> {
    let targets = &*targets.to_i32(classes)?;
    check_class_index_loss(("logits", logits.len()), targets, rows, classes, opts, grad_output)?;
    let x = to_f64(&to_rows(logits, classes, opts.spatial));
    let g = grad_output.map(to_f64);
    let out = outputs_f64(&x, targets, classes, &row_options(opts), extras, g.as_deref());
    Ok(CrossEntropyOutputs {
        loss: to_f32(&out.loss),
        grad: from_rows(to_f32(&out.grad), classes, opts.spatial),
        lse: out.lse,
        argmax: out.argmax,
        accuracy: out.accuracy,
    })
}

/// What [`outputs_f64`] computes: the loss and gradient in f64, the extras as returned.
pub(super) struct OutputsF64 {
    pub loss: Vec<f64>,
    /// Empty without an upstream gradient.
    pub grad: Vec<f64>,
    pub lse: Vec<f32>,
    pub argmax: Vec<i32>,
    pub accuracy: Option<f32>,
}

/// Class-index cross-entropy of checked f64 logit rows (`spatial` 1): the loss, the
/// gradient when `grad_output` is given, and the extras asked for.
pub(super) fn outputs_f64(
    x: &[f64], targets: &[i32], classes: usize, opts: &CrossEntropyOptions, extras: Extras, grad_output: Option<&[f64]>,
) -> OutputsF64 {
    let targets = Targets { targets, opts };
    let loss = cross_entropy_f64(x, &targets, classes);
    let grad = grad_output.map_or_else(Vec::new, |g| cross_entropy_grad_f64(x, &targets, classes, g));
    let (seen, _) = seen_logits(x, opts);
    let lse = |row: &[f64]| {
        if row.iter().any(|v| v.is_nan()) {
            f64::NAN
        } else if row.contains(&f64::INFINITY) {
            f64::INFINITY
        } else if row.iter().all(|&v| v == f64::NEG_INFINITY) {
            f64::NEG_INFINITY
        } else {
            row_lse(row)
        }
    };
    let argmax = |row: &[f64]| {
        let rank = |v: f64| if v.is_nan() { f64::INFINITY } else { v };
        let first_nan = row.iter().position(|v| v.is_nan());
        first_nan
            .unwrap_or_else(|| (0..row.len()).fold(0, |best, c| if rank(row[c]) > rank(row[best]) { c } else { best }))
            as i32
    };
    let argmaxes: Vec<i32> = x.chunks_exact(classes).map(argmax).collect();
    let counted: Vec<(i32, i32)> = targets
        .targets
        .iter()
        .zip(&argmaxes)
        .filter(|(t, _)| **t != opts.ignore_index)
        .map(|(&t, &a)| (t, a))
        .collect();
    let correct = counted.iter().filter(|(t, a)| t == a).count();
    let accuracy = match counted.len() {
        0 if opts.empty == EmptyPolicy::Zero => 0.0,
        n => (correct as f64 / n as f64) as f32,
    };
    OutputsF64 {
        loss,
        grad,
        lse: if extras.lse { seen.chunks_exact(classes).map(|r| lse(r) as f32).collect() } else { Vec::new() },
        argmax: if extras.argmax { argmaxes } else { Vec::new() },
        accuracy: extras.accuracy.then_some(accuracy),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::tests::assert_loss_gradient;
    use crate::{Error, Reduction};

    fn options(reduction: Reduction, weight: Option<Vec<f32>>, label_smoothing: f32) -> CrossEntropyOptions {
        CrossEntropyOptions { reduction, weight, label_smoothing, ..Default::default() }
    }

    /// `cross_entropy_with_grad` with one row per target.
    fn ce(
        logits: &[f32], targets: &[i32], classes: usize, opts: &CrossEntropyOptions, g: &[f32],
    ) -> (Vec<f32>, Vec<f32>) {
        cross_entropy_with_grad(logits, targets, targets.len(), classes, opts, g).unwrap()
    }

    #[test]
    fn gradient_matches_finite_differences() {
        assert_loss_gradient(cross_entropy_f64, cross_entropy_grad_f64);
    }

    /// z-loss and soft-capping (alone and together, with weights and smoothing) and
    /// probability targets: analytic gradients against central differences.
    #[test]
    fn extras_and_probability_gradients_match_finite_differences() {
        use crate::cpu::tests::{XorShift, assert_finite_difference};
        let mut rng = XorShift(0x0fac_e0ff);
        let (rows, classes) = (3, 6);
        for (z, cap) in [(0.0, 0.0), (0.05, 0.0), (0.0, 2.5), (0.05, 1.5)] {
            for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
                let opts = CrossEntropyOptions {
                    reduction,
                    weight: Some(rng.vec(classes, 0.5, 2.0).iter().map(|&w| w as f32).collect()),
                    label_smoothing: 0.1,
                    z_loss_scale: z,
                    logit_softcap: cap,
                    ..Default::default()
                };
                let x = rng.vec(rows * classes, -4.0, 4.0);
                let g = rng.vec(opts.grad_output_len(rows), -2.0, 2.0);
                let objective = |loss: Vec<f64>| -> f64 { loss.iter().zip(&g).map(|(l, g)| l * g).sum() };
                let targets = [2, opts.ignore_index, 5];
                let t = Targets { targets: &targets, opts: &opts };
                let grad = cross_entropy_grad_f64(&x, &t, classes, &g);
                assert_finite_difference(&x, &grad, |x| objective(cross_entropy_f64(x, &t, classes)));
                let probs = rng.vec(rows * classes, 0.0, 0.4);
                let (_, grad) = cross_entropy_probs_f64(&x, &probs, classes, &opts, Some(&g));
                assert_finite_difference(&x, &grad, |x| {
                    objective(cross_entropy_probs_f64(x, &probs, classes, &opts, None).0)
                });
            }
        }
    }

    /// Probability targets that are one-hot give the class-index loss; the layouts of
    /// (N, C, d) inputs are PyTorch's.
    #[test]
    fn probability_targets_and_spatial_layouts() {
        let opts = options(Reduction::Mean, Some(vec![1.0, 2.0, 0.5]), 0.2);
        let x = [0.5, -1.0, 2.0, 0.0, 0.0, 1.0];
        let one_hot = [0.0, 0.0, 1.0, 1.0, 0.0, 0.0];
        let by_index =
            cross_entropy(&x, &[2, 0], 2, 3, &CrossEntropyOptions { reduction: Reduction::Sum, ..opts.clone() })
                .unwrap();
        let by_probs = cross_entropy_probs(&x, &one_hot, 2, 3, &opts).unwrap();
        // Mean over probability targets divides by the rows, not by the target weights.
        assert!((by_probs[0] - by_index[0] / 2.0).abs() < 1e-6);
        // (N=1, C=3, d=2): position s of class c at c·2 + s.
        let spatial = CrossEntropyOptions { spatial: 2, reduction: Reduction::None, ..Default::default() };
        let nc_d = [0.5, 0.0, -1.0, 0.0, 2.0, 1.0];
        let rows = cross_entropy(&x, &[2, 0], 2, 3, &options(Reduction::None, None, 0.0)).unwrap();
        assert_eq!(cross_entropy(&nc_d, &[2, 0], 1, 3, &spatial).unwrap(), rows);
    }

    #[test]
    fn all_ignored_mean_is_nan_with_zero_gradient() {
        let (loss, grad) =
            ce(&[1.0, f32::NAN, 2.0, 0.0], &[-100, -100], 2, &options(Reduction::Mean, None, 0.1), &[1.0]);
        assert!(loss[0].is_nan());
        assert_eq!(grad, [0.0; 4]);
    }

    #[test]
    fn masked_logit() {
        let logits = [0.0, f32::NEG_INFINITY, 0.0];
        // Without smoothing: finite loss, gradient exactly 0 at the -inf class.
        let (loss, grad) = ce(&logits, &[0], 3, &options(Reduction::Sum, None, 0.0), &[1.0]);
        assert_eq!((loss[0], grad[1]), (std::f32::consts::LN_2, 0.0));
        // With smoothing: +inf loss, finite gradient -(ε/C)·w[c]·g at the -inf class.
        let opts = options(Reduction::Sum, Some(vec![1.0, 3.0, 0.5]), 0.1);
        let (loss, grad) = ce(&logits, &[0], 3, &opts, &[2.0]);
        assert_eq!(loss[0], f32::INFINITY);
        assert_eq!(grad[1], (-(f64::from(0.1f32) / 3.0 * 3.0) * 2.0) as f32);
        assert!(grad.iter().all(|v| v.is_finite()));
    }

    #[test]
    fn hand_computed_values() {
        let opts = options(Reduction::None, None, 0.0);
        // A NaN logit poisons only its own row.
        let (loss, grad) = ce(&[0.0, f32::NAN, 0.0, 0.0], &[0, 1], 2, &opts, &[1.0, 1.0]);
        assert!(loss[0].is_nan() && grad[..2].iter().all(|v| v.is_nan()));
        assert_eq!((loss[1], &grad[2..]), (std::f32::consts::LN_2, &[0.5, -0.5][..]));
        // Uniform logits give log(C); ±1e4 give exact answers.
        assert_eq!(ce(&[-2.5; 5], &[4], 5, &opts, &[1.0]).0, [5f32.ln()]);
        assert_eq!(ce(&[1e4, -1e4], &[1], 2, &opts, &[1.0]), (vec![2e4], vec![1.0, -1.0]));
    }

    #[test]
    fn errors() {
        let ce = |logits: &[f32], targets: &[i32], classes, opts| {
            cross_entropy(logits, targets, targets.len(), classes, &opts)
        };
        let length = |argument, expected, actual| Err(Error::LengthMismatch { argument, expected, actual });
        let d = CrossEntropyOptions::default;
        assert_eq!(ce(&[], &[], 3, d()), Err(Error::EmptyBatch { rows: 0, classes: 3 }));
        assert_eq!(ce(&[], &[0], 0, d()), Err(Error::EmptyBatch { rows: 1, classes: 0 }));
        assert_eq!(ce(&[0.0; 5], &[0, 1], 3, d()), length("logits", 6, 5));
        let weighted = options(Reduction::Mean, Some(vec![1.0, 2.0]), 0.0);
        assert_eq!(ce(&[0.0; 6], &[0, 1], 3, weighted), length("weight", 3, 2));
        for value in [3, -1] {
            let invalid = Error::InvalidTarget { row: 1, value: i64::from(value), classes: 3 };
            assert_eq!(ce(&[0.0; 6], &[0, value], 3, d()), Err(invalid));
        }
        let ignore_7 = CrossEntropyOptions { ignore_index: 7, ..d() };
        assert!(ce(&[0.0; 6], &[7, 0], 3, ignore_7).is_ok());
        for eps in [1.5, -0.1] {
            let err = ce(&[0.0; 6], &[0, 1], 3, options(Reduction::Mean, None, eps));
            assert!(matches!(err, Err(Error::InvalidArgument { argument: "label_smoothing", .. })));
        }
        let opts = options(Reduction::None, None, 0.0);
        let grad = cross_entropy_grad(&[0.0; 6], &[0, 1], 2, 3, &opts, &[1.0]);
        assert_eq!(grad, length("grad_output", 2, 1));
    }
}
