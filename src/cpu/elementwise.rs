//! The elementwise losses and their gradients with respect to the input: MSE, L1, RMSE,
//! smooth L1, Huber, binary cross-entropy (on probabilities and on logits) and KL divergence.
//!
//! Every loss here has three functions, `<loss>`, `<loss>_grad` and `<loss>_with_grad`,
//! with the arguments of the GPU slice API: `input` and `target` of `n` elements each, the
//! loss's own arguments, and for the gradients `grad_output`, the upstream gradient (`n`
//! values for reduction `none`, else one). The gradient of a reduced loss carries its
//! divisor: `grad_output[0] / n` for `mean`, `/ rows` for KL's `batchmean`.
//!
//! The formulas are PyTorch's, computed literally in f64 with IEEE arithmetic, so NaN and
//! infinities propagate as they do there.

use super::{to_f32, to_f64};
use crate::error::Result;
use crate::options::{Combine, Elementwise, Pointwise};
use crate::{BceOptions, KlDivOptions, Reduction};

/// C++'s `std::max(a, b)` as PyTorch calls it: a NaN in `a` stays.
fn torch_max(a: f64, b: f64) -> f64 {
    if a < b { b } else { a }
}

/// `torch.sign` (and `sgn`, which L1's backward calls): `(0 < d) - (d < 0)`, so -1, 0 or 1,
/// and 0 for ±0 and for NaN.
fn sign(d: f64) -> f64 {
    f64::from(u8::from(0.0 < d)) - f64::from(u8::from(d < 0.0))
}

