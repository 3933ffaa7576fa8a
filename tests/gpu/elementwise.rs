//! The elementwise losses (MSE, L1, RMSE, smooth L1, Huber, BCE, BCE with logits, KL) and
//! their gradients: GPU against the f64 CPU twins over sizes around the workgroup (256) and
//! the partial-sum fold, every option, adversarial values, and the encode API.
//!
//! Tolerances, and why they hold. Each element's f32 formula adds or multiplies a few terms,
//! each correctly rounded or a transcendental good to a few ulps; so its error is bounded by
//! a small multiple of f32's epsilon times the *magnitude of its terms* `m` (the sum of their
//! absolute values: `|loss|` itself where no cancellation can occur, the explicit terms for
//! BCE with logits, `(1 - y)·x + a·softplus(-x)` cancels for negative logits, and for KL,
//! `xlogy(t, t) - t·q` cancels where t ≈ exp(q)).
//! * element (loss or gradient): `32·ε·m`, plus 1e-30 for results that a device may flush
//!   from denormals to 0;
//! * reduced loss: `64·ε·Σm / divisor`: the per-element errors plus at most ~26 levels of
//!   f32 additions (8 in an invocation, 8 in a workgroup's tree, ≤ 2 folding partials here,
//!   8 in the final tree), each off by ε/2 of a partial sum ≤ Σm;
//! * RMSE `r = sqrt(mean)`: that of the mean divided by `2r`, plus 4 ulps of `r`.
//!
//! Non-finite results must match exactly (NaN ↔ NaN, ±inf ↔ ±inf).

use crate::harness::{Arena, Expect, Rng, download, gpu, upload};
use wgpu_loss::{BceOptions, ElementwiseBuffers, Error, Gpu, KlDivOptions, KlDivReduction, Reduction, Workspace, cpu};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    crate::harness::trials!(once: [matches_cpu_on_every_size_and_option, saturated_bce_is_exact, non_finite_values_match_the_cpu, reductions_are_deterministic, gpu_and_cpu_refuse_the_same_inputs, encode_at_offsets_matches_cpu, encode_refuses_bad_buffers, encode_bce_out_of_domain_gives_nan_elements, chunked_batches_give_the_unchunked_bits, batch_larger_than_a_binding])
}

const EPS: f64 = f32::EPSILON as f64;
const ELEMENT_TOL: f64 = 32.0 * EPS;
const SUM_TOL: f64 = 64.0 * EPS;
const FLUSHED: f64 = 1e-30;

/// One loss with its options.
#[derive(Debug, Clone)]
pub enum Case {
    Mse(Reduction),
    L1(Reduction),
    Rmse,
    SmoothL1(Reduction, f32),
    Huber(Reduction, f32),
    Bce(BceOptions),
    BceWithLogits(BceOptions),
    KlDiv(usize, KlDivOptions),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Call {
    Loss,
    Grad,
    Both,
}

/// Calls `$loss` / `$grad` / `$with_grad` on the GPU (`Some(gpu)`) or the CPU twin (`None`).
macro_rules! call {
    ($gpu:expr, $call:expr, ($x:expr, $y:expr, $n:expr, $g:expr), $loss:ident, $grad:ident, $with_grad:ident($($arg:expr),*)) => {
        match ($gpu, $call) {
            (Some(gpu), Call::Loss) => gpu.$loss($x, $y, $n $(, $arg)*).map(|l| (l, Vec::new())),
            (Some(gpu), Call::Grad) => gpu.$grad($x, $y, $n $(, $arg)*, $g).map(|g| (Vec::new(), g)),
            (Some(gpu), Call::Both) => gpu.$with_grad($x, $y, $n $(, $arg)*, $g),
            (None, Call::Loss) => cpu::$loss($x, $y, $n $(, $arg)*).map(|l| (l, Vec::new())),
            (None, Call::Grad) => cpu::$grad($x, $y, $n $(, $arg)*, $g).map(|g| (Vec::new(), g)),
            (None, Call::Both) => cpu::$with_grad($x, $y, $n $(, $arg)*, $g),
        }
    };
}

impl Case {
    pub fn run(
        &self, gpu: Option<&Gpu>, call: Call, x: &[f32], y: &[f32], g: &[f32],
    ) -> wgpu_loss::Result<(Vec<f32>, Vec<f32>)> {
        let n = x.len();
        match self {
            Case::Mse(r) => call!(gpu, call, (x, y, n, g), mse_loss, mse_loss_grad, mse_loss_with_grad(*r)),
            Case::L1(r) => call!(gpu, call, (x, y, n, g), l1_loss, l1_loss_grad, l1_loss_with_grad(*r)),
            Case::Rmse => call!(gpu, call, (x, y, n, g), rmse_loss, rmse_loss_grad, rmse_loss_with_grad()),
            Case::SmoothL1(r, beta) => {
                call!(gpu, call, (x, y, n, g), smooth_l1_loss, smooth_l1_loss_grad, smooth_l1_loss_with_grad(*r, *beta))
            }
            Case::Huber(r, delta) => {
                call!(gpu, call, (x, y, n, g), huber_loss, huber_loss_grad, huber_loss_with_grad(*r, *delta))
            }
            Case::Bce(o) => call!(
                gpu,
                call,
                (x, y, n, g),
                binary_cross_entropy,
                binary_cross_entropy_grad,
                binary_cross_entropy_with_grad(o)
            ),
            Case::BceWithLogits(o) => call!(
                gpu,
                call,
                (x, y, n, g),
                binary_cross_entropy_with_logits,
                binary_cross_entropy_with_logits_grad,
                binary_cross_entropy_with_logits_with_grad(o)
            ),
            Case::KlDiv(rows, o) => call!(gpu, call, (x, y, n, g), kl_div, kl_div_grad, kl_div_with_grad(*rows, o)),
        }
    }

