//! Property tests: random shapes (classes 1..5000, rows 1..300; elementwise lengths
//! 1..3000), options and values (±1e4, -inf, NaN, denormals, ties) through the GPU ops
//! against their CPU twins with the per-element tolerances of the harness and of
//! `elementwise`. Failures shrink to a minimal case. `PROPTEST_CASES` sets the case count
//! (default 12, to keep CI fast; raise it for long runs).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use wgpu_loss::{BceOptions, CrossEntropyOptions, EmptyPolicy, KlDivOptions, KlDivReduction, Reduction, cpu};

use crate::elementwise::{Call, Case, tolerances};
use crate::harness::{self, CeCase, Expect, Got, Shape, gpu, trials};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(once: [
        cross_entropy_matches_cpu,
        log_softmax_softmax_and_nll_match_cpu,
        backward_ops_match_cpu,
        elementwise_losses_match_cpu,
    ])
}

/// Runs `test` on `PROPTEST_CASES` (default 12) values of `strategy`, shrinking a failure.
fn run<S: Strategy>(strategy: S, test: impl Fn(S::Value)) {
    let cases = std::env::var("PROPTEST_CASES").ok().and_then(|v| v.parse().ok()).unwrap_or(12);
    let mut runner = TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() });
    if let Err(e) = runner.run(&strategy, |value| {
        test(value);
        Ok(())
    }) {
        panic!("{e}");
    }
}

/// A logit: mostly ordinary, sometimes one of the values that break naive kernels.
fn logit() -> impl Strategy<Value = f32> {
    prop_oneof![
        8 => -30.0f32..30.0,
        1 => prop_oneof![Just(1e4f32), Just(-1e4), Just(0.0), Just(1.0), Just(1e-40), Just(-1e-39)],
        1 => prop_oneof![Just(f32::NEG_INFINITY), Just(f32::NAN)],
    ]
}

type Batch = (usize, usize, Vec<f32>, Vec<i32>);

fn batch() -> impl Strategy<Value = Batch> {
    (1usize..300, 1usize..5000).prop_filter("keep batches small", |(r, c)| r * c <= 200_000).prop_flat_map(
        |(rows, classes)| {
            let targets = proptest::collection::vec(prop_oneof![9 => 0..classes as i32, 1 => Just(-100)], rows);
            // Ties: sometimes the whole batch is drawn from a handful of values.
            let logits = prop_oneof![
                3 => proptest::collection::vec(logit(), rows * classes),
                1 => proptest::collection::vec(prop_oneof![Just(2.0f32), Just(-1.0)], rows * classes),
            ];
            (Just(rows), Just(classes), logits, targets)
        },
    )
}

fn options() -> impl Strategy<Value = CrossEntropyOptions> {
    (0..3usize, any::<bool>(), prop_oneof![Just(0.0f32), 0.0f32..=1.0], any::<bool>()).prop_map(
        |(reduction, weighted, eps, zero)| {
            let mut o = CrossEntropyOptions::default();
            o.reduction = [Reduction::None, Reduction::Sum, Reduction::Mean][reduction];
            o.label_smoothing = eps;
            o.weight = weighted.then(|| (0..5000).map(|c| 0.5 + (c % 5) as f32 * 0.25).collect());
            o.empty = if zero { EmptyPolicy::Zero } else { EmptyPolicy::Nan };
            o
        },
    )
}

fn cross_entropy_matches_cpu() {
    run((batch(), options(), 0.25f32..2.0), |((rows, classes, x, t), mut opts, g)| {
        opts.weight = opts.weight.map(|w| w[..classes].to_vec());
        let g = vec![g; if opts.reduction == Reduction::None { rows } else { 1 }];
        let (loss, grad) = gpu().cross_entropy_with_grad(&x, &t, rows, classes, &opts, &g).unwrap();
        let case = CeCase::index(Shape::rows(rows, classes), x, t, opts, g);
        case.expect.check("property", Got::outputs(Some(&loss), Some(&grad)));
    });
}

fn log_softmax_softmax_and_nll_match_cpu() {
    run((batch(), options()), |((rows, classes, x, t), mut opts)| {
        opts.weight = opts.weight.map(|w| w[..classes].to_vec());
        let shape = Shape::rows(rows, classes);
        let lp = gpu().log_softmax(&x, rows, classes).unwrap();
        harness::checks::log_softmax(&x, shape).check("log_softmax property", &lp);
        let p = gpu().softmax(&x, rows, classes).unwrap();
        harness::checks::softmax(&x, shape).check("softmax property", &p);
        let want_lp = cpu::log_softmax(&x, rows, classes).unwrap();
        let loss = gpu().nll_loss(&want_lp, &t, rows, classes, &opts).unwrap();
        harness::checks::nll(&want_lp, &t, shape, &opts, &[]).0.check("nll_loss property", &loss);
    });
}

