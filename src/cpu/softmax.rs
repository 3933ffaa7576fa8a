//! `log_softmax`, `softmax` and their backward passes over the rows of a `rows × classes` matrix.

use super::{from_rows, to_f32, to_f64, to_rows};
use crate::SoftmaxOp;
use crate::error::Result;
use crate::options::{check_matrix, check_spatial};

/// Log-softmax of one row: `x - (m + ln Σ exp(x - m))` with `m` the row's maximum.
///
/// A `-inf` entry gives exactly `-inf`; a row containing NaN or `+inf`, or all `-inf`, is all NaN.
pub(super) fn log_softmax_row(x: &[f64]) -> Vec<f64> {
    let poisoned = x.iter().any(|&v| v.is_nan() || v == f64::INFINITY) || x.iter().all(|&v| v == f64::NEG_INFINITY);
    if poisoned {
        return vec![f64::NAN; x.len()];
    }
    let m = x.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let lse = m + x.iter().map(|&v| (v - m).exp()).sum::<f64>().ln();
    x.iter().map(|&v| v - lse).collect()
}

/// Softmax of one row: `exp(log_softmax_row(x))`.
fn softmax_row(x: &[f64]) -> Vec<f64> {
    log_softmax_row(x).into_iter().map(f64::exp).collect()
}

/// Whether a backward row is all NaN: some `dy` is not finite, or some `y` is, other than
/// a `-inf` log-probability (`exp(-inf) = 0`: its `dx` is `dy`).
fn backward_row_is_nan(y: &[f64], dy: &[f64], log_space: bool) -> bool {
    let y_ok = |y: f64| y.is_finite() || (log_space && y == f64::NEG_INFINITY);
    dy.iter().any(|d| !d.is_finite()) || y.iter().any(|&y| !y_ok(y))
}

/// `dx = dy - exp(y) · Σ_c dy` for one row, given the log-softmax output `y`; a row with a
/// non-finite `dy` or a NaN / `+inf` `y` is all NaN.
fn log_softmax_backward_row(y: &[f64], dy: &[f64]) -> Vec<f64> {
    if backward_row_is_nan(y, dy, true) {
        return vec![f64::NAN; y.len()];
    }
    let sum: f64 = dy.iter().sum();
    y.iter().zip(dy).map(|(&y, &dy)| dy - y.exp() * sum).collect()
}

/// `dx = y · (dy - Σ_c y·dy)` for one row, given the softmax output `y`; a row with a
/// non-finite `dy` or `y` is all NaN.
fn softmax_backward_row(y: &[f64], dy: &[f64]) -> Vec<f64> {
    if backward_row_is_nan(y, dy, false) {
        return vec![f64::NAN; y.len()];
    }
    let dot: f64 = y.iter().zip(dy).map(|(&y, &dy)| y * dy).sum();
    y.iter().zip(dy).map(|(&y, &dy)| y * (dy - dot)).collect()
}

/// `row(x)` over each row of the checked `logits`.
fn forward(logits: &[f32], rows: usize, classes: usize, row: impl Fn(&[f64]) -> Vec<f64>) -> Result<Vec<f32>> {
    check_matrix("logits", logits.len(), rows, classes)?;
    let out: Vec<f64> = to_f64(logits).chunks_exact(classes).flat_map(row).collect();
    Ok(to_f32(&out))
}

/// The backward pass of one row: `dx` from the forward output `y` and upstream `dy`.
type BackwardRow = fn(&[f64], &[f64]) -> Vec<f64>;

/// `row(y, dy)` over each row of the checked `output` and `grad_output`.
fn backward(output: &[f32], grad_output: &[f32], rows: usize, classes: usize, row: BackwardRow) -> Result<Vec<f32>> {
    check_matrix("output", output.len(), rows, classes)?;
    check_matrix("grad_output", grad_output.len(), rows, classes)?;
    let (y, dy) = (to_f64(output), to_f64(grad_output));
    let dx: Vec<f64> = y.chunks_exact(classes).zip(dy.chunks_exact(classes)).flat_map(|(y, dy)| row(y, dy)).collect();
    Ok(to_f32(&dx))
}

