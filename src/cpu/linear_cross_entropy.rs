//! Cross-entropy of a linear layer's output, `h·Wᵀ + b`, and its gradients with respect to
//! `h`, `W` and `b`: the twin of the fused GPU op, which never stores the logits. Here they
//! are computed whole, in f64, and never rounded before the loss.

use super::cross_entropy::{OutputsF64, outputs_f64};
use super::{to_f32, to_f64};
use crate::error::Result;
use crate::options::{
    ClassTargets, CrossEntropyOptions, Extras, LinearCrossEntropyGrads, LinearCrossEntropyOutputs, LinearShape,
    check_targets,
};

/// Cross-entropy of `hidden·weightᵀ + bias` (`tokens × vocab` logits) against class-index
/// `targets`, with every [`CrossEntropyOptions`] option but `spatial` (which must be 1):
/// `hidden` is `tokens × hidden_size`, `weight` is `vocab × hidden_size` (as
/// `torch.nn.Linear.weight`), `bias` has `vocab` values. As
/// `F.cross_entropy(F.linear(h, W, b), t)`.
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions};
/// // Two tokens, hidden size 2, three classes.
/// let h = [1.0, 0.0, 0.0, 1.0];
/// let w = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];
/// let loss = cpu::linear_cross_entropy(&h, &w, None, &[0, 1], 2, 2, 3, &CrossEntropyOptions::default())?;
/// let logits = [1.0, 0.0, 0.0, 0.0, 1.0, 0.0];
/// assert_eq!(loss, cpu::cross_entropy(&logits, &[0, 1], 2, 3, &CrossEntropyOptions::default())?);
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn linear_cross_entropy(
    hidden: &[f32], weight: &[f32], bias: Option<&[f32]>, targets: &(impl ClassTargets + ?Sized), tokens: usize,
    hidden_size: usize, vocab: usize, opts: &CrossEntropyOptions,
) -> Result<Vec<f32>> {
    let dims = (tokens, hidden_size, vocab);
    let out = outputs(hidden, weight, bias, targets, dims, opts, Extras::default(), None)?;
    Ok(out.grads.loss)
}

/// [`linear_cross_entropy`] and its gradients: `∂L/∂h = G·W`, `∂L/∂W = Gᵀ·h` and
/// `∂L/∂b = Σ_t G[t]` (`Some` exactly when `bias` is), where `G` is the cross-entropy
/// gradient with respect to the logits for the upstream `grad_output` (`tokens` values for
/// `Reduction::None`, else one).
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions, Reduction};
/// let mut opts = CrossEntropyOptions::default();
/// opts.reduction = Reduction::Sum;
/// // One token h = (1), W = (0, 0): logits (0, 0), G = (0.5, -0.5) for target 1.
/// let g = cpu::linear_cross_entropy_with_grad(&[1.0], &[0.0, 0.0], Some(&[0.0, 0.0]), &[1], 1, 1, 2, &opts, &[1.0])?;
/// assert_eq!(g.grad_weight, [0.5, -0.5]);
/// assert_eq!(g.grad_hidden, [0.0]);
/// assert_eq!(g.grad_bias, Some(vec![0.5, -0.5]));
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn linear_cross_entropy_with_grad(
    hidden: &[f32], weight: &[f32], bias: Option<&[f32]>, targets: &(impl ClassTargets + ?Sized), tokens: usize,
    hidden_size: usize, vocab: usize, opts: &CrossEntropyOptions, grad_output: &[f32],
) -> Result<LinearCrossEntropyGrads> {
    let dims = (tokens, hidden_size, vocab);
    let out = outputs(hidden, weight, bias, targets, dims, opts, Extras::default(), Some(grad_output))?;
    Ok(out.grads)
}

/// The CPU twin of [`Gpu::linear_cross_entropy_with_extras`](crate::Gpu::linear_cross_entropy_with_extras):
/// the loss, the gradients when `grad_output` is given, and the extras asked for (as
/// [`cross_entropy_with_extras`](super::cross_entropy_with_extras) of the logits).
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions, Extras};
/// let out = cpu::linear_cross_entropy_with_extras(&[2.0], &[1.0, 0.0], None, &[1], 1, 1, 2,
///     &CrossEntropyOptions::default(), Extras::all(), None)?;
/// assert_eq!((out.argmax, out.accuracy), (vec![0], Some(0.0)));
/// # Ok::<(), wgpu_loss::Error>(())
/// ```
#[allow(clippy::too_many_arguments)]
pub fn linear_cross_entropy_with_extras(
    hidden: &[f32], weight: &[f32], bias: Option<&[f32]>, targets: &(impl ClassTargets + ?Sized), tokens: usize,
    hidden_size: usize, vocab: usize, opts: &CrossEntropyOptions, extras: Extras, grad_output: Option<&[f32]>,
) -> Result<LinearCrossEntropyOutputs> {
    outputs(hidden, weight, bias, targets, (tokens, hidden_size, vocab), opts, extras, grad_output)
}

