//! Fused cross-entropy (loss, gradient, both): GPU against the f64 CPU twins.

mod common;

use common::{
    Rng, adversarial_rows, all_option_combinations, assert_gradient, assert_loss, gpus, grad_output, option_sets,
    shapes, targets_for,
};
use wgpu_loss::{CrossEntropyOptions, EmptyPolicy, Gpu, Reduction, cpu};

/// Every slice-API form against the CPU twin: loss alone, gradient alone, both together.
fn check(gpu: &Gpu, rows: usize, classes: usize, x: &[f32], targets: &[i32], opts: &CrossEntropyOptions, g: &[f32]) {
    let what = format!("{rows}x{classes} subgroups={} {opts:?}", gpu.uses_subgroups());
    let (want_loss, want_grad) = cpu::cross_entropy_with_grad(x, targets, rows, classes, opts, g).unwrap();
    let loss = gpu.cross_entropy(x, targets, rows, classes, opts).unwrap();
    assert_loss(&format!("cross_entropy {what}"), &loss, &want_loss, x, rows, opts);
    let grad = gpu.cross_entropy_grad(x, targets, rows, classes, opts, g).unwrap();
    assert_gradient(&format!("cross_entropy_grad {what}"), &grad, &want_grad);
    let (loss2, grad2) = gpu.cross_entropy_with_grad(x, targets, rows, classes, opts, g).unwrap();
    // The fused kernel is another kernel: a GPU compiler may contract its multiply-adds
    // differently, so it is held to the same tolerances, not to the same bits.
    assert_loss(&format!("fused loss {what}"), &loss2, &want_loss, x, rows, opts);
    assert_gradient(&format!("fused grad {what}"), &grad2, &want_grad);
}

#[test]
fn matches_cpu_on_every_shape_with_pairwise_options() {
    let mut rng = Rng::new(5);
    for gpu in gpus() {
        for (rows, classes) in shapes() {
            let x = rng.logits(rows * classes, 10.0);
            let mut targets = rng.targets(rows, classes);
            targets[rows / 2] = -100;
            let hit = targets[0];
            for opts in option_sets(classes, hit) {
                let g = grad_output(&mut rng, rows, &opts);
                check(gpu, rows, classes, &x, &targets_for(&opts, &targets), &opts, &g);
            }
        }
    }
}

#[test]
fn matches_cpu_with_every_option_combination() {
    let mut rng = Rng::new(6);
    let (rows, classes) = (9, 5);
    let x = rng.logits(rows * classes, 4.0);
    let targets = vec![0, 1, 2, 3, 4, -100, 2, 2, 1];
    for gpu in gpus() {
        for opts in all_option_combinations(classes, 2) {
            let g = grad_output(&mut rng, rows, &opts);
            check(gpu, rows, classes, &x, &targets_for(&opts, &targets), &opts, &g);
        }
    }
}

/// ±1e4, -inf entries (also at the target), ties, peaked and denormal rows, with and
/// without smoothing and weights; non-finite losses must match the CPU exactly.
#[test]
fn adversarial_rows_match_cpu() {
    let mut rng = Rng::new(7);
    for gpu in gpus() {
        for classes in [1, 2, 3, 8, 33, 300] {
            let rows = adversarial_rows(classes);
            let n = rows.len();
            let x: Vec<f32> = rows.concat();
            let mut targets: Vec<i32> = (0..n).map(|r| (r % classes) as i32).collect();
            targets[n - 1] = 0; // a -inf target logit where classes > 1
            for opts in option_sets(classes, -7) {
                let g = grad_output(&mut rng, n, &opts);
                check(gpu, n, classes, &x, &targets, &opts, &g);
            }
        }
    }
}

