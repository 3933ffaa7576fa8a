//! nll_loss and its gradient: GPU against the f64 CPU twins on every path.

use std::sync::OnceLock;

use wgpu_loss::{CrossEntropyOptions, Reduction, cpu};

use crate::harness::{
    self, Expect, LARGE, Path, Rng, Shape, all_option_combinations, grad_output, option_sets, shapes, targets_for,
    trials,
};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(per_path: [matches_cpu_on_every_shape_with_pairwise_options, matches_cpu_with_every_option_combination], once: [policies])
}

/// A batch of log-probabilities with its targets, options, upstream gradient and expected
/// loss and gradient.
struct Case {
    shape: Shape,
    lp: Vec<f32>,
    targets: Vec<i32>,
    opts: CrossEntropyOptions,
    g: Vec<f32>,
    loss: Expect,
    grad: Expect,
}

impl Case {
    fn new(shape: Shape, lp: &[f32], targets: Vec<i32>, opts: CrossEntropyOptions, g: Vec<f32>) -> Self {
        let (loss, grad) = harness::checks::nll(lp, &targets, shape, &opts, &g);
        Self { shape, lp: lp.to_vec(), targets, opts, g, loss, grad }
    }

    fn check(&self, path: &Path) {
        let Shape { n, classes, .. } = self.shape;
        let what = format!("{n}x{classes} {} {:?}", path.label(), self.opts);
        let loss = path.gpu.nll_loss(&self.lp, &self.targets, n, classes, &self.opts).unwrap();
        self.loss.check(&format!("nll_loss {what}"), &loss);
        let grad = path.gpu.nll_loss_grad(&self.targets, n, classes, &self.opts, &self.g).unwrap();
        self.grad.check(&format!("nll_loss_grad {what}"), &grad);
    }
}

fn shape_cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        let mut rng = Rng::new(3);
        let mut cases = Vec::new();
        for (rows, classes) in shapes(true) {
            let lp = cpu::log_softmax(&rng.logits(rows * classes, 8.0), rows, classes).unwrap();
            let mut targets = rng.targets(rows, classes);
            targets[rows / 2] = -100;
            let hit = targets[0];
            for opts in option_sets(classes, hit) {
                let g = grad_output(&mut rng, rows, &opts);
                let targets = targets_for(&opts, &targets);
                cases.push(Case::new(Shape::rows(rows, classes), &lp, targets, opts, g));
            }
        }
        cases
    })
}

fn matches_cpu_on_every_shape_with_pairwise_options(path: &'static Path) {
    for case in shape_cases() {
        if (path.is_default() || case.lp.len() <= LARGE) && path.fits(case.shape.classes) {
            case.check(path);
        }
    }
}

fn matches_cpu_with_every_option_combination(path: &'static Path) {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    let cases = CASES.get_or_init(|| {
        let mut rng = Rng::new(4);
        let (rows, classes) = (9, 5);
        let lp = cpu::log_softmax(&rng.logits(rows * classes, 4.0), rows, classes).unwrap();
        let targets = vec![0, 1, 2, 3, 4, -100, 2, 2, 1];
        all_option_combinations(classes, 2)
            .into_iter()
            .map(|opts| {
                let g = grad_output(&mut rng, rows, &opts);
                Case::new(Shape::rows(rows, classes), &lp, targets_for(&opts, &targets), opts, g)
            })
            .collect()
    });
    cases.iter().for_each(|case| case.check(path));
}

/// All rows ignored: mean is NaN (0/0), the gradient is exactly zero; -inf log-probs give
/// +inf losses exactly.
fn policies() {
    let gpu = harness::gpu();
    let mut opts = CrossEntropyOptions::default();
    let loss = gpu.nll_loss(&[-1.0, -2.0], &[-100], 1, 2, &opts).unwrap();
    assert!(loss[0].is_nan());
    assert_eq!(gpu.nll_loss_grad(&[-100], 1, 2, &opts, &[1.0]).unwrap(), vec![0.0, 0.0]);
    opts.reduction = Reduction::None;
    let loss = gpu.nll_loss(&[f32::NEG_INFINITY, 0.0, -1.0, f32::NAN], &[0, 0], 2, 2, &opts).unwrap();
    assert_eq!(loss[0], f32::INFINITY);
    assert_eq!(loss[1], 1.0);
}
