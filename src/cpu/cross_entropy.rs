//! The fused softmax cross-entropy for class-index targets: forward, gradient, and both.

use super::reduce::Targets;
use super::softmax::log_softmax_row;
use super::{to_f32, to_f64};
use crate::CrossEntropyOptions;
use crate::error::Result;
use crate::options::ClassTargets;
use crate::options::check_class_index_loss;

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

/// The reduced loss (in f64).
fn cross_entropy_f64(logits: &[f64], targets: &Targets, classes: usize) -> Vec<f64> {
    let lp = |i: usize| log_softmax_row(&logits[i * classes..][..classes]);
    targets.reduced_loss(|i, t| {
        if empty_row_gives_zero(logits, targets, i, classes) {
            return 0.0;
        }
        row_loss(targets, &lp(i), t)
    })
}

/// The gradient w.r.t. the logits (in f64): row `i` is `g_i·(softmax_i·S_i - q_i)`, `S_i = Σ_c q[i, c]`.
fn cross_entropy_grad_f64(logits: &[f64], targets: &Targets, classes: usize, grad_output: &[f64]) -> Vec<f64> {
    targets.gradient(classes, grad_output, |i, t, g, row| {
        if empty_row_gives_zero(logits, targets, i, classes) {
            return;
        }
        let lp = log_softmax_row(&logits[i * classes..][..classes]);
        let q = smoothed_target(targets, t, classes);
        let s: f64 = q.iter().sum();
        for ((dx, lp), q) in row.iter_mut().zip(lp).zip(q) {
            *dx = g * (lp.exp() * s - q);
        }
    })
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
    logits: &[f32],
    targets: &(impl ClassTargets + ?Sized),
    rows: usize,
    classes: usize,
    opts: &CrossEntropyOptions,
) -> Result<Vec<f32>> {
    let targets = &*targets.to_i32(classes)?;
    check_class_index_loss(("logits", logits.len()), targets, rows, classes, opts, None)?;
    Ok(to_f32(&cross_entropy_f64(
        &to_f64(logits),
        &Targets { targets, opts },
        classes,
    )))
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
    logits: &[f32],
    targets: &(impl ClassTargets + ?Sized),
    rows: usize,
    classes: usize,
    opts: &CrossEntropyOptions,
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
    logits: &[f32],
    targets: &(impl ClassTargets + ?Sized),
    rows: usize,
    classes: usize,
    opts: &CrossEntropyOptions,
    grad_output: &[f32],
) -> Result<(Vec<f32>, Vec<f32>)> {
    let targets = &*targets.to_i32(classes)?;
    check_class_index_loss(
        ("logits", logits.len()),
        targets,
        rows,
        classes,
        opts,
        Some(grad_output),
    )?;
    let (x, targets) = (to_f64(logits), Targets { targets, opts });
    Ok((
        to_f32(&cross_entropy_f64(&x, &targets, classes)),
        to_f32(&cross_entropy_grad_f64(&x, &targets, classes, &to_f64(grad_output))),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::tests::assert_loss_gradient;
    use crate::{Error, Reduction};

    fn options(reduction: Reduction, weight: Option<Vec<f32>>, label_smoothing: f32) -> CrossEntropyOptions {
        CrossEntropyOptions {
            reduction,
            weight,
            label_smoothing,
            ..Default::default()
        }
    }

    /// `cross_entropy_with_grad` with one row per target.
    fn ce(
        logits: &[f32],
        targets: &[i32],
        classes: usize,
        opts: &CrossEntropyOptions,
        g: &[f32],
    ) -> (Vec<f32>, Vec<f32>) {
        cross_entropy_with_grad(logits, targets, targets.len(), classes, opts, g).unwrap()
    }

    #[test]
    fn gradient_matches_finite_differences() {
        assert_loss_gradient(cross_entropy_f64, cross_entropy_grad_f64);
    }

    #[test]
    fn all_ignored_mean_is_nan_with_zero_gradient() {
        let (loss, grad) = ce(
            &[1.0, f32::NAN, 2.0, 0.0],
            &[-100, -100],
            2,
            &options(Reduction::Mean, None, 0.1),
            &[1.0],
        );
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
        let length = |argument, expected, actual| {
            Err(Error::LengthMismatch {
                argument,
                expected,
                actual,
            })
        };
        let d = CrossEntropyOptions::default;
        assert_eq!(ce(&[], &[], 3, d()), Err(Error::EmptyBatch { rows: 0, classes: 3 }));
        assert_eq!(ce(&[], &[0], 0, d()), Err(Error::EmptyBatch { rows: 1, classes: 0 }));
        assert_eq!(ce(&[0.0; 5], &[0, 1], 3, d()), length("logits", 6, 5));
        let weighted = options(Reduction::Mean, Some(vec![1.0, 2.0]), 0.0);
        assert_eq!(ce(&[0.0; 6], &[0, 1], 3, weighted), length("weight", 3, 2));
        for value in [3, -1] {
            let invalid = Error::InvalidTarget {
                row: 1,
                value: i64::from(value),
                classes: 3,
            };
            assert_eq!(ce(&[0.0; 6], &[0, value], 3, d()), Err(invalid));
        }
        let ignore_7 = CrossEntropyOptions { ignore_index: 7, ..d() };
        assert!(ce(&[0.0; 6], &[7, 0], 3, ignore_7).is_ok());
        for eps in [1.5, -0.1] {
            let err = ce(&[0.0; 6], &[0, 1], 3, options(Reduction::Mean, None, eps));
            assert!(matches!(
                err,
                Err(Error::InvalidArgument {
                    argument: "label_smoothing",
                    ..
                })
            ));
        }
        let opts = options(Reduction::None, None, 0.0);
        let grad = cross_entropy_grad(&[0.0; 6], &[0, 1], 2, 3, &opts, &[1.0]);
        assert_eq!(grad, length("grad_output", 2, 1));
    }
}