/// Log-softmax of each row of the `rows × classes` `logits`, as `torch.log_softmax(x, dim=1)`.
///
/// ```
/// let lp = wgpu_loss::cpu::log_softmax(&[0.0, 0.0, 5.0, f32::NEG_INFINITY], 2, 2)?;
/// assert_eq!(lp, [-std::f32::consts::LN_2, -std::f32::consts::LN_2, 0.0, f32::NEG_INFINITY]);
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
pub fn log_softmax(logits: &[f32], rows: usize, classes: usize) -> Result<Vec<f32>> {
    forward(logits, rows, classes, log_softmax_row)
}

/// Softmax of each row of the `rows × classes` `logits`: `exp(log_softmax)`, so `-inf` gives 0.
///
/// ```
/// let p = wgpu_loss::cpu::softmax(&[1.0, 1.0, f32::NEG_INFINITY], 1, 3)?;
/// assert_eq!(p, [0.5, 0.5, 0.0]);
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
pub fn softmax(logits: &[f32], rows: usize, classes: usize) -> Result<Vec<f32>> {
    forward(logits, rows, classes, softmax_row)
}

/// Gradient w.r.t. the logits given the log-softmax OUTPUT `y` and upstream `dy`:
/// `dx = dy - exp(y) · Σ_c dy`. A `-inf` in `y` gives `dx = dy` there; a row whose `dy`
/// holds a NaN or `±inf`, or whose `y` holds a NaN or `+inf`, is all NaN (PyTorch lets an
/// infinite `dy` reach the other entries as `-inf`).
///
/// ```
/// let ln_half = -std::f32::consts::LN_2;
/// let dx = wgpu_loss::cpu::log_softmax_backward(&[ln_half, ln_half], &[1.0, 0.0], 1, 2)?;
/// assert_eq!(dx, [0.5, -0.5]);
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
pub fn log_softmax_backward(output: &[f32], grad_output: &[f32], rows: usize, classes: usize) -> Result<Vec<f32>> {
    backward(output, grad_output, rows, classes, log_softmax_backward_row)
}

/// Gradient w.r.t. the logits given the softmax OUTPUT `y` and upstream `dy`:
/// `dx = y · (dy - Σ_c y·dy)`. A row whose `y` or `dy` holds a NaN or `±inf` is all NaN
/// (PyTorch lets an infinite `dy` reach the other entries as `-inf`).
///
/// ```
/// let dx = wgpu_loss::cpu::softmax_backward(&[0.5, 0.5], &[1.0, 0.0], 1, 2)?;
/// assert_eq!(dx, [0.25, -0.25]);
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
pub fn softmax_backward(output: &[f32], grad_output: &[f32], rows: usize, classes: usize) -> Result<Vec<f32>> {
    backward(output, grad_output, rows, classes, softmax_backward_row)
}

