//! `nll_loss` and its gradient, for class-index targets.

use super::{from_rows, to_f32, to_f64, to_rows};
use crate::CrossEntropyOptions;
use crate::error::Result;
use crate::options::ClassTargets;
use crate::options::check_class_index_loss;
use crate::reduction::Targets;

/// The reduced loss `l_i = -w[t_i]·x[i, t_i]` (in f64).
fn nll_loss_f64(log_probs: &[f64], targets: &Targets, classes: usize) -> Vec<f64> {
    targets.reduced_loss(|i, t| -targets.weight(t) * log_probs[i * classes + t])
}

/// The gradient w.r.t. the log-probabilities: `-w[t_i]·g_i` at `c == t_i`, 0 elsewhere.
fn nll_loss_grad_f64(targets: &Targets, classes: usize, grad_output: &[f64]) -> Vec<f64> {
    targets.gradient(classes, grad_output, |_, t, g, row| row[t] = -targets.weight(t) * g)
}

/// Negative log-likelihood of the class-index `targets` under the `rows × classes` `log_probs`,
/// as `torch.nn.functional.nll_loss`: one value per row for `Reduction::None`, else one value.
///
/// Rows whose target is `opts.ignore_index` contribute 0 and do not count in the mean.
/// `opts.label_smoothing` is validated but not used.
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions, Reduction};
/// let mut opts = CrossEntropyOptions::default();
/// opts.reduction = Reduction::None;
/// let loss = cpu::nll_loss(&[-0.5, -1.5, -2.0, -0.25], &[1, 0], 2, 2, &opts)?;
/// assert_eq!(loss, [1.5, 2.0]);
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
pub fn nll_loss(
    log_probs: &[f32], targets: &(impl ClassTargets + ?Sized), rows: usize, classes: usize, opts: &CrossEntropyOptions,
) -> Result<Vec<f32>> {
    let targets = &*targets.to_i32(classes)?;
    check_class_index_loss(("log_probs", log_probs.len()), targets, rows, classes, opts, None)?;
    opts.check_plain("nll_loss")?;
    let x = to_f64(&to_rows(log_probs, classes, opts.spatial));
    Ok(to_f32(&nll_loss_f64(&x, &Targets { targets, opts }, classes)))
}

/// Gradient of [`nll_loss`] w.r.t. the log-probabilities (independent of their values):
/// `-w[t_i]·g_i` at `c == t_i`, 0 elsewhere.
///
/// `g_i` is `grad_output[i]` for `Reduction::None` (`rows` values), `grad_output[0]` for `Sum`
/// and `grad_output[0] / Σ w[t_i]` for `Mean` (one value each). Ignored rows are exactly 0;
/// a row whose `g_i` is not finite is all NaN.
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions, Reduction};
/// let mut opts = CrossEntropyOptions::default();
/// opts.reduction = Reduction::Sum;
/// let grad = cpu::nll_loss_grad(&[1, -100], 2, 2, &opts, &[2.0])?;
/// assert_eq!(grad, [0.0, -2.0, 0.0, 0.0]);
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
pub fn nll_loss_grad(
    targets: &(impl ClassTargets + ?Sized), rows: usize, classes: usize, opts: &CrossEntropyOptions,
    grad_output: &[f32],
) -> Result<Vec<f32>> {
    let targets = &*targets.to_i32(classes)?;
    // There is no input matrix, only its shape to check: give it the length the shape needs
    // (a product that overflows is refused by the shape check before the length is compared).
    let shape = ("log_probs", opts.loss_rows(rows).wrapping_mul(classes));
    check_class_index_loss(shape, targets, rows, classes, opts, Some(grad_output))?;
    opts.check_plain("nll_loss")?;
    let targets = Targets { targets, opts };
    let grad = to_f32(&nll_loss_grad_f64(&targets, classes, &to_f64(grad_output)));
    Ok(from_rows(grad, classes, opts.spatial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::cpu::tests::assert_loss_gradient;

    #[test]
    fn gradient_matches_finite_differences() {
        assert_loss_gradient(nll_loss_f64, |_, targets, classes, g| nll_loss_grad_f64(targets, classes, g));
    }

    #[test]
    fn all_ignored_mean_is_nan_with_zero_gradient() {
        let opts = CrossEntropyOptions::default();
        assert!(nll_loss(&[-1.0; 4], &[-100, -100], 2, 2, &opts).unwrap()[0].is_nan());
        assert_eq!(nll_loss_grad(&[-100, -100], 2, 2, &opts, &[1.0]).unwrap(), [0.0; 4]);
    }

    #[test]
    fn zero_weight_sum_mean_gradient_is_nan() {
        let opts = CrossEntropyOptions { weight: Some(vec![0.0, 1.0]), ..Default::default() };
        let grad = nll_loss_grad(&[0, -100], 2, 2, &opts, &[1.0]).unwrap();
        assert!(grad[..2].iter().all(|v| v.is_nan()));
        assert_eq!(grad[2..], [0.0, 0.0]);
    }

    #[test]
    fn errors() {
        let d = CrossEntropyOptions::default;
        let empty = Err(Error::EmptyBatch { rows: 0, classes: 2 });
        assert_eq!(nll_loss_grad(&[0i32; 0], 0, 2, &d(), &[1.0]), empty);
        let invalid = Err(Error::InvalidTarget { row: 1, value: 2, classes: 2 });
        assert_eq!(nll_loss(&[0.0; 4], &[0, 2], 2, 2, &d()), invalid);
        let length = Err(Error::LengthMismatch { argument: "grad_output", expected: 1, actual: 2 });
        assert_eq!(nll_loss_grad(&[0, 1], 2, 2, &d(), &[1.0, 1.0]), length);
        let smoothing = CrossEntropyOptions { label_smoothing: 1.5, ..d() };
        let err = nll_loss(&[0.0; 4], &[0, 1], 2, 2, &smoothing);
        assert!(matches!(err, Err(Error::InvalidArgument { argument: "label_smoothing", .. })));
    }
}