    /// Records the loss with the encode API.
    fn encode(
        &self, gpu: &Gpu, encoder: &mut wgpu::CommandEncoder, ws: &mut Workspace, buffers: &ElementwiseBuffers<'_>,
        n: usize,
    ) -> wgpu_loss::Result<()> {
        match self {
            Case::Mse(r) => gpu.encode_mse_loss(encoder, ws, buffers, n, *r),
            Case::L1(r) => gpu.encode_l1_loss(encoder, ws, buffers, n, *r),
            Case::Rmse => gpu.encode_rmse_loss(encoder, ws, buffers, n),
            Case::SmoothL1(r, b) => gpu.encode_smooth_l1_loss(encoder, ws, buffers, n, *r, *b),
            Case::Huber(r, d) => gpu.encode_huber_loss(encoder, ws, buffers, n, *r, *d),
            Case::Bce(o) => gpu.encode_binary_cross_entropy(encoder, ws, buffers, n, o),
            Case::BceWithLogits(o) => gpu.encode_binary_cross_entropy_with_logits(encoder, ws, buffers, n, o),
            Case::KlDiv(rows, o) => gpu.encode_kl_div(encoder, ws, buffers, n, *rows, o),
        }
    }

    /// Reduction none, or `None` for RMSE (always reduced); the divisor of a mean.
    pub fn reduction(&self, n: usize) -> (bool, f64) {
        let plain = |r: &Reduction| (*r == Reduction::None, if *r == Reduction::Mean { n as f64 } else { 1.0 });
        match self {
            Case::Mse(r) | Case::L1(r) | Case::SmoothL1(r, _) | Case::Huber(r, _) => plain(r),
            Case::Bce(o) | Case::BceWithLogits(o) => plain(&o.reduction),
            Case::Rmse => (false, n as f64),
            Case::KlDiv(rows, o) => match o.reduction {
                KlDivReduction::None => (true, 1.0),
                KlDivReduction::Sum => (false, 1.0),
                KlDivReduction::Mean => (false, n as f64),
                KlDivReduction::BatchMean => (false, *rows as f64),
            },
        }
    }

    /// The same loss unreduced (RMSE: MSE), for per-element magnitudes.
    fn unreduced(&self) -> Case {
        match self.clone() {
            Case::Mse(_) | Case::Rmse => Case::Mse(Reduction::None),
            Case::L1(_) => Case::L1(Reduction::None),
            Case::SmoothL1(_, b) => Case::SmoothL1(Reduction::None, b),
            Case::Huber(_, d) => Case::Huber(Reduction::None, d),
            Case::Bce(mut o) => {
                o.reduction = Reduction::None;
                Case::Bce(o)
            }
            Case::BceWithLogits(mut o) => {
                o.reduction = Reduction::None;
                Case::BceWithLogits(o)
            }
            Case::KlDiv(rows, mut o) => {
                o.reduction = KlDivReduction::None;
                Case::KlDiv(rows, o)
            }
        }
    }