/// The CPU twin of [`Gpu::softmax_spatial`](crate::Gpu::softmax_spatial): a softmax-family
/// op over dim 1 of an `(N, C, d1, …, dk)` input (`rows` = N, `classes` = C, `spatial` =
/// d1·…·dk; class `c` of position `s` of sample `n` at `(n·C + c)·spatial + s`).
///
/// ```
/// use wgpu_loss::{cpu, SoftmaxOp};
/// let p = cpu::softmax_spatial(SoftmaxOp::Softmax, &[0.0, 1.0, 0.0, 1.0], None, 1, 2, 2)?;
/// assert_eq!(p, [0.5; 4]);
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
pub fn softmax_spatial(
    op: SoftmaxOp, input: &[f32], grad_output: Option<&[f32]>, rows: usize, classes: usize, spatial: usize,
) -> Result<Vec<f32>> {
    let (input_name, _) = op.arguments(grad_output.is_some())?;
    check_spatial(spatial)?;
    let positions = rows.saturating_mul(spatial);
    check_matrix(input_name, input.len(), positions, classes)?;
    if let Some(dy) = grad_output {
        check_matrix("grad_output", dy.len(), positions, classes)?;
    }
    let x = to_rows(input, classes, spatial);
    // op.kernel checked that exactly the backward ops have a grad_output.
    let dy = grad_output.map(|dy| to_rows(dy, classes, spatial)).unwrap_or_default();
    let out = match op {
        SoftmaxOp::LogSoftmax => log_softmax(&x, positions, classes)?,
        SoftmaxOp::Softmax => softmax(&x, positions, classes)?,
        SoftmaxOp::LogSoftmaxBackward => log_softmax_backward(&x, &dy, positions, classes)?,
        SoftmaxOp::SoftmaxBackward => softmax_backward(&x, &dy, positions, classes)?,
    };
    Ok(from_rows(out, classes, spatial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Error;
    use crate::cpu::tests::{XorShift, assert_finite_difference};

    /// `f(x, dy)` over each row of `x` and `dy`, gathered.
    fn by_row(x: &[f64], dy: &[f64], classes: usize, f: impl Fn(&[f64], &[f64]) -> Vec<f64>) -> Vec<f64> {
        let rows = x.chunks_exact(classes).zip(dy.chunks_exact(classes));
        rows.flat_map(|(x, dy)| f(x, dy)).collect()
    }

    /// Checks `backward` against finite differences of `Σ dy·forward(x)`.
    fn assert_backward(forward: fn(&[f64]) -> Vec<f64>, backward: BackwardRow) {
        let mut rng = XorShift(0x5eed);
        for (rows, classes) in [(3, 5), (4, 7)] {
            let (x, dy) = (rng.vec(rows * classes, -3.0, 3.0), rng.vec(rows * classes, -2.0, 2.0));
            let grad = by_row(&x, &dy, classes, |x, dy| backward(&forward(x), dy));
            let products = |x: &[f64], dy: &[f64]| forward(x).iter().zip(dy).map(|(y, dy)| y * dy).collect();
            assert_finite_difference(&x, &grad, |x| by_row(x, &dy, classes, products).iter().sum());
        }
    }

    #[test]
    fn log_softmax_backward_matches_finite_differences() {
        assert_backward(log_softmax_row, log_softmax_backward_row);
    }

    #[test]
    fn softmax_backward_matches_finite_differences() {
        assert_backward(softmax_row, softmax_backward_row);
    }

    #[test]
    fn special_values() {
        let (inf, nan, ln2) = (f32::INFINITY, f32::NAN, std::f32::consts::LN_2);
        assert_eq!(log_softmax(&[7.0, 1e30], 2, 1).unwrap(), [0.0, 0.0]);
        assert!(log_softmax(&[-inf], 1, 1).unwrap()[0].is_nan());
        assert_eq!(log_softmax(&[3.5; 4], 1, 4).unwrap(), [-(4f32.ln()); 4]);
        assert_eq!(log_softmax(&[1e4, -1e4], 1, 2).unwrap(), [0.0, -2e4]);
        assert_eq!(softmax(&[1e4, -1e4], 1, 2).unwrap(), [1.0, 0.0]);
        let rows = [0.0, -inf, 0.0, 1.0, nan, 0.0, 1.0, inf, -inf, -inf, 2.0, 2.0];
        let lp = log_softmax(&rows, 4, 3).unwrap();
        assert_eq!((&lp[..3], &lp[9..]), (&[-ln2, -inf, -ln2][..], &[-inf, -ln2, -ln2][..]));
        assert!(lp[3..9].iter().all(|v| v.is_nan()));
    }

    #[test]
    fn errors() {
        let empty = |rows, classes| Err(Error::EmptyBatch { rows, classes });
        let length = |argument, actual| Err(Error::LengthMismatch { argument, expected: 6, actual });
        assert_eq!(log_softmax(&[], 0, 3), empty(0, 3));
        assert_eq!(softmax(&[], 2, 0), empty(2, 0));
        assert_eq!(softmax(&[0.0; 5], 2, 3), length("logits", 5));
        assert_eq!(softmax_backward(&[0.0; 5], &[0.0; 6], 2, 3), length("output", 5));
        assert_eq!(log_softmax_backward(&[0.0; 6], &[0.0; 7], 2, 3), length("grad_output", 7));
    }
}