/// Every twin's arguments checked, then the logits in f64, the cross-entropy's outputs and
/// the products of its gradient.
#[allow(clippy::too_many_arguments)]
fn outputs(
    hidden: &[f32], weight: &[f32], bias: Option<&[f32]>, targets: &(impl ClassTargets + ?Sized),
    (tokens, hidden_size, vocab): (usize, usize, usize), opts: &CrossEntropyOptions, extras: Extras,
    grad_output: Option<&[f32]>,
) -> Result<LinearCrossEntropyOutputs> {
    let shape = LinearShape::new(tokens, hidden_size, vocab, opts)?;
    let targets = &*targets.to_i32(vocab)?;
    shape.check_slices(
        hidden.len(),
        weight.len(),
        bias.map(<[f32]>::len),
        targets.len(),
        grad_output.map(<[f32]>::len),
        opts,
    )?;
    check_targets(targets, tokens, vocab, opts.ignore_index)?;
    let (h, w) = (to_f64(hidden), to_f64(weight));
    let logits = logits_f64(&shape, &h, &w, bias);
    let g = grad_output.map(to_f64);
    let OutputsF64 { loss, grad, lse, argmax, accuracy } =
        outputs_f64(&logits, targets, vocab, opts, extras, g.as_deref());
    let grads = if grad.is_empty() {
        LinearCrossEntropyGrads { loss: to_f32(&loss), ..Default::default() }
    } else {
        LinearCrossEntropyGrads {
            loss: to_f32(&loss),
            grad_hidden: to_f32(&matmul(&grad, &w, (tokens, vocab, hidden_size), |v, k| v * hidden_size + k)),
            grad_weight: to_f32(&grad_weight(&shape, &grad, &h)),
            grad_bias: bias.map(|_| to_f32(&column_sums(&grad, vocab))),
        }
    };
    Ok(LinearCrossEntropyOutputs { grads, lse, argmax, accuracy })
}

/// `h·Wᵀ + b` in f64, `tokens × vocab`.
fn logits_f64(shape: &LinearShape, h: &[f64], w: &[f64], bias: Option<&[f32]>) -> Vec<f64> {
    let (hidden, vocab) = (shape.hidden, shape.vocab);
    let mut logits = matmul(h, w, (shape.tokens, hidden, vocab), |k, v| v * hidden + k);
    if let Some(b) = bias {
        for row in logits.chunks_exact_mut(vocab) {
            for (x, &b) in row.iter_mut().zip(b) {
                *x += f64::from(b);
            }
        }
    }
    logits
}

/// `A·B` for a row-major `m × k` `a` and `b` read as `B[j, n] = b[at(j, n)]`.
fn matmul(a: &[f64], b: &[f64], (m, k, n): (usize, usize, usize), at: impl Fn(usize, usize) -> usize) -> Vec<f64> {
    let mut c = vec![0.0; m * n];
    for (i, row) in c.chunks_exact_mut(n).enumerate() {
        for (j, out) in row.iter_mut().enumerate() {
            *out = (0..k).map(|p| a[i * k + p] * b[at(p, j)]).sum();
        }
    }
    c
}

/// `Gᵀ·h`: `vocab × hidden_size`, as the weight.
fn grad_weight(shape: &LinearShape, grad: &[f64], h: &[f64]) -> Vec<f64> {
    let (tokens, hidden, vocab) = (shape.tokens, shape.hidden, shape.vocab);
    let mut dw = vec![0.0; vocab * hidden];
    for (v, row) in dw.chunks_exact_mut(hidden).enumerate() {
        for (k, out) in row.iter_mut().enumerate() {
            *out = (0..tokens).map(|t| grad[t * vocab + v] * h[t * hidden + k]).sum();
        }
    }
    dw
}

/// `Σ_t G[t, v]` for each class `v`.
fn column_sums(grad: &[f64], vocab: usize) -> Vec<f64> {
    let mut sums = vec![0.0; vocab];
    for row in grad.chunks_exact(vocab) {
        for (s, &g) in sums.iter_mut().zip(row) {
            *s += g;
        }
    }
    sums
}

