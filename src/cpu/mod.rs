//! CPU twins of the GPU kernels: the reference every GPU result is checked against.
//!
//! Each file here is named after the shader family it mirrors (`softmax`, `nll`,
//! `cross_entropy`). They run the same argument checks as the GPU ops, so both refuse the same
//! inputs with the same [`Error`](crate::Error), and they compute in `f64` with the literal
//! formulas of PyTorch, rounding to `f32` only at the end. They are written for clarity, not
//! speed.
//!
//! ```
//! use wgpu_loss::{cpu, CrossEntropyOptions};
//! let logits = [2.0, 0.0, 0.0, /* row 1 */ 0.0, 0.0, 0.0];
//! let (loss, grad) =
//!     cpu::cross_entropy_with_grad(&logits, &[0, 2], 2, 3, &CrossEntropyOptions::default(), &[1.0])?;
//! let row0 = (1.0 + 2.0 * (-2.0f64).exp()).ln(); // -log_softmax at the target
//! let mean = (row0 + 3f64.ln()) / 2.0;
//! assert!((loss[0] as f64 - mean).abs() < 1e-6);
//! assert!((grad[5] as f64 - (1.0 / 3.0 - 1.0) / 2.0).abs() < 1e-6);
//! # Ok::<(), wgpu_loss::Error>(())
//! ```

mod cross_entropy;
mod elementwise;
mod linear_cross_entropy;
mod nll;
mod softmax;

pub use cross_entropy::{
    cross_entropy, cross_entropy_grad, cross_entropy_probs, cross_entropy_probs_grad, cross_entropy_probs_with_grad,
    cross_entropy_with_extras, cross_entropy_with_grad,
};
pub use elementwise::{
    binary_cross_entropy, binary_cross_entropy_grad, binary_cross_entropy_with_grad, binary_cross_entropy_with_logits,
    binary_cross_entropy_with_logits_grad, binary_cross_entropy_with_logits_with_grad, huber_loss, huber_loss_grad,
    huber_loss_with_grad, kl_div, kl_div_grad, kl_div_with_grad, l1_loss, l1_loss_grad, l1_loss_with_grad, mse_loss,
    mse_loss_grad, mse_loss_with_grad, rmse_loss, rmse_loss_grad, rmse_loss_with_grad, smooth_l1_loss,
    smooth_l1_loss_grad, smooth_l1_loss_with_grad,
};
pub use linear_cross_entropy::{
    linear_cross_entropy, linear_cross_entropy_with_extras, linear_cross_entropy_with_grad,
};
pub use nll::{nll_loss, nll_loss_grad};
pub use softmax::{log_softmax, log_softmax_backward, softmax, softmax_backward, softmax_spatial};

/// `(N, C, spatial)` → `(N·spatial, C)` rows (the identity for `spatial` = 1), so the CPU
/// twins compute every layout with the row formulas; [`from_rows`] undoes it.
fn to_rows(x: &[f32], classes: usize, spatial: usize) -> std::borrow::Cow<'_, [f32]> {
    if spatial == 1 {
        return std::borrow::Cow::Borrowed(x);
    }
    let per_sample = classes * spatial;
    let mut out = Vec::with_capacity(x.len());
    for sample in x.chunks_exact(per_sample) {
        for s in 0..spatial {
            out.extend((0..classes).map(|c| sample[c * spatial + s]));
        }
    }
    std::borrow::Cow::Owned(out)
}

/// `(N·spatial, C)` rows → `(N, C, spatial)`.
fn from_rows(x: Vec<f32>, classes: usize, spatial: usize) -> Vec<f32> {
    if spatial == 1 {
        return x;
    }
    let per_sample = classes * spatial;
    let mut out = vec![0.0; x.len()];
    for (n, sample) in out.chunks_exact_mut(per_sample).enumerate() {
        for s in 0..spatial {
            for c in 0..classes {
                sample[c * spatial + s] = x[(n * spatial + s) * classes + c];
            }
        }
    }
    out
}

/// The options of the row form of a `spatial` batch.
fn row_options(opts: &crate::CrossEntropyOptions) -> crate::CrossEntropyOptions {
    crate::CrossEntropyOptions { spatial: 1, ..opts.clone() }
}

fn to_f64(x: &[f32]) -> Vec<f64> {
    x.iter().map(|&v| f64::from(v)).collect()
}

fn to_f32(x: &[f64]) -> Vec<f32> {
    x.iter().map(|&v| v as f32).collect()
}

#[cfg(test)]
mod tests {
    use crate::reduction::Targets;
    use crate::{CrossEntropyOptions, Reduction};

    /// A tiny deterministic PRNG (xorshift64) for random test inputs.
    pub(super) struct XorShift(pub(super) u64);

    impl XorShift {
        /// Uniform in `[lo, hi)`.
        pub(super) fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            lo + (hi - lo) * (self.0 >> 11) as f64 / (1u64 << 53) as f64
        }

        pub(super) fn vec(&mut self, n: usize, lo: f64, hi: f64) -> Vec<f64> {
            (0..n).map(|_| self.uniform(lo, hi)).collect()
        }
    }

    /// Central differences of `f` at `x` against `grad`, to 1e-6 relative.
    pub(super) fn assert_finite_difference(x: &[f64], grad: &[f64], f: impl Fn(&[f64]) -> f64) {
        let h = 1e-6;
        let mut x = x.to_vec();
        for j in 0..x.len() {
            let x0 = x[j];
            x[j] = x0 + h;
            let up = f(&x);
            x[j] = x0 - h;
            let down = f(&x);
            x[j] = x0;
            let numeric = (up - down) / (2.0 * h);
            let tol = 1e-6 * grad[j].abs().max(1.0);
            assert!((numeric - grad[j]).abs() < tol, "element {j}: numeric {numeric}, analytic {}", grad[j]);
        }
    }

    /// Checks `grad(x, targets, classes, g)` against finite differences of the objective
    /// `Σ_k g_k·loss(x, targets, classes)_k` over shapes × weights × label smoothing ×
    /// reductions, with row 1 ignored and random upstream `g`.
    pub(super) fn assert_loss_gradient(
        loss: impl Fn(&[f64], &Targets, usize) -> Vec<f64>, grad: impl Fn(&[f64], &Targets, usize, &[f64]) -> Vec<f64>,
    ) {
        let mut rng = XorShift(0x5eed_1234);
        for (rows, classes) in [(3, 5), (4, 7)] {
            for weighted in [false, true] {
                for label_smoothing in [0.0, 0.1, 1.0] {
                    for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
                        let weight = rng.vec(classes, 0.5, 2.0).iter().map(|&w| w as f32).collect();
                        let opts = CrossEntropyOptions {
                            reduction,
                            weight: weighted.then_some(weight),
                            label_smoothing,
                            ..Default::default()
                        };
                        let mut targets: Vec<i32> =
                            (0..rows).map(|_| rng.uniform(0.0, classes as f64) as i32).collect();
                        targets[1] = opts.ignore_index;
                        let targets = Targets { targets: &targets, opts: &opts };
                        let x = rng.vec(rows * classes, -3.0, 3.0);
                        let g = rng.vec(opts.grad_output_len(rows), -2.0, 2.0);
                        let objective =
                            |x: &[f64]| -> f64 { loss(x, &targets, classes).iter().zip(&g).map(|(l, g)| l * g).sum() };
                        assert_finite_difference(&x, &grad(&x, &targets, classes, &g), objective);
                    }
                }
            }
        }
    }
}