    /// Per element, the magnitude of the terms of the loss and of the slope (per unit of
    /// upstream gradient): what the rounding of the f32 formula is relative to.
    fn magnitudes(&self, x: &[f32], y: &[f32]) -> (Vec<f64>, Vec<f64>) {
        let n = x.len();
        let (loss, slope) = self.unreduced().run(None, Call::Both, x, y, &vec![1.0; n]).unwrap();
        let mut m_loss: Vec<f64> = loss.iter().map(|l| f64::from(l.abs())).collect();
        let m_slope: Vec<f64> = slope.iter().map(|s| f64::from(s.abs())).collect();
        match self {
            Case::BceWithLogits(o) => {
                let sigmoid = |v: f64| 1.0 / (1.0 + (-v).exp());
                let mut m_slope = m_slope;
                for i in 0..n {
                    let (x, y) = (f64::from(x[i]), f64::from(y[i]));
                    let w = o.weight.as_ref().map_or(1.0, |w| f64::from(w[i]).abs());
                    let pw = o.pos_weight.as_ref().map_or(1.0, |p| f64::from(p[i % p.len()]));
                    let a = 1.0 + (pw - 1.0) * y;
                    let softplus = (-x).max(0.0) + (-x.abs()).exp().ln_1p();
                    m_loss[i] = w * ((1.0 - y).abs() * x.abs() + a.abs() * softplus);
                    m_slope[i] = w * ((1.0 - y).abs() * sigmoid(x) + (pw * y).abs() * sigmoid(-x));
                }
                (m_loss, m_slope)
            }
            Case::KlDiv(_, o) if !o.log_target => {
                for i in 0..n {
                    let (q, t) = (f64::from(x[i]), f64::from(y[i]));
                    let xlogy = if t == 0.0 { 0.0 } else { t * t.ln() };
                    m_loss[i] = xlogy.abs() + (t * q).abs();
                }
                (m_loss, m_slope)
            }
            _ => (m_loss, m_slope),
        }
    }
}

/// The tolerances of `case`'s outputs on `x`, `y` with upstream `g`: per element
/// `32·ε·m` of the loss's (or slope's) term magnitude `m`, times the upstream factor; a
/// reduced loss `64·ε·Σm / divisor`; RMSE's relative to its value.
pub fn tolerances(case: &Case, x: &[f32], y: &[f32], g: &[f32]) -> (Vec<f64>, Vec<f64>) {
    let n = x.len();
    let (unreduced, divisor) = case.reduction(n);
    let (m_loss, m_slope) = case.magnitudes(x, y);
    // RMSE's value, which its tolerances and upstream factor are relative to.
    let rmse = match case {
        Case::Rmse => f64::from(case.run(None, Call::Loss, x, y, g).unwrap().0[0]),
        _ => 0.0,
    };
    let loss = if unreduced {
        m_loss.iter().map(|m| ELEMENT_TOL * m + FLUSHED).collect()
    } else {
        let mean = SUM_TOL * m_loss.iter().sum::<f64>() / divisor + FLUSHED;
        match case {
            Case::Rmse => vec![mean / (2.0 * rmse) + 4.0 * EPS * rmse],
            _ => vec![mean],
        }
    };
    let upstream = |i: usize| -> f64 {
        match case {
            _ if unreduced => f64::from(g[i]).abs(),
            Case::Rmse => f64::from(g[0]).abs() / divisor / (2.0 * rmse),
            _ => f64::from(g[0]).abs() / divisor,
        }
    };
    let grad = (0..n).map(|i| ELEMENT_TOL * m_slope[i] * upstream(i) + FLUSHED).collect();
    (loss, grad)
}

/// The CPU twin's loss and gradient of `case`, with their tolerances.
fn expect(case: &Case, x: &[f32], y: &[f32], g: &[f32]) -> (Expect, Expect) {
    let (loss, grad) = case.run(None, Call::Both, x, y, g).unwrap();
    let (loss_tol, grad_tol) = tolerances(case, x, y, g);
    (Expect::new(loss, loss_tol), Expect::new(grad, grad_tol))
}

/// Runs `case` with `call` on the GPU and the CPU and compares with the tolerances above.
fn check(case: &Case, call: Call, x: &[f32], y: &[f32], g: &[f32]) {
    let n = x.len();
    let what = format!("{case:?} {call:?} n={n}");
    let (gpu_loss, gpu_grad) = case.run(Some(gpu()), call, x, y, g).unwrap_or_else(|e| panic!("{what}: {e}"));
    let (loss, grad) = expect(case, x, y, g);
    if call != Call::Grad {
        loss.check(&format!("elementwise loss {what}"), &gpu_loss);
    }
    if call != Call::Loss {
        grad.check(&format!("elementwise grad {what}"), &gpu_grad);
    }
}

/// A divisor of `n` to use as pos_weight's length or KL's rows: the smallest in 2..=64, else
/// `n` itself for small primes, else 1.
fn small_divisor(n: usize) -> usize {
    (2..=64).find(|&d| n.is_multiple_of(d)).unwrap_or(if n <= 1000 { n } else { 1 })
}

/// Every loss with a pairwise covering of its options, and inputs in its domain with the
/// special values mixed in (x == y, probabilities 0 and 1, exact targets 0 and 1, logits
/// ±100, KL targets 0).
fn cases(rng: &mut Rng, n: usize) -> Vec<(Case, Vec<f32>, Vec<f32>)> {
    let c = small_divisor(n);
    let weight: Vec<f32> = (0..n).map(|_| rng.uniform(0.0, 2.0)).collect();
    let pos_weight: Vec<f32> = (0..c).map(|_| rng.uniform(0.25, 4.0)).collect();
    let bce = |reduction, w: bool, pw: bool| {
        let mut o = BceOptions::default();
        o.reduction = reduction;
        o.weight = w.then(|| weight.clone());
        o.pos_weight = pw.then(|| pos_weight.clone());
        o
    };
    let kl = |reduction, log_target| {
        let mut o = KlDivOptions::default();
        o.reduction = reduction;
        o.log_target = log_target;
        Case::KlDiv(n / c, o)
    };
    let (none, sum, mean) = (Reduction::None, Reduction::Sum, Reduction::Mean);
    let regression = [
        Case::Mse(none),
        Case::Mse(sum),
        Case::Mse(mean),
        Case::L1(none),
        Case::L1(sum),
        Case::L1(mean),
        Case::Rmse,
        Case::SmoothL1(none, 1.0),
        Case::SmoothL1(sum, 0.0),
        Case::SmoothL1(mean, 0.5),
        Case::SmoothL1(none, 2.0),
        Case::Huber(none, 1.0),
        Case::Huber(mean, 0.5),
        Case::Huber(sum, 2.5),
    ];
    let mut all = Vec::new();
    for case in regression {
        let x = rng.logits(n, 4.0);
        let y = (0..n).map(|i| if i % 17 == 3 { x[i] } else { rng.uniform(-4.0, 4.0) }).collect();
        all.push((case, x, y));
    }
    for o in [bce(none, false, false), bce(sum, true, false), bce(mean, true, false)] {
        let p = (0..n).map(|i| [0.0, 1.0].get(i % 101).copied().unwrap_or_else(|| rng.uniform(0.0, 1.0))).collect();
        let y = (0..n).map(|i| [0.0, 1.0].get(i % 5).copied().unwrap_or_else(|| rng.uniform(0.0, 1.0))).collect();
        all.push((Case::Bce(o), p, y));
    }
    for o in [
        bce(mean, true, true),
        bce(none, true, true),
        bce(sum, false, false),
        bce(mean, false, true),
        bce(none, true, false),
    ] {
        let x =
            (0..n).map(|i| [100.0, -100.0].get(i % 97).copied().unwrap_or_else(|| rng.uniform(-10.0, 10.0))).collect();
        let y = (0..n).map(|i| [0.0, 1.0].get(i % 5).copied().unwrap_or_else(|| rng.uniform(0.0, 1.0))).collect();
        all.push((Case::BceWithLogits(o), x, y));
    }
    let kl_cases = [
        (KlDivReduction::None, false),
        (KlDivReduction::Sum, true),
        (KlDivReduction::Mean, false),
        (KlDivReduction::BatchMean, true),
        (KlDivReduction::BatchMean, false),
        (KlDivReduction::None, true),
    ];
    for (reduction, log_target) in kl_cases {
        let q = (0..n).map(|_| rng.uniform(-8.0, 0.0)).collect();
        let t = if log_target {
            (0..n).map(|_| rng.uniform(-8.0, 0.5)).collect()
        } else {
            (0..n).map(|i| if i % 7 == 2 { 0.0 } else { rng.uniform(0.0, 1.0) }).collect()
        };
        all.push((kl(reduction, log_target), q, t));
    }
    all
}

fn grad_output(rng: &mut Rng, case: &Case, n: usize) -> Vec<f32> {
    if case.reduction(n).0 { (0..n).map(|_| rng.uniform(-2.0, 2.0)).collect() } else { vec![rng.uniform(0.5, 2.0)] }
}

/// Every loss and option on sizes around the workgroup (256) and the tile (2048 elements,
/// one partial sum each) with the fused kernel, the loss-only and gradient-only kernels up to
/// one element past the first tile; then each loss's mean on a large odd batch whose 489
/// partials the final pass folds two to an invocation.
fn matches_cpu_on_every_size_and_option() {
    let mut rng = Rng::new(21);
    for n in [1, 7, 255, 256, 257, 1000, 2049, 65537] {
        for (case, x, y) in cases(&mut rng, n) {
            let g = grad_output(&mut rng, &case, n);
            check(&case, Call::Both, &x, &y, &g);
            if n <= 2049 {
                check(&case, Call::Loss, &x, &y, &g);
                check(&case, Call::Grad, &x, &y, &g);
            }
        }
    }
    let n = 1_000_003;
    let mut seen = Vec::new();
    for (case, x, y) in cases(&mut rng, n) {
        // One mean (a divided reduction) of each loss: its divisor and the fold of the
        // 489 partials both count.
        let kind = std::mem::discriminant(&case);
        if case.reduction(n).1 <= 1.0 || seen.contains(&kind) {
            continue;
        }
        seen.push(kind);
        let g = grad_output(&mut rng, &case, n);
        check(&case, Call::Both, &x, &y, &g);
    }
    assert_eq!(seen.len(), 8);
}

/// Logits ±100 (and ±1e30) give exact losses and gradients; probabilities 0 and 1 give the
/// clamped -100 logs and the 1e-12-floored gradient.
fn saturated_bce_is_exact() {
    let mut none = BceOptions::default();
    none.reduction = Reduction::None;
    let x = [100.0, 100.0, -100.0, -100.0, 1e30, -1e30];
    let y = [0.0, 1.0, 0.0, 1.0, 0.0, 0.0];
    let (loss, grad) = gpu().binary_cross_entropy_with_logits_with_grad(&x, &y, 6, &none, &[1.0; 6]).unwrap();
    let tiny = |v: f32| v.abs() < 1e-40;
    assert_eq!([loss[0], loss[3], loss[4], loss[5]], [100.0, 100.0, 1e30, 0.0], "{loss:?}");
    assert!(tiny(loss[1]) && tiny(loss[2]), "{loss:?}"); // e^-100 ≈ 3.7e-44 (or flushed)
    assert_eq!([grad[0], grad[3], grad[4], grad[5]], [1.0, -1.0, 1.0, 0.0], "{grad:?}");
    assert!(tiny(grad[1]) && tiny(grad[2]), "{grad:?}");

    let (loss, grad) = gpu()
        .binary_cross_entropy_with_grad(&[0.0, 0.0, 1.0, 1.0], &[0.0, 1.0, 0.0, 1.0], 4, &none, &[1.0; 4])
        .unwrap();
    assert_eq!(loss, [0.0, 100.0, 100.0, 0.0]);
    assert_eq!([grad[0], grad[3]], [0.0, 0.0]);
    assert!(
        (grad[1] + 1e12).abs() <= 1e12 * 4.0 * f32::EPSILON && (grad[2] - 1e12).abs() <= 1e12 * 4.0 * f32::EPSILON,
        "{grad:?}"
    );
}

/// NaN and infinities in the data, differences whose squares overflow, KL's zero targets
/// with -inf log-probabilities: GPU and CPU agree on every non-finite value exactly.
fn non_finite_values_match_the_cpu() {
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let x = [nan, 1.0, inf, -inf, 2e19, 1e30, 3.0, inf, 0.5, -2.0];
    let y = [0.0, nan, 1.0, 0.0, -2e19, -1e30, 3.0, inf, 0.25, -2.0];
    let n = x.len();
    let g: Vec<f32> = (0..n).map(|i| 0.5 + i as f32 * 0.25).collect();
    for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
        let gr = if reduction == Reduction::None { g.clone() } else { vec![1.5] };
        for case in [
            Case::Mse(reduction),
            Case::L1(reduction),
            Case::SmoothL1(reduction, 1.0),
            Case::SmoothL1(reduction, 0.0),
            Case::Huber(reduction, 1.0),
        ] {
            check(&case, Call::Both, &x, &y, &gr);
        }
        let mut o = BceOptions::default();
        o.reduction = reduction;
        check(&Case::BceWithLogits(o), Call::Both, &x, &[0.0, 0.5, 1.0, 0.0, 1.0, 0.0, 0.25, 1.0, nan, 0.0], &gr);
    }
    // RMSE's sum overflows only through an infinite element here: f64 would not overflow
    // where f32 (and PyTorch's f32 mse_loss) does.
    check(&Case::Rmse, Call::Both, &[inf, 1.0, 3.0], &[1.0, 1.0, 3.0], &[1.0]);
    // A perfect fit: RMSE 0 with a NaN gradient, as PyTorch's autograd through sqrt.
    let (loss, grad) = gpu().rmse_loss_with_grad(&[1.0, 2.0], &[1.0, 2.0], 2, &[1.0]).unwrap();
    assert_eq!(loss, [0.0]);
    assert!(grad.iter().all(|v| v.is_nan()), "{grad:?}");

