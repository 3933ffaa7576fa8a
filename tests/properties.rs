//! Property tests: random shapes (classes 1..5000, rows 1..300, lengths 1..3000), options
//! and values (±1e4, -inf, NaN, denormals, ties) through the GPU ops against their CPU
//! twins, with the tolerances of tests/common. Failures shrink to a minimal case. The case count is
//! PROPTEST_CASES (default 12 here, to keep CI fast; raise it for long runs).

mod common;

use common::{assert_close, assert_elementwise, assert_gradient, assert_loss, gpu};
use proptest::prelude::*;
use wgpu_loss::{BceOptions, CrossEntropyOptions, EmptyPolicy, Reduction, cpu};

fn config() -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(12);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
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

fn batch() -> impl Strategy<Value = (usize, usize, Vec<f32>, Vec<i32>)> {
    (1usize..300, 1usize..5000)
        .prop_filter("keep batches small", |(r, c)| r * c <= 200_000)
        .prop_flat_map(|(rows, classes)| {
            let targets = proptest::collection::vec(prop_oneof![9 => 0..classes as i32, 1 => Just(-100)], rows);
            // Ties: sometimes the whole batch is drawn from a handful of values.
            let logits = prop_oneof![
                3 => proptest::collection::vec(logit(), rows * classes),
                1 => proptest::collection::vec(prop_oneof![Just(2.0f32), Just(-1.0)], rows * classes),
            ];
            (Just(rows), Just(classes), logits, targets)
        })
}

fn options() -> impl Strategy<Value = CrossEntropyOptions> {
    (
        0..3usize,
        any::<bool>(),
        prop_oneof![Just(0.0f32), 0.0f32..=1.0],
        any::<bool>(),
    )
        .prop_map(|(reduction, weighted, eps, zero)| {
            let mut o = CrossEntropyOptions::default();
            o.reduction = [Reduction::None, Reduction::Sum, Reduction::Mean][reduction];
            o.label_smoothing = eps;
            o.weight = weighted.then(|| (0..5000).map(|c| 0.5 + (c % 5) as f32 * 0.25).collect());
            o.empty = if zero { EmptyPolicy::Zero } else { EmptyPolicy::Nan };
            o
        })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn cross_entropy_matches_cpu((rows, classes, x, t) in batch(), mut opts in options(), g in 0.25f32..2.0) {
        opts.weight = opts.weight.map(|w| w[..classes].to_vec());
        let g = vec![g; if opts.reduction == Reduction::None { rows } else { 1 }];
        let (loss, grad) = gpu().cross_entropy_with_grad(&x, &t, rows, classes, &opts, &g).unwrap();
        let (want_loss, want_grad) = cpu::cross_entropy_with_grad(&x, &t, rows, classes, &opts, &g).unwrap();
        assert_loss("loss", &loss, &want_loss, &x, rows, &opts);
        assert_gradient("grad", &grad, &want_grad);
    }

    #[test]
    fn log_softmax_softmax_and_nll_match_cpu((rows, classes, x, t) in batch(), mut opts in options()) {
        opts.weight = opts.weight.map(|w| w[..classes].to_vec());
        let lp = gpu().log_softmax(&x, rows, classes).unwrap();
        let want_lp = cpu::log_softmax(&x, rows, classes).unwrap();
        assert_elementwise("log_softmax", &lp, &want_lp, &x);
        assert_elementwise("softmax", &gpu().softmax(&x, rows, classes).unwrap(), &cpu::softmax(&x, rows, classes).unwrap(), &x);
        let loss = gpu().nll_loss(&want_lp, &t, rows, classes, &opts).unwrap();
        assert_loss("nll_loss", &loss, &cpu::nll_loss(&want_lp, &t, rows, classes, &opts).unwrap(), &x, rows, &opts);
    }
}

