//! nll_loss and its gradient: GPU against the f64 CPU twins.

mod common;

use common::{
    Rng, all_option_combinations, assert_gradient, assert_loss, gpu, grad_output, option_sets, shapes, targets_for,
};
use wgpu_loss::{CrossEntropyOptions, Reduction, cpu};

fn check(rows: usize, classes: usize, lp: &[f32], targets: &[i32], opts: &CrossEntropyOptions, g: &[f32]) {
    let what = format!("{rows}x{classes} {opts:?}");
    let loss = gpu().nll_loss(lp, targets, rows, classes, opts).unwrap();
    let want = cpu::nll_loss(lp, targets, rows, classes, opts).unwrap();
    assert_loss(&format!("nll_loss {what}"), &loss, &want, lp, rows, opts);
    let grad = gpu().nll_loss_grad(targets, rows, classes, opts, g).unwrap();
    let want = cpu::nll_loss_grad(targets, rows, classes, opts, g).unwrap();
    assert_gradient(&format!("nll_loss_grad {what}"), &grad, &want);
}

#[test]
fn matches_cpu_on_every_shape_with_pairwise_options() {
    let mut rng = Rng::new(3);
    for (rows, classes) in shapes() {
        let x = rng.logits(rows * classes, 8.0);
        let lp = cpu::log_softmax(&x, rows, classes).unwrap();
        let mut targets = rng.targets(rows, classes);
        targets[rows / 2] = -100;
        let hit = targets[0];
        for opts in option_sets(classes, hit) {
            let g = grad_output(&mut rng, rows, &opts);
            check(rows, classes, &lp, &targets_for(&opts, &targets), &opts, &g);
        }
    }
}

#[test]
fn matches_cpu_with_every_option_combination() {
    let mut rng = Rng::new(4);
    let (rows, classes) = (9, 5);
    let lp = cpu::log_softmax(&rng.logits(rows * classes, 4.0), rows, classes).unwrap();
    let targets = vec![0, 1, 2, 3, 4, -100, 2, 2, 1];
    for opts in all_option_combinations(classes, 2) {
        let g = grad_output(&mut rng, rows, &opts);
        check(rows, classes, &lp, &targets_for(&opts, &targets), &opts, &g);
    }
}

/// All rows ignored: mean is NaN (0/0), the gradient is exactly zero; -inf log-probs give
/// +inf losses exactly.
#[test]
fn policies() {
    let mut opts = CrossEntropyOptions::default();
    let loss = gpu().nll_loss(&[-1.0, -2.0], &[-100], 1, 2, &opts).unwrap();
    assert!(loss[0].is_nan());
    assert_eq!(
        gpu().nll_loss_grad(&[-100], 1, 2, &opts, &[1.0]).unwrap(),
        vec![0.0, 0.0]
    );
    opts.reduction = Reduction::None;
    let loss = gpu()
        .nll_loss(&[f32::NEG_INFINITY, 0.0, -1.0, f32::NAN], &[0, 0], 2, 2, &opts)
        .unwrap();
    assert_eq!(loss[0], f32::INFINITY);
    assert_eq!(loss[1], 1.0);
}