    let q = [-1.0, f32::NEG_INFINITY, -2.0, nan, -0.5, -3.0];
    let t = [0.0, 0.0, 0.5, 0.5, nan, -0.1];
    for log_target in [false, true] {
        for reduction in [KlDivReduction::None, KlDivReduction::Sum, KlDivReduction::BatchMean] {
            let mut o = KlDivOptions::default();
            o.reduction = reduction;
            o.log_target = log_target;
            let gr = if reduction == KlDivReduction::None { vec![1.0; 6] } else { vec![1.0] };
            check(&Case::KlDiv(3, o), Call::Both, &q, &t, &gr);
        }
    }
    let mut none = KlDivOptions::default();
    none.reduction = KlDivReduction::None;
    let (loss, _) = gpu().kl_div_with_grad(&q, &t, 6, 3, &none, &[1.0; 6]).unwrap();
    assert_eq!(loss[0], 0.0); // t = 0 contributes 0
    assert!(loss[1].is_nan() && loss[5].is_nan(), "{loss:?}"); // 0·(-inf); log of a negative
}

/// The same reduction twice over a million elements gives the same bits.
fn reductions_are_deterministic() {
    let mut rng = Rng::new(22);
    let n = 1_000_003;
    let x = rng.logits(n, 3.0);
    let y = rng.logits(n, 3.0);
    let first = gpu().mse_loss_with_grad(&x, &y, n, Reduction::Sum, &[1.0]).unwrap();
    let second = gpu().mse_loss_with_grad(&x, &y, n, Reduction::Sum, &[1.0]).unwrap();
    assert_eq!(first.0[0].to_bits(), second.0[0].to_bits());
    assert_eq!(gpu().mse_loss(&x, &y, n, Reduction::Sum).unwrap()[0].to_bits(), first.0[0].to_bits());
}

