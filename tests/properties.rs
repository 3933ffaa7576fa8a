//! Property tests: random shapes (classes 1..5000, rows 1..300), options and values
//! (±1e4, -inf, NaN, denormals, ties) through every GPU op against its CPU twin, with the
//! tolerances of tests/common. Failures shrink to a minimal case. The case count is
//! PROPTEST_CASES (default 12 here, to keep CI fast; raise it for long runs).

mod common;

use common::{assert_elementwise, assert_gradient, assert_loss, gpu};
use proptest::prelude::*;
use wgpu_loss::{CrossEntropyOptions, EmptyPolicy, Reduction, cpu};

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