#[cfg(test)]
mod tests {
    use super::super::tests::{XorShift, assert_finite_difference};
    use super::*;
    use crate::Reduction;

    /// The gradients against finite differences of `Σ g·loss` in h, W and b, over the
    /// reductions, with label smoothing, weights, z-loss and an ignored token.
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = XorShift(0x11ea_2c0e);
        let (tokens, hidden, vocab) = (3, 4, 5);
        for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
            let opts = CrossEntropyOptions {
                reduction,
                weight: Some(rng.vec(vocab, 0.5, 2.0).iter().map(|&w| w as f32).collect()),
                label_smoothing: 0.1,
                z_loss_scale: 0.01,
                ..Default::default()
            };
            let targets = [2, opts.ignore_index, 0];
            let f32s = |v: Vec<f64>| v.iter().map(|&x| x as f32).collect::<Vec<f32>>();
            let h = f32s(rng.vec(tokens * hidden, -1.0, 1.0));
            let w = f32s(rng.vec(vocab * hidden, -1.0, 1.0));
            let b = f32s(rng.vec(vocab, -1.0, 1.0));
            let g = f32s(rng.vec(opts.grad_output_len(tokens), -2.0, 2.0));
            let grads =
                linear_cross_entropy_with_grad(&h, &w, Some(&b), &targets, tokens, hidden, vocab, &opts, &g).unwrap();
            // The objective in f64 throughout: the parameters perturbed as f64.
            let objective = |h: &[f64], w: &[f64], b: &[f64]| -> f64 {
                let shape = LinearShape { tokens, hidden, vocab };
                let mut logits = logits_f64(&shape, h, w, None);
                for row in logits.chunks_exact_mut(vocab) {
                    row.iter_mut().zip(b).for_each(|(x, b)| *x += b);
                }
                let loss = outputs_f64(&logits, &targets, vocab, &opts, Extras::default(), None).loss;
                loss.iter().zip(&g).map(|(l, &g)| l * f64::from(g)).sum()
            };
            let (h, w, b) = (to_f64(&h), to_f64(&w), to_f64(&b));
            assert_finite_difference(&h, &to_f64(&grads.grad_hidden), |x| objective(x, &w, &b));
            assert_finite_difference(&w, &to_f64(&grads.grad_weight), |x| objective(&h, x, &b));
            assert_finite_difference(&b, &to_f64(&grads.grad_bias.unwrap()), |x| objective(&h, &w, x));
        }
    }

    /// The fused twin equals the matmul followed by the cross-entropy twin on the logits
    /// (exact in f32 here: small integers and halves), then the two backward products.
    #[test]
    fn equals_the_unfused_twins() {
        let (tokens, hidden, vocab) = (2, 3, 2);
        let h = [0.5f32, -1.0, 2.0, 0.25, 1.5, -0.5];
        let w = [1.0f32, 0.0, -1.0, 0.5, 2.0, 0.0];
        let opts = CrossEntropyOptions::default();
        let fused =
            linear_cross_entropy_with_grad(&h, &w, None, &[1, 0], tokens, hidden, vocab, &opts, &[1.0]).unwrap();
        let logits: Vec<f32> = (0..tokens)
            .flat_map(|t| {
                (0..vocab).map(move |v| (0..hidden).map(|k| h[t * hidden + k] * w[v * hidden + k]).sum::<f32>())
            })
            .collect();
        let (loss, g) = crate::cpu::cross_entropy_with_grad(&logits, &[1, 0], tokens, vocab, &opts, &[1.0]).unwrap();
        assert_eq!(fused.loss, loss);
        for t in 0..tokens {
            for k in 0..hidden {
                let dh: f32 = (0..vocab).map(|v| g[t * vocab + v] * w[v * hidden + k]).sum();
                assert!((fused.grad_hidden[t * hidden + k] - dh).abs() <= 1e-6, "dh[{t}, {k}]");
            }
        }
        for v in 0..vocab {
            for k in 0..hidden {
                let dw: f32 = (0..tokens).map(|t| g[t * vocab + v] * h[t * hidden + k]).sum();
                assert!((fused.grad_weight[v * hidden + k] - dw).abs() <= 1e-6, "dW[{v}, {k}]");
            }
        }
        assert_eq!(fused.grad_bias, None);
    }
}