/// What is wrong, the loss, input, target, grad_output.
type BadCall<'a> = (&'a str, Case, &'a [f32], &'a [f32], &'a [f32]);

/// Every slice-API function returns its CPU twin's `Err`, which names the argument.
fn gpu_and_cpu_refuse_the_same_inputs() {
    let x = [0.5f32; 6];
    let mut weight3 = BceOptions::default();
    weight3.weight = Some(vec![1.0; 3]);
    let mut nan_weight = BceOptions::default();
    nan_weight.weight = Some(vec![1.0, f32::NAN, 1.0, 1.0, 1.0, 1.0]);
    let mut pw4 = BceOptions::default();
    pw4.pos_weight = Some(vec![1.0; 4]);
    let mut pw_empty = BceOptions::default();
    pw_empty.pos_weight = Some(Vec::new());
    let kl = KlDivOptions::default();
    let bad: Vec<BadCall> = vec![
        ("empty", Case::Mse(Reduction::Mean), &[], &[], &[1.0]),
        ("short input", Case::L1(Reduction::Sum), &x[..5], &x, &[1.0]),
        ("short target", Case::Rmse, &x, &x[..5], &[1.0]),
        ("grad_output per element for mean", Case::Mse(Reduction::Mean), &x, &x, &x),
        ("one grad_output for none", Case::Mse(Reduction::None), &x, &x, &[1.0]),
        ("negative beta", Case::SmoothL1(Reduction::Mean, -0.5), &x, &x, &[1.0]),
        ("NaN beta", Case::SmoothL1(Reduction::Mean, f32::NAN), &x, &x, &[1.0]),
        ("delta 0", Case::Huber(Reduction::Mean, 0.0), &x, &x, &[1.0]),
        ("negative delta", Case::Huber(Reduction::Mean, -1.0), &x, &x, &[1.0]),
        ("weight of 3", Case::BceWithLogits(weight3.clone()), &x, &x, &[1.0]),
        ("NaN weight", Case::Bce(nan_weight), &x, &x, &[1.0]),
        ("pos_weight not dividing", Case::BceWithLogits(pw4.clone()), &x, &x, &[1.0]),
        ("empty pos_weight", Case::BceWithLogits(pw_empty), &x, &x, &[1.0]),
        ("pos_weight without logits", Case::Bce(pw4), &x, &x, &[1.0]),
        ("probability 1.5", Case::Bce(BceOptions::default()), &[0.5, 1.5], &[0.0, 1.0], &[1.0]),
        ("NaN probability", Case::Bce(BceOptions::default()), &[0.5, f32::NAN], &[0.0, 1.0], &[1.0]),
        ("target -0.5", Case::Bce(BceOptions::default()), &[0.5, 0.5], &[0.0, -0.5], &[1.0]),
        ("rows not dividing", Case::KlDiv(4, kl), &x, &x, &[1.0]),
        ("rows 0", Case::KlDiv(0, kl), &x, &x, &[1.0]),
    ];
    for (what, case, x, y, g) in bad {
        let want = case.run(None, Call::Both, x, y, g).unwrap_err();
        for call in [Call::Both, Call::Grad] {
            assert_eq!(case.run(Some(gpu()), call, x, y, g).unwrap_err(), want, "{what} {call:?}");
        }
        assert_eq!(
            case.run(Some(gpu()), Call::Loss, x, y, g).err(),
            case.run(None, Call::Loss, x, y, g).err(),
            "{what}"
        );
        assert!(matches!(want, Error::InvalidArgument { .. } | Error::LengthMismatch { .. }), "{what}: {want:?}");
    }
    let message = gpu().smooth_l1_loss(&x, &x, 6, Reduction::Mean, -0.5).unwrap_err().to_string();
    assert!(message.contains("beta") && message.contains("-0.5"), "{message}");
    // Allowed edge values: beta 0 (L1), probabilities 0 and 1.
    assert!(gpu().smooth_l1_loss(&x, &x, 6, Reduction::Mean, 0.0).is_ok());
    assert!(gpu().binary_cross_entropy(&[0.0, 1.0], &[1.0, 0.0], 2, &BceOptions::default()).is_ok());
}