/// The documented policies, as PyTorch: all rows ignored → mean NaN, gradient exactly 0;
/// -inf logits with ε > 0 → +inf loss, finite gradient; a NaN logit poisons its own row.
#[test]
fn policies_match_pytorch() {
    for gpu in gpus() {
        let opts = CrossEntropyOptions::default();
        let (loss, grad) = gpu
            .cross_entropy_with_grad(&[1.0, 2.0, 3.0, 4.0], &[-100, -100], 2, 2, &opts, &[1.0])
            .unwrap();
        assert!(loss[0].is_nan());
        assert_eq!(grad, vec![0.0; 4]);

        let mut opts = CrossEntropyOptions::default();
        opts.label_smoothing = 0.1;
        opts.reduction = Reduction::None;
        let x = [f32::NEG_INFINITY, 1.0, 2.0];
        let (loss, grad) = gpu.cross_entropy_with_grad(&x, &[2], 1, 3, &opts, &[1.0]).unwrap();
        assert_eq!(loss, vec![f32::INFINITY]);
        assert!(grad.iter().all(|g| g.is_finite()));
        assert!(
            (grad[0] + 0.1 / 3.0).abs() < 1e-7,
            "masked class gets -(ε/C)·w·g: {grad:?}"
        );

        opts.label_smoothing = 0.0;
        let x = [0.0, f32::NEG_INFINITY, 1.0, f32::NAN, 2.0, 3.0];
        let (loss, grad) = gpu
            .cross_entropy_with_grad(&x, &[0, 0, 1], 3, 2, &opts, &[1.0; 3])
            .unwrap();
        assert!(
            loss[0].abs() < 1e-7 && grad[1] == 0.0,
            "-inf class: gradient exactly 0 {grad:?}"
        );
        assert!(loss[1].is_nan() && grad[2].is_nan() && grad[3].is_nan());
        assert!(loss[2].is_finite() && grad[4].is_finite() && grad[5].is_finite());
    }
}

/// `EmptyPolicy::Zero`: an all-`-inf` row and a mean over zero total weight give loss 0
/// and gradient 0 instead of NaN, on the GPU as on the CPU.
#[test]
fn empty_policy_zero_matches_cpu() {
    let mut rng = Rng::new(9);
    let ninf = f32::NEG_INFINITY;
    let x = [ninf, ninf, ninf, 1.0, 2.0, 3.0, ninf, 0.5, f32::NAN, 1.0, 1.0, 1.0];
    for gpu in gpus() {
        for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
            for eps in [0.0, 0.2] {
                for targets in [[0, 1, 2, 0], [-100, -100, -100, -100], [0, -100, -100, -100]] {
                    let mut opts = CrossEntropyOptions::default();
                    opts.reduction = reduction;
                    opts.label_smoothing = eps;
                    opts.empty = EmptyPolicy::Zero;
                    let g = grad_output(&mut rng, 4, &opts);
                    check(gpu, 4, 3, &x, &targets, &opts, &g);
                    let (loss, grad) = gpu.cross_entropy_with_grad(&x, &targets, 4, 3, &opts, &g).unwrap();
                    if targets[0] == 0 {
                        assert_eq!(grad[..3], [0.0; 3], "all -inf row: zero gradient");
                    }
                    if targets[1] == -100 && reduction == Reduction::Mean {
                        assert_eq!(loss, vec![0.0], "all ignored mean: 0");
                    }
                }
            }
        }
    }
}

/// The same inputs give bit-identical outputs from run to run (fixed reduction trees).
#[test]
fn deterministic() {
    let mut rng = Rng::new(8);
    let (rows, classes) = (777, 333);
    let x = rng.logits(rows * classes, 10.0);
    let targets = rng.targets(rows, classes);
    let opts = CrossEntropyOptions::default();
    for gpu in gpus() {
        let first = gpu
            .cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &[1.0])
            .unwrap();
        for _ in 0..3 {
            let again = gpu
                .cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &[1.0])
                .unwrap();
            assert_eq!(first.0[0].to_bits(), again.0[0].to_bits());
            assert!(first.1.iter().zip(&again.1).all(|(a, b)| a.to_bits() == b.to_bits()));
        }
    }
}