proptest! {
    #![proptest_config(config())]

    /// The backward kernels (log-softmax, softmax, NLL) on random shapes and values.
    #[test]
    fn backward_ops_match_cpu((rows, classes, x, t) in batch(), mut opts in options(), g in 0.25f32..2.0) {
        opts.weight = opts.weight.map(|w| w[..classes].to_vec());
        let dy: Vec<f32> = x.iter().map(|v| if v.is_finite() { (v * 0.37).sin() } else { 0.5 }).collect();
        let lp = cpu::log_softmax(&x, rows, classes).unwrap();
        let p = cpu::softmax(&x, rows, classes).unwrap();
        // The gradient tolerance plus 2e-6·max|dy|: dy - Σ y·dy cancels to rounding noise
        // (a few ulps of dy) when a row's dy is constant (ties), and f32 cannot do better.
        let want = cpu::log_softmax_backward(&lp, &dy, rows, classes).unwrap();
        let noise = |want: &[f32]| 1e-5 * want.iter().filter(|v| v.is_finite()).fold(0.0f32, |m, v| m.max(v.abs())) + 2e-6;
        assert_close("log_softmax_backward", &gpu().log_softmax_backward(&lp, &dy, rows, classes).unwrap(), &want, noise(&want), 1e-4);
        let want = cpu::softmax_backward(&p, &dy, rows, classes).unwrap();
        assert_close("softmax_backward", &gpu().softmax_backward(&p, &dy, rows, classes).unwrap(), &want, noise(&want), 1e-4);
        let g = vec![g; if opts.reduction == Reduction::None { rows } else { 1 }];
        assert_gradient("nll_loss_grad", &gpu().nll_loss_grad(&t, rows, classes, &opts, &g).unwrap(), &cpu::nll_loss_grad(&t, rows, classes, &opts, &g).unwrap());
    }

    /// The elementwise family on random lengths and values (±100 logits, ±1e4, NaN, ties),
    /// every reduction: within `1e-5·max(1, max|expected|)·√n + 1e-4·|expected|` (each
    /// element is a few f32 operations; sums add √n-scaled rounding).
    #[test]
    fn elementwise_losses_match_cpu(
        values in proptest::collection::vec((logit(), prop_oneof![4 => -5.0f32..5.0, 1 => Just(0.0f32), 1 => Just(1.0f32)]), 1..3000),
        reduction in 0..3usize,
        beta in prop_oneof![Just(0.0f32), 0.1f32..3.0],
    ) {
        let n = values.len();
        let (x, y): (Vec<f32>, Vec<f32>) = values.into_iter().unzip();
        let reduction = [Reduction::None, Reduction::Sum, Reduction::Mean][reduction];
        let g = vec![0.75; if reduction == Reduction::None { n } else { 1 }];
        let check = |what: &str, got: (Vec<f32>, Vec<f32>), want: (Vec<f32>, Vec<f32>)| {
            let scale = |v: &[f32]| v.iter().filter(|v| v.is_finite()).fold(1.0f32, |m, v| m.max(v.abs()));
            let grow = if reduction == Reduction::None { 1.0 } else { (n as f32).sqrt() };
            assert_close(&format!("{what} loss"), &got.0, &want.0, 1e-5 * scale(&want.0) * grow, 1e-4);
            assert_close(&format!("{what} grad"), &got.1, &want.1, 1e-5 * scale(&want.1), 1e-4);
        };
        check("mse", gpu().mse_loss_with_grad(&x, &y, n, reduction, &g).unwrap(), cpu::mse_loss_with_grad(&x, &y, n, reduction, &g).unwrap());
        check("l1", gpu().l1_loss_with_grad(&x, &y, n, reduction, &g).unwrap(), cpu::l1_loss_with_grad(&x, &y, n, reduction, &g).unwrap());
        check("smooth_l1", gpu().smooth_l1_loss_with_grad(&x, &y, n, reduction, beta, &g).unwrap(), cpu::smooth_l1_loss_with_grad(&x, &y, n, reduction, beta, &g).unwrap());
        let delta = beta.max(0.5);
        check("huber", gpu().huber_loss_with_grad(&x, &y, n, reduction, delta, &g).unwrap(), cpu::huber_loss_with_grad(&x, &y, n, reduction, delta, &g).unwrap());
        let mut bce = BceOptions::default();
        bce.reduction = reduction;
        let probs: Vec<f32> = y.iter().map(|v| v.clamp(0.0, 1.0)).collect();
        check("bce_with_logits", gpu().binary_cross_entropy_with_logits_with_grad(&x, &probs, n, &bce, &g).unwrap(), cpu::binary_cross_entropy_with_logits_with_grad(&x, &probs, n, &bce, &g).unwrap());
    }
}