/// The encode API of every loss, at 4-byte (never 16-byte) aligned offsets inside arenas
/// whose other words must survive, with a grad_output buffer: results match the CPU. RMSE's
/// gradient alone goes through the workspace's scratch loss.
fn encode_at_offsets_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(23);
    let n = 1234;
    let mut ws = Workspace::new(gpu);
    for (case, x, y) in cases(&mut rng, n) {
        let g = grad_output(&mut rng, &case, n);
        let (mut ins, mut outs) = (Arena::new(), Arena::new());
        let (x_at, y_at, g_at) = (ins.put(&x), ins.put(&y), ins.put(&g));
        let (loss_at, grad_at) = (outs.output(g.len()), outs.output(n));
        ins.upload(gpu);
        outs.upload(gpu);
        let buffers = ElementwiseBuffers::new(ins.slice(x_at), ins.slice(y_at))
            .grad_output(ins.slice(g_at))
            .loss(outs.slice(loss_at))
            .grad(outs.slice(grad_at));
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        case.encode(gpu, &mut encoder, &mut ws, &buffers, n).unwrap();
        gpu.queue().submit([encoder.finish()]);
        let what = format!("{case:?} at offsets");
        ins.read(gpu, &what);
        let got = outs.read(gpu, &what);
        let (loss, grad) = expect(&case, &x, &y, &g);
        loss.check(&format!("elementwise loss {what}"), &got[0]);
        grad.check(&format!("elementwise grad {what}"), &got[1]);
    }
    let (x, y) = (rng.logits(n, 3.0), rng.logits(n, 3.0));
    let (mut ins, mut outs) = (Arena::new(), Arena::new());
    let (x_at, y_at, grad_at) = (ins.put(&x), ins.put(&y), outs.output(n));
    ins.upload(gpu);
    outs.upload(gpu);
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    let buffers = ElementwiseBuffers::new(ins.slice(x_at), ins.slice(y_at)).grad(outs.slice(grad_at));
    gpu.encode_rmse_loss(&mut encoder, &mut ws, &buffers, n).unwrap();
    gpu.queue().submit([encoder.finish()]);
    let got = outs.read(gpu, "rmse gradient alone");
    expect(&Case::Rmse, &x, &y, &[1.0]).1.check("elementwise grad rmse alone", &got[0]);
}