/// The backward kernels (log-softmax, softmax, NLL) on random shapes and values.
fn backward_ops_match_cpu() {
    run((batch(), options(), 0.25f32..2.0), |((rows, classes, x, t), mut opts, g)| {
        opts.weight = opts.weight.map(|w| w[..classes].to_vec());
        let shape = Shape::rows(rows, classes);
        let dy: Vec<f32> = x.iter().map(|v| if v.is_finite() { (v * 0.37).sin() } else { 0.5 }).collect();
        let lp = cpu::log_softmax(&x, rows, classes).unwrap();
        let p = cpu::softmax(&x, rows, classes).unwrap();
        let got = gpu().log_softmax_backward(&lp, &dy, rows, classes).unwrap();
        harness::checks::log_softmax_backward(&lp, &dy, shape).check("log_softmax_backward property", &got);
        let got = gpu().softmax_backward(&p, &dy, rows, classes).unwrap();
        harness::checks::softmax_backward(&p, &dy, shape).check("softmax_backward property", &got);
        let g = vec![g; if opts.reduction == Reduction::None { rows } else { 1 }];
        let got = gpu().nll_loss_grad(&t, rows, classes, &opts, &g).unwrap();
        harness::checks::nll(&lp, &t, shape, &opts, &g).1.check("nll_loss_grad property", &got);
    });
}

/// Every elementwise loss on random lengths and values (±100 logits, ±1e4, NaN, ties, exact
/// probabilities 0 and 1), every reduction, against its CPU twin within the per-element
/// tolerances of `elementwise`.
fn elementwise_losses_match_cpu() {
    let value = prop_oneof![4 => -5.0f32..5.0, 1 => Just(0.0f32), 1 => Just(1.0f32)];
    let strategy = (
        proptest::collection::vec((logit(), value), 1..3000),
        0..3usize,
        prop_oneof![Just(0.0f32), 0.1f32..3.0],
        any::<bool>(),
    );
    run(strategy, |(values, reduction, beta, log_target)| {
        let n = values.len();
        let (x, y): (Vec<f32>, Vec<f32>) = values.into_iter().unzip();
        let reduction = [Reduction::None, Reduction::Sum, Reduction::Mean][reduction];
        let mut bce = BceOptions::default();
        bce.reduction = reduction;
        let mut kl = KlDivOptions::default();
        kl.reduction = [KlDivReduction::None, KlDivReduction::Sum, KlDivReduction::BatchMean][reduction as usize % 3];
        kl.log_target = log_target;
        let probs: Vec<f32> = y.iter().map(|v| v.clamp(0.0, 1.0)).collect();
        // BCE takes probabilities in [0, 1] (a NaN one is an `Err`).
        let squashed: Vec<f32> = x.iter().map(|v| if v.is_nan() { 0.5 } else { 1.0 / (1.0 + (-v).exp()) }).collect();
        let log_probs: Vec<f32> = x.iter().map(|v| -(v.abs())).collect();
        let kl_target: Vec<f32> = if log_target { log_probs.iter().rev().copied().collect() } else { probs.clone() };
        let cases: [(Case, &[f32], &[f32]); 8] = [
            (Case::Mse(reduction), &x, &y),
            (Case::L1(reduction), &x, &y),
            (Case::Rmse, &x, &y),
            (Case::SmoothL1(reduction, beta), &x, &y),
            (Case::Huber(reduction, beta.max(0.5)), &x, &y),
            (Case::BceWithLogits(bce.clone()), &x, &probs),
            (Case::Bce(bce.clone()), &squashed, &probs),
            (Case::KlDiv(1, kl), &log_probs, &kl_target),
        ];
        for (case, input, target) in cases {
            let g = vec![0.75; if case.reduction(n).0 { n } else { 1 }];
            let (got_loss, got_grad) = case.run(Some(gpu()), Call::Both, input, target, &g).unwrap();
            let (want_loss, want_grad) = case.run(None, Call::Both, input, target, &g).unwrap();
            let (loss_tol, grad_tol) = tolerances(&case, input, target, &g);
            let what = format!("{case:?} n={n}");
            Expect::new(want_loss, loss_tol).check(&format!("elementwise loss property {what}"), &got_loss);
            Expect::new(want_grad, grad_tol).check(&format!("elementwise grad property {what}"), &got_grad);
        }
    });
}
