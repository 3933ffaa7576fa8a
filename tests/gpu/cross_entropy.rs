//! Fused cross-entropy (loss, gradient, both): GPU against the f64 CPU twins on every path.

use std::sync::OnceLock;

use wgpu_loss::{CrossEntropyOptions, EmptyPolicy, Reduction};

use crate::harness::{
    CeCase, Path, Rng, Shape, adversarial_rows, all_option_combinations, grad_output, option_sets, shapes, targets_for,
    trials,
};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(per_path: [
        matches_cpu_on_every_shape_with_pairwise_options,
        matches_cpu_with_every_option_combination,
        adversarial_rows_match_cpu,
        policies_match_pytorch,
        empty_policy_zero_matches_cpu,
        deterministic,
    ])
}

fn check_all(path: &Path, cases: &[CeCase]) {
    cases.iter().for_each(|case| case.check_on(path));
}

/// Of the pairwise option sets, those the paths other than the default run: `none`
/// without options (the vec4 and resident kernels), `sum` with smoothing and an ignored
/// target (the general kernels), `mean` with weights (the batch divisor).
const ON_EVERY_PATH: [usize; 3] = [0, 5, 6];

fn matches_cpu_on_every_shape_with_pairwise_options(path: &'static Path) {
    static CASES: OnceLock<Vec<CeCase>> = OnceLock::new();
    let cases = CASES.get_or_init(|| {
        let mut rng = Rng::new(5);
        let mut cases = Vec::new();
        for (rows, classes) in shapes(true) {
            let x = rng.logits(rows * classes, 10.0);
            let mut targets = rng.targets(rows, classes);
            targets[rows / 2] = -100;
            let hit = targets[0];
            for (k, opts) in option_sets(classes, hit).into_iter().enumerate() {
                let g = grad_output(&mut rng, rows, &opts);
                let t = targets_for(&opts, &targets);
                let case = CeCase::index(Shape::rows(rows, classes), x.clone(), t, opts, g);
                cases.push(if ON_EVERY_PATH.contains(&k) { case } else { case.on_default_path_only() });
            }
        }
        cases
    });
    check_all(path, cases);
}

fn matches_cpu_with_every_option_combination(path: &'static Path) {
    static CASES: OnceLock<Vec<CeCase>> = OnceLock::new();
    let cases = CASES.get_or_init(|| {
        let mut rng = Rng::new(6);
        let (rows, classes) = (9, 5);
        let x = rng.logits(rows * classes, 4.0);
        let targets = vec![0, 1, 2, 3, 4, -100, 2, 2, 1];
        all_option_combinations(classes, 2)
            .into_iter()
            .map(|opts| {
                let g = grad_output(&mut rng, rows, &opts);
                CeCase::index(Shape::rows(rows, classes), x.clone(), targets_for(&opts, &targets), opts, g)
            })
            .collect()
    });
    check_all(path, cases);
}

/// ±1e4, -inf entries (also at the target), ties, peaked and denormal rows, with and
/// without smoothing and weights; non-finite losses must match the CPU exactly.
fn adversarial_rows_match_cpu(path: &'static Path) {
    static CASES: OnceLock<Vec<CeCase>> = OnceLock::new();
    let cases = CASES.get_or_init(|| {
        let mut rng = Rng::new(7);
        let mut cases = Vec::new();
        for classes in [1, 2, 3, 8, 33, 300] {
            let rows = adversarial_rows(classes);
            let n = rows.len();
            let x: Vec<f32> = rows.concat();
            let mut targets: Vec<i32> = (0..n).map(|r| (r % classes) as i32).collect();
            targets[n - 1] = 0; // a -inf target logit where classes > 1
            for opts in option_sets(classes, -7) {
                let g = grad_output(&mut rng, n, &opts);
                cases.push(CeCase::index(Shape::rows(n, classes), x.clone(), targets.clone(), opts, g));
            }
        }
        cases
    });
    check_all(path, cases);
}