/// Bad buffers are refused before anything is recorded.
fn encode_refuses_bad_buffers() {
    let gpu = gpu();
    let data = upload(gpu, &[0.5f32; 8]);
    let out = upload(gpu, &[0.0f32; 8]);
    let mut ws = Workspace::new(gpu);
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    let kl = KlDivOptions::default();
    let nothing = ElementwiseBuffers::new(data.slice(..16), data.slice(16..));
    let err = gpu.encode_kl_div(&mut encoder, &mut ws, &nothing, 4, 2, &kl).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { argument: "buffers", .. }), "{err:?}");
    let short = ElementwiseBuffers::new(data.slice(..12), data.slice(16..)).loss(out.slice(..4));
    let err = gpu.encode_kl_div(&mut encoder, &mut ws, &short, 4, 2, &kl).unwrap_err();
    assert_eq!(err, Error::LengthMismatch { argument: "input", expected: 4, actual: 3 });
    let short_grad = ElementwiseBuffers::new(data.slice(..16), data.slice(16..)).grad(out.slice(..8));
    let err = gpu.encode_mse_loss(&mut encoder, &mut ws, &short_grad, 4, Reduction::Sum).unwrap_err();
    assert_eq!(err, Error::LengthMismatch { argument: "grad", expected: 4, actual: 2 });
    let ok = ElementwiseBuffers::new(data.slice(..16), data.slice(16..)).loss(out.slice(..4));
    let err = gpu.encode_huber_loss(&mut encoder, &mut ws, &ok, 4, Reduction::Sum, -1.0).unwrap_err();
    assert!(matches!(err, Error::InvalidArgument { argument: "delta", .. }), "{err:?}");
}