/// `log(1 + e^z)`, stably.
fn softplus(z: f64) -> f64 {
    torch_max(z, 0.0) + (-z.abs()).exp().ln_1p()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

/// One element's unweighted loss and its derivative with respect to `x`.
fn point(loss: Pointwise, x: f64, y: f64, pos_weight: f64) -> (f64, f64) {
    let d = x - y;
    match loss {
        Pointwise::Mse => (d * d, 2.0 * d),
        Pointwise::L1 => (d.abs(), sign(d)),
        // PyTorch's smooth L1 with beta = 0 is L1 itself (slope 0 at a NaN difference).
        Pointwise::SmoothL1 { beta: 0.0 } => (d.abs(), sign(d)),
        // The slopes are PyTorch's backward chains `d ≤ -β ? -1 : d ≥ β ? 1 : d / β` and
        // `d < -δ ? -δ : d > δ ? δ : d`: a NaN difference falls through to NaN.
        Pointwise::SmoothL1 { beta } => {
            let beta = f64::from(beta);
            let loss = if d.abs() < beta { 0.5 * d * d / beta } else { d.abs() - 0.5 * beta };
            let slope = if d <= -beta {
                -1.0
            } else if d >= beta {
                1.0
            } else {
                d / beta
            };
            (loss, slope)
        }
        Pointwise::Huber { delta } => {
            let delta = f64::from(delta);
            let loss = if d.abs() < delta { 0.5 * d * d } else { delta * (d.abs() - 0.5 * delta) };
            (loss, d.clamp(-delta, delta))
        }
        Pointwise::Bce => {
            let log_p = torch_max(x.ln(), -100.0);
            let log_q = torch_max((-x).ln_1p(), -100.0);
            let loss = (y - 1.0) * log_q - y * log_p;
            (loss, d / torch_max((1.0 - x) * x, 1e-12))
        }
        Pointwise::BceWithLogits => {
            let log_weight = 1.0 + (pos_weight - 1.0) * y;
            let loss = (1.0 - y) * x + log_weight * softplus(-x);
            (loss, (1.0 - y) * sigmoid(x) - pos_weight * y * sigmoid(-x))
        }
        Pointwise::KlDiv { log_target: false } => {
            let xlogy = if y == 0.0 { 0.0 } else { y * y.ln() };
            (xlogy - y * x, -y)
        }
        Pointwise::KlDiv { log_target: true } => (y.exp() * (y - x), -y.exp()),
    }
}

/// Element `i`'s weighted loss and slope.
fn element(spec: &Elementwise, x: &[f64], y: &[f64], i: usize) -> (f64, f64) {
    let pos_weight = spec.pos_weight.map_or(1.0, |p| f64::from(p[i % p.len()]));
    let (loss, slope) = point(spec.loss, x[i], y[i], pos_weight);
    let w = spec.weight.map_or(1.0, |w| f64::from(w[i]));
    (loss * w, slope * w)
}

/// What `mean` / `batchmean` divide by.
fn divisor(spec: &Elementwise, n: usize) -> f64 {
    match (spec.combine, spec.batch_rows) {
        (Combine::BatchMean, Some(rows)) => rows as f64,
        _ => n as f64,
    }
}

/// The combined loss.
fn loss_f64(spec: &Elementwise, x: &[f64], y: &[f64]) -> Vec<f64> {
    let n = x.len();
    let losses = (0..n).map(|i| element(spec, x, y, i).0);
    match spec.combine {
        Combine::None => losses.collect(),
        Combine::Sum => vec![losses.sum()],
        Combine::Mean | Combine::BatchMean => vec![losses.sum::<f64>() / divisor(spec, n)],
        Combine::RootMean => vec![(losses.sum::<f64>() / n as f64).sqrt()],
    }
}

/// The gradient with respect to `x`: each slope times its upstream factor.
fn grad_f64(spec: &Elementwise, x: &[f64], y: &[f64], grad_output: &[f64]) -> Vec<f64> {
    let n = x.len();
    let factor = match spec.combine {
        Combine::None | Combine::Sum => grad_output[0],
        Combine::Mean | Combine::BatchMean => grad_output[0] / divisor(spec, n),
        // PyTorch's sqrt(mse_loss(x, y)): the square root's g / (2·rmse), then mean's / n.
        Combine::RootMean => grad_output[0] / n as f64 / (2.0 * loss_f64(spec, x, y)[0]),
    };
    (0..n)
        .map(|i| {
            let g = if spec.combine == Combine::None { grad_output[i] } else { factor };
            element(spec, x, y, i).1 * g
        })
        .collect()
}

fn loss_checked(spec: &Elementwise, input: &[f32], target: &[f32], n: usize) -> Result<Vec<f32>> {
    spec.check(input, target, n, None)?;
    Ok(to_f32(&loss_f64(spec, &to_f64(input), &to_f64(target))))
}

fn grad_checked(spec: &Elementwise, input: &[f32], target: &[f32], n: usize, grad_output: &[f32]) -> Result<Vec<f32>> {
    spec.check(input, target, n, Some(grad_output))?;
    Ok(to_f32(&grad_f64(spec, &to_f64(input), &to_f64(target), &to_f64(grad_output))))
}

/// Defines `<loss>`, `<loss>_grad` and `<loss>_with_grad` of each loss from the loss's own
/// arguments and the `Elementwise` they describe; `example` is those arguments in a call.
macro_rules! cpu_twins {
    ($(
        $(#[doc = $doc:expr])*
        fn $loss:ident, $grad:ident, $with_grad:ident($($arg:ident: $ty:ty),*) = $spec:expr;
        example($example:literal);
    )*) => {$(
        $(#[doc = $doc])*
        pub fn $loss(input: &[f32], target: &[f32], n: usize $(, $arg: $ty)*) -> Result<Vec<f32>> {
            loss_checked(&$spec, input, target, n)
        }

        #[doc = concat!("The gradient of [`", stringify!($loss), "`] with respect to `input` (`n` values), given")]
        #[doc = "`grad_output` (`n` values for reduction `none`, else one; a mean's divisor is applied here)."]
        #[doc = ""]
        #[doc = "```"]
        #[doc = "let (input, target) = ([0.25, 0.75, 0.5], [0.0, 1.0, 0.5]);"]
        #[doc = concat!("let grad = wgpu_loss::cpu::", stringify!($grad), "(&input, &target, 3", $example, ", &[1.0])?;")]
        #[doc = "assert_eq!(grad.len(), 3);"]
        #[doc = "# Ok::<(), wgpu_loss::Error>(())"]
        #[doc = "```"]
        pub fn $grad(input: &[f32], target: &[f32], n: usize $(, $arg: $ty)*, grad_output: &[f32]) -> Result<Vec<f32>> {
            grad_checked(&$spec, input, target, n, grad_output)
        }

        #[doc = concat!("[`", stringify!($loss), "`] and [`", stringify!($grad), "`] together.")]
        #[doc = ""]
        #[doc = "```"]
        #[doc = "let (input, target) = ([0.25, 0.75, 0.5], [0.0, 1.0, 0.5]);"]
        #[doc = concat!("let (loss, grad) = wgpu_loss::cpu::", stringify!($with_grad), "(&input, &target, 3", $example, ", &[1.0])?;")]
        #[doc = concat!("assert_eq!(loss, wgpu_loss::cpu::", stringify!($loss), "(&input, &target, 3", $example, ")?);")]
        #[doc = "assert_eq!(grad.len(), 3);"]
        #[doc = "# Ok::<(), wgpu_loss::Error>(())"]
        #[doc = "```"]
        pub fn $with_grad(
            input: &[f32],
            target: &[f32],
            n: usize
            $(, $arg: $ty)*,
            grad_output: &[f32],
        ) -> Result<(Vec<f32>, Vec<f32>)> {
            let spec = $spec;
            spec.check(input, target, n, Some(grad_output))?;
            let (x, y) = (to_f64(input), to_f64(target));
            Ok((to_f32(&loss_f64(&spec, &x, &y)), to_f32(&grad_f64(&spec, &x, &y, &to_f64(grad_output)))))
        }
    )*};
}

cpu_twins! {
    /// Mean squared error, `torch.nn.functional.mse_loss`: `(x - y)²` per element, reduced
    /// as `reduction` says (`Mean` divides by `n`). Gradient `2·(x - y)`.
    ///
    /// ```
    /// use wgpu_loss::{cpu, Reduction};
    /// assert_eq!(cpu::mse_loss(&[1.0, 3.0], &[0.0, 0.0], 2, Reduction::Mean)?, [5.0]);
    /// # Ok::<(), wgpu_loss::Error>(())
    /// ```
    fn mse_loss, mse_loss_grad, mse_loss_with_grad(reduction: Reduction) = Elementwise::mse(reduction);
    example(", wgpu_loss::Reduction::Mean");

    /// Mean absolute error, `torch.nn.functional.l1_loss`: `|x - y|` per element, reduced as
    /// `reduction` says. Gradient `sign(x - y)` as `torch.sign`, which is 0 where `x == y`
    /// and where `x - y` is NaN.
    ///
    /// ```
    /// use wgpu_loss::{cpu, Reduction};
    /// assert_eq!(cpu::l1_loss(&[1.0, -3.0], &[0.0, 0.0], 2, Reduction::Sum)?, [4.0]);
    /// assert_eq!(cpu::l1_loss_grad(&[2.0], &[2.0], 1, Reduction::Sum, &[1.0])?, [0.0]);
    /// # Ok::<(), wgpu_loss::Error>(())
    /// ```
    fn l1_loss, l1_loss_grad, l1_loss_with_grad(reduction: Reduction) = Elementwise::l1(reduction);
    example(", wgpu_loss::Reduction::Mean");

    /// Root mean squared error, `torch.sqrt(torch.nn.functional.mse_loss(x, y))`: one value,
    /// `sqrt(Σ (x - y)² / n)` (there is no reduction argument: RMSE is a mean). Its gradient
    /// is PyTorch's through that composition, `(x - y) / (n·rmse)`: NaN everywhere when
    /// `rmse == 0` (0 · ∞), as autograd gives.
    ///
    /// ```
    /// use wgpu_loss::cpu;
    /// assert_eq!(cpu::rmse_loss(&[3.0, -3.0], &[0.0, 0.0], 2)?, [3.0]);
    /// # Ok::<(), wgpu_loss::Error>(())
    /// ```
    fn rmse_loss, rmse_loss_grad, rmse_loss_with_grad() = Elementwise::rmse();
    example("");

    /// Smooth L1, `torch.nn.functional.smooth_l1_loss`: with `d = x - y`,
    /// `0.5·d²/beta` where `|d| < beta`, else `|d| - 0.5·beta`; `beta == 0` is L1. Gradient
    /// `d / beta`, else `sign(d)` (NaN for a NaN `d`; with `beta == 0`, L1's gradient, 0
    /// there). `beta` must be finite and at least 0.
    ///
    /// ```
    /// use wgpu_loss::{cpu, Reduction};
    /// assert_eq!(cpu::smooth_l1_loss(&[0.5, 3.0], &[0.0, 0.0], 2, Reduction::None, 1.0)?, [0.125, 2.5]);
    /// # Ok::<(), wgpu_loss::Error>(())
    /// ```
    fn smooth_l1_loss, smooth_l1_loss_grad, smooth_l1_loss_with_grad(reduction: Reduction, beta: f32) =
        Elementwise::smooth_l1(reduction, beta);
    example(", wgpu_loss::Reduction::Mean, 1.0");

    /// Huber loss, `torch.nn.functional.huber_loss`: with `d = x - y`, `0.5·d²` where
    /// `|d| < delta`, else `delta·(|d| - 0.5·delta)`. Gradient `d`, else `delta·sign(d)`.
    /// `delta` must be finite and greater than 0.
    ///
    /// ```
    /// use wgpu_loss::{cpu, Reduction};
    /// assert_eq!(cpu::huber_loss(&[0.5, 3.0], &[0.0, 0.0], 2, Reduction::None, 1.0)?, [0.125, 2.5]);
    /// # Ok::<(), wgpu_loss::Error>(())
    /// ```
    fn huber_loss, huber_loss_grad, huber_loss_with_grad(reduction: Reduction, delta: f32) =
        Elementwise::huber(reduction, delta);
    example(", wgpu_loss::Reduction::Mean, 1.0");

    /// Binary cross-entropy on probabilities, `torch.nn.functional.binary_cross_entropy`:
    /// `-w·(y·max(log p, -100) + (1 - y)·max(log(1 - p), -100))`, each log clamped at -100
    /// as PyTorch does, so `p = 0` or `1` gives a finite loss. Gradient
    /// `w·(p - y) / max((1 - p)·p, 1e-12)`. `input` and `target` must lie in `[0, 1]` (PyTorch
    /// raises otherwise); `opts.pos_weight` is refused (use the logits form).
    ///
    /// ```
    /// use wgpu_loss::{cpu, BceOptions};
    /// let loss = cpu::binary_cross_entropy(&[0.0, 1.0], &[1.0, 1.0], 2, &BceOptions::default())?;
    /// assert_eq!(loss, [50.0]); // (100 + 0) / 2
    /// # Ok::<(), wgpu_loss::Error>(())
    /// ```
    fn binary_cross_entropy, binary_cross_entropy_grad, binary_cross_entropy_with_grad(opts: &BceOptions) =
        Elementwise::bce(opts);
    example(", &wgpu_loss::BceOptions::default()");

    /// Binary cross-entropy on logits, `torch.nn.functional.binary_cross_entropy_with_logits`:
    /// `w·((1 - y)·x + (1 + (pw - 1)·y)·softplus(-x))` with
    /// `softplus(z) = max(z, 0) + log1p(exp(-|z|))`, stable for any logit (never
    /// `log(sigmoid(x))`). Gradient `w·((1 - y)·σ(x) - pw·y·σ(-x))`. `pw` is
    /// `opts.pos_weight[i % len]`, 1 without it.
    ///
    /// ```
    /// use wgpu_loss::{cpu, BceOptions, Reduction};
    /// let mut opts = BceOptions::default();
    /// opts.reduction = Reduction::None;
    /// let loss = cpu::binary_cross_entropy_with_logits(&[100.0, -100.0], &[0.0, 1.0], 2, &opts)?;
    /// assert_eq!(loss, [100.0, 100.0]);
    /// # Ok::<(), wgpu_loss::Error>(())
    /// ```
    fn binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_grad,
        binary_cross_entropy_with_logits_with_grad(opts: &BceOptions) = Elementwise::bce_with_logits(opts);
    example(", &wgpu_loss::BceOptions::default()");

    /// KL divergence, `torch.nn.functional.kl_div`, of log-probabilities `input` (q) from
    /// `target` (t), a batch of `rows` rows of `n / rows` elements: `xlogy(t, t) - t·q`
    /// (0 where `t == 0` and q is finite), or with `opts.log_target` `exp(t)·(t - q)`.
    /// Gradient `-t`, or `-exp(t)`. `batchmean` divides the sum by `rows`, `mean` by `n`.
    ///
    /// ```
    /// use wgpu_loss::{cpu, KlDivOptions, KlDivReduction};
    /// let mut opts = KlDivOptions::default();
    /// opts.reduction = KlDivReduction::BatchMean;
    /// let q = [0.5f32.ln(), 0.5f32.ln(), 0.5f32.ln(), 0.5f32.ln()];
    /// let loss = cpu::kl_div(&q, &[0.5, 0.5, 1.0, 0.0], 4, 2, &opts)?;
    /// assert!((loss[0] - 0.5 * 2f32.ln()).abs() < 1e-6);
    /// # Ok::<(), wgpu_loss::Error>(())
    /// ```
    fn kl_div, kl_div_grad, kl_div_with_grad(rows: usize, opts: &KlDivOptions) = Elementwise::kl_div(rows, opts);
    example(", 1, &wgpu_loss::KlDivOptions::default()");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cpu::tests::{XorShift, assert_finite_difference};
    use crate::{Error, KlDivReduction};

    /// Every loss and option, with inputs in each loss's smooth region.
    fn cases(rng: &mut XorShift, n: usize) -> Vec<(Elementwise<'static>, Vec<f64>, Vec<f64>)> {
        let leak = |v: Vec<f64>| -> &'static [f32] { Box::leak(v.iter().map(|&w| w as f32).collect()) };
        let mut cases = Vec::new();
        for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
            let regression = [
                Elementwise::mse(reduction),
                Elementwise::l1(reduction),
                Elementwise::smooth_l1(reduction, 0.0),
                Elementwise::smooth_l1(reduction, 0.7),
                Elementwise::smooth_l1(reduction, 2.5),
                Elementwise::huber(reduction, 0.5),
                Elementwise::huber(reduction, 2.0),
            ];
            for spec in regression {
                cases.push((spec, rng.vec(n, -3.0, 3.0), rng.vec(n, -3.0, 3.0)));
            }
            let weight = Some(leak(rng.vec(n, 0.2, 2.0)));
            let pos_weight = Some(leak(rng.vec(2, 0.5, 3.0)));
            for (weight, pos_weight) in [(None, None), (weight, None), (None, pos_weight), (weight, pos_weight)] {
                let logits =
                    Elementwise { loss: Pointwise::BceWithLogits, weight, pos_weight, ..Elementwise::mse(reduction) };
                cases.push((logits, rng.vec(n, -6.0, 6.0), rng.vec(n, 0.0, 1.0)));
                let probabilities = Elementwise { loss: Pointwise::Bce, pos_weight: None, ..logits };
                cases.push((probabilities, rng.vec(n, 0.05, 0.95), rng.vec(n, 0.0, 1.0)));
            }
        }
        for reduction in [KlDivReduction::None, KlDivReduction::Sum, KlDivReduction::Mean, KlDivReduction::BatchMean] {
            for log_target in [false, true] {
                let spec = Elementwise::kl_div(2, &KlDivOptions { reduction, log_target });
                let mut t = if log_target { rng.vec(n, -5.0, 0.5) } else { rng.vec(n, 0.0, 1.0) };
                if !log_target {
                    t[1] = 0.0;
                }
                cases.push((spec, rng.vec(n, -5.0, 0.0), t));
            }
        }
        cases.push((Elementwise::rmse(), rng.vec(n, -3.0, 3.0), rng.vec(n, -3.0, 3.0)));
        cases
    }

    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = XorShift(0x0e1e_3e47);
        let n = 6;
        for (spec, x, y) in cases(&mut rng, n) {
            let g = rng.vec(spec.output_len(n), -2.0, 2.0);
            let objective = |x: &[f64]| -> f64 { loss_f64(&spec, x, &y).iter().zip(&g).map(|(l, g)| l * g).sum() };
            assert_finite_difference(&x, &grad_f64(&spec, &x, &y, &g), objective);
        }
    }

    #[test]
    fn special_values() {
        let none = BceOptions { reduction: Reduction::None, ..Default::default() };
        // Logits ±100 are exact: losses 100 and (to the last denormal) 0, gradients ±1 and 0.
        let x = [100.0, 100.0, -100.0, -100.0];
        let y = [0.0, 1.0, 0.0, 1.0];
        let (loss, grad) = binary_cross_entropy_with_logits_with_grad(&x, &y, 4, &none, &[1.0; 4]).unwrap();
        assert_eq!([loss[0], loss[2], loss[3]], [100.0, 0.0, 100.0]);
        assert!(loss[1].abs() < 1e-40 && grad[1].abs() < 1e-40 && grad[2].abs() < 1e-40, "{loss:?} {grad:?}");
        assert_eq!([grad[0], grad[3]], [1.0, -1.0]);
        // Probabilities 0 and 1: the logs clamp at -100; the gradient's floor is 1e-12.
        let (loss, grad) = binary_cross_entropy_with_grad(&[0.0, 0.0, 1.0, 1.0], &y, 4, &none, &[1.0; 4]).unwrap();
        assert_eq!(loss, [0.0, 100.0, 100.0, 0.0]);
        assert_eq!(grad, [0.0, -1e12, 1e12, 0.0]);
        // KL: t = 0 contributes 0 and gradient -0.
        let kl = KlDivOptions { reduction: KlDivReduction::None, ..Default::default() };
        let (loss, grad) = kl_div_with_grad(&[-1.0, -2.0], &[0.0, 1.0], 2, 1, &kl, &[1.0, 1.0]).unwrap();
        assert_eq!(loss, [0.0, 2.0]);
        assert_eq!(grad, [0.0, -1.0]);
        // L1's gradient at x == y is 0; smooth L1 with beta 0 is L1.
        let x = [1.0, 2.0, -3.0];
        let y = [1.0, 0.5, 0.0];
        let l1 = l1_loss_with_grad(&x, &y, 3, Reduction::None, &[1.0; 3]).unwrap();
        assert_eq!(l1.1, [0.0, 1.0, -1.0]);
        assert_eq!(smooth_l1_loss_with_grad(&x, &y, 3, Reduction::None, 0.0, &[1.0; 3]).unwrap(), l1);
        // RMSE of a perfect fit: 0, with a NaN gradient (PyTorch's 0 · ∞).
        let (loss, grad) = rmse_loss_with_grad(&[1.0, 2.0], &[1.0, 2.0], 2, &[1.0]).unwrap();
        assert_eq!(loss, [0.0]);
        assert!(grad.iter().all(|g| g.is_nan()));
        // NaN propagates to its own element, and to reductions.
        let (loss, grad) = mse_loss_with_grad(&[f32::NAN, 1.0], &[0.0, 0.0], 2, Reduction::None, &[1.0; 2]).unwrap();
        assert!(loss[0].is_nan() && grad[0].is_nan());
        assert_eq!((loss[1], grad[1]), (1.0, 2.0));
        assert!(mse_loss(&[f32::NAN, 1.0], &[0.0, 0.0], 2, Reduction::Sum).unwrap()[0].is_nan());
        // A NaN difference: L1's slope is torch.sign(NaN) = 0 (so is smooth L1's with beta 0),
        // while smooth L1 (beta > 0) and Huber carry the NaN, as PyTorch's backward does.
        let none = Reduction::None;
        let (loss, grad) = l1_loss_with_grad(&[f32::NAN, 1.0], &[0.0, f32::NAN], 2, none, &[1.0; 2]).unwrap();
        assert!(loss.iter().all(|l| l.is_nan()));
        assert_eq!(grad, [0.0, 0.0]);
        assert_eq!(smooth_l1_loss_grad(&[f32::NAN], &[0.0], 1, none, 0.0, &[1.0]).unwrap(), [0.0]);
        assert!(smooth_l1_loss_grad(&[f32::NAN], &[0.0], 1, none, 0.5, &[1.0]).unwrap()[0].is_nan());
        assert!(huber_loss_grad(&[f32::NAN], &[0.0], 1, none, 1.0, &[1.0]).unwrap()[0].is_nan());
    }

    #[test]
    fn errors() {
        let x = [0.5f32; 4];
        let invalid =
            |argument| move |e: &Error| matches!(e, Error::InvalidArgument { argument: a, .. } if *a == argument);
        assert!(invalid("n")(&mse_loss(&[], &[], 0, Reduction::Mean).unwrap_err()));
        assert_eq!(
            l1_loss(&x[..3], &x, 4, Reduction::Mean),
            Err(Error::LengthMismatch { argument: "input", expected: 4, actual: 3 })
        );
        assert!(invalid("beta")(&smooth_l1_loss(&x, &x, 4, Reduction::Mean, -1.0).unwrap_err()));
        assert!(smooth_l1_loss(&x, &x, 4, Reduction::Mean, 0.0).is_ok());
        assert!(invalid("delta")(&huber_loss(&x, &x, 4, Reduction::Mean, 0.0).unwrap_err()));
        let weight = BceOptions { weight: Some(vec![1.0; 3]), ..Default::default() };
        assert!(matches!(
            binary_cross_entropy(&x, &x, 4, &weight),
            Err(Error::LengthMismatch { argument: "weight", .. })
        ));
        let pos_weight = BceOptions { pos_weight: Some(vec![1.0; 3]), ..Default::default() };
        assert!(invalid("pos_weight")(&binary_cross_entropy_with_logits(&x, &x, 4, &pos_weight).unwrap_err()));
        assert!(invalid("pos_weight")(&binary_cross_entropy(&x, &x, 4, &pos_weight).unwrap_err()));
        assert!(invalid("input")(&binary_cross_entropy(&[1.5], &[0.0], 1, &BceOptions::default()).unwrap_err()));
        assert!(invalid("target")(&binary_cross_entropy(&[0.5], &[f32::NAN], 1, &BceOptions::default()).unwrap_err()));
        assert!(invalid("rows")(&kl_div(&x, &x, 4, 3, &KlDivOptions::default()).unwrap_err()));
        assert!(matches!(
            mse_loss_grad(&x, &x, 4, Reduction::Mean, &[1.0, 1.0]),
            Err(Error::LengthMismatch { argument: "grad_output", expected: 1, actual: 2 })
        ));
        let message = huber_loss(&x, &x, 4, Reduction::Mean, -2.5).unwrap_err().to_string();
        assert!(message.contains("delta") && message.contains("-2.5"), "{message}");
    }
}