/// The documented policies, as PyTorch: all rows ignored → mean NaN, gradient exactly 0;
/// -inf logits with ε > 0 → +inf loss, finite gradient; a NaN logit poisons its own row.
fn policies_match_pytorch(path: &'static Path) {
    let gpu = &path.gpu;
    let opts = CrossEntropyOptions::default();
    let (loss, grad) = gpu.cross_entropy_with_grad(&[1.0, 2.0, 3.0, 4.0], &[-100, -100], 2, 2, &opts, &[1.0]).unwrap();
    assert!(loss[0].is_nan());
    assert_eq!(grad, vec![0.0; 4]);

    let mut opts = CrossEntropyOptions::default();
    opts.label_smoothing = 0.1;
    opts.reduction = Reduction::None;
    let x = [f32::NEG_INFINITY, 1.0, 2.0];
    let (loss, grad) = gpu.cross_entropy_with_grad(&x, &[2], 1, 3, &opts, &[1.0]).unwrap();
    assert_eq!(loss, vec![f32::INFINITY]);
    assert!(grad.iter().all(|g| g.is_finite()));
    assert!((grad[0] + 0.1 / 3.0).abs() < 1e-7, "masked class gets -(ε/C)·w·g: {grad:?}");

    opts.label_smoothing = 0.0;
    let x = [0.0, f32::NEG_INFINITY, 1.0, f32::NAN, 2.0, 3.0];
    let (loss, grad) = gpu.cross_entropy_with_grad(&x, &[0, 0, 1], 3, 2, &opts, &[1.0; 3]).unwrap();
    assert!(loss[0].abs() < 1e-7 && grad[1] == 0.0, "-inf class: gradient exactly 0 {grad:?}");
    assert!(loss[1].is_nan() && grad[2].is_nan() && grad[3].is_nan());
    assert!(loss[2].is_finite() && grad[4].is_finite() && grad[5].is_finite());
}

/// `EmptyPolicy::Zero`: an all-`-inf` row and a mean over zero total weight give loss 0
/// and gradient 0 instead of NaN, on the GPU as on the CPU.
fn empty_policy_zero_matches_cpu(path: &'static Path) {
    let mut rng = Rng::new(9);
    let ninf = f32::NEG_INFINITY;
    let x = vec![ninf, ninf, ninf, 1.0, 2.0, 3.0, ninf, 0.5, f32::NAN, 1.0, 1.0, 1.0];
    for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
        for eps in [0.0, 0.2] {
            for targets in [[0, 1, 2, 0], [-100, -100, -100, -100], [0, -100, -100, -100]] {
                let mut opts = CrossEntropyOptions::default();
                opts.reduction = reduction;
                opts.label_smoothing = eps;
                opts.empty = EmptyPolicy::Zero;
                let g = grad_output(&mut rng, 4, &opts);
                let case = CeCase::index(Shape::rows(4, 3), x.clone(), targets.to_vec(), opts.clone(), g.clone());
                case.check_on(path);
                let (loss, grad) = path.gpu.cross_entropy_with_grad(&x, &targets, 4, 3, &opts, &g).unwrap();
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

/// The same inputs give bit-identical outputs from run to run (fixed reduction trees).
fn deterministic(path: &'static Path) {
    let mut rng = Rng::new(8);
    let (rows, classes) = (777, 333);
    let x = rng.logits(rows * classes, 10.0);
    let targets = rng.targets(rows, classes);
    let opts = CrossEntropyOptions::default();
    let gpu = &path.gpu;
    let first = gpu.cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &[1.0]).unwrap();
    for _ in 0..3 {
        let again = gpu.cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &[1.0]).unwrap();
        assert_eq!(first.0[0].to_bits(), again.0[0].to_bits(), "{}", path.label());
        assert!(first.1.iter().zip(&again.1).all(|(a, b)| a.to_bits() == b.to_bits()), "{}", path.label());
    }
}