/// On the device, values are not checked: a probability outside [0, 1] or NaN gives that
/// element NaN, as the formula does, and leaves the others exact.
fn encode_bce_out_of_domain_gives_nan_elements() {
    let gpu = gpu();
    let p = [0.25f32, f32::NAN, 1.5, 0.75, -0.5];
    let y = [1.0f32, 1.0, 0.0, 0.0, 1.0];
    let (input, target, loss, grad) =
        (upload(gpu, &p), upload(gpu, &y), upload(gpu, &[0.0f32; 5]), upload(gpu, &[0.0f32; 5]));
    let mut opts = BceOptions::default();
    opts.reduction = Reduction::None;
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    let buffers = ElementwiseBuffers::new(input.slice(..), target.slice(..)).loss(loss.slice(..)).grad(grad.slice(..));
    gpu.encode_binary_cross_entropy(&mut encoder, &mut Workspace::new(gpu), &buffers, 5, &opts).unwrap();
    gpu.queue().submit([encoder.finish()]);
    let (l, g) = (download(gpu, &loss, 0, 5), download(gpu, &grad, 0, 5));
    let (want_l, want_g) =
        cpu::binary_cross_entropy_with_grad(&[p[0], p[3]], &[y[0], y[3]], 2, &opts, &[1.0, 1.0]).unwrap();
    let close = |a: f32, b: f32| (a - b).abs() <= 1e-6 * b.abs().max(1.0);
    assert!(close(l[0], want_l[0]) && close(l[3], want_l[1]), "{l:?}");
    assert!(close(g[0], want_g[0]) && close(g[3], want_g[1]), "{g:?}");
    assert!(l[1].is_nan() && l[2].is_nan() && l[4].is_nan(), "{l:?}");
    assert!(g[1].is_nan(), "{g:?}");
}

/// Batches larger than one binding run in chunks of whole tiles: with bindings capped at
/// 32 KiB (one to four tiles per chunk) every loss, option and call gives the unchunked bits,
/// per-element weights and a pos_weight of length 3 (chunks start on its multiples) included.
fn chunked_batches_give_the_unchunked_bits() {
    let mut opts = wgpu_loss::GpuOptions::default();
    opts.max_binding_size = Some(32 << 10);
    let chunked = Gpu::from_device_with_options(gpu().device().clone(), gpu().queue().clone(), opts);
    let mut rng = Rng::new(23);
    let n = 30_003; // pos_weight and KL rows of length 3
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    for (case, x, y) in cases(&mut rng, n) {
        let g = grad_output(&mut rng, &case, n);
        for call in [Call::Both, Call::Loss, Call::Grad] {
            let whole = case.run(Some(gpu()), call, &x, &y, &g).unwrap();
            let parts = case.run(Some(&chunked), call, &x, &y, &g).unwrap();
            assert_eq!(bits(&parts.0), bits(&whole.0), "loss {case:?} {call:?}");
            assert_eq!(bits(&parts.1), bits(&whole.1), "grad {case:?} {call:?}");
        }
    }
}

/// A real batch past the 128 MiB storage-binding limit of Mesa's drivers (the slice API
/// uploads whole buffers; the kernels bind them in chunks): MSE with its gradient, summed.
fn batch_larger_than_a_binding() {
    let n = (128 << 20) / 4 + 4097;
    let mut rng = Rng::new(24);
    let x = rng.logits(n, 2.0);
    let y = rng.logits(n, 2.0);
    let (loss, grad) = gpu().mse_loss_with_grad(&x, &y, n, Reduction::Sum, &[0.5]).unwrap();
    let (want_loss, want_grad) = cpu::mse_loss_with_grad(&x, &y, n, Reduction::Sum, &[0.5]).unwrap();
    // A sum of n non-negative terms, each to a few ulps: relative 1e-5 of the total.
    assert!((loss[0] - want_loss[0]).abs() <= 1e-5 * want_loss[0], "{} vs {}", loss[0], want_loss[0]);
    // Each slope 2·(x - y)·g is one rounding from the f64 value.
    for i in (0..n).step_by(4099).chain(n - 5..n) {
        assert!((grad[i] - want_grad[i]).abs() <= 1e-6 * want_grad[i].abs().max(1.0), "grad[{i}]");
    }
}
