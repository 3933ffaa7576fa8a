//! The tolerances prove their worth: in typical batches a 0.1 % error in any one element
//! fails the comparison (checked element by element: each tolerance is below a thousandth
//! of its value), and per family a deliberately perturbed result — a row's log-sum-exp off
//! by 1e-3, one probability or one gradient entry × 1.001, a loss × 1.001 — is refused by
//! the very comparison the GPU tests use. So the tolerances cannot loosen unnoticed.

use wgpu_loss::{CrossEntropyOptions, Reduction, cpu};

use crate::elementwise::{Call, Case};
use crate::harness::{self, CeCase, Expect, Got, Rng, Shape, trials};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(once: [
        softmax_family_catches_a_tenth_of_a_percent,
        cross_entropy_catches_a_tenth_of_a_percent,
        nll_catches_a_tenth_of_a_percent,
        elementwise_catches_a_tenth_of_a_percent,
        non_finite_values_must_match_exactly,
    ])
}

/// A 0.1 % error.
const ERROR: f64 = 1e-3;

/// Every element whose value is not the near-cancellation of larger terms (`|value|` at
/// least `1 / cancel` of its terms' magnitude `terms[i]`, or every element when `terms` is
/// `None`) would fail if off by 0.1 %; returns how many elements were exempt.
fn every_element_catches(what: &str, expect: &Expect, terms: Option<&[f64]>, cancel: f64) -> usize {
    let mut exempt = 0;
    for (i, (&want, &tol)) in expect.want.iter().zip(&expect.tol).enumerate() {
        let want = f64::from(want);
        if want == 0.0 || !want.is_finite() {
            continue;
        }
        if terms.is_some_and(|t| want.abs() * cancel < t[i]) {
            exempt += 1;
            continue;
        }
        assert!(tol < ERROR * want.abs(), "{what}[{i}]: tolerance {tol:e} lets a 0.1 % error of {want:e} pass");
    }
    exempt
}

/// `perturbed` (the expected values with one change) must be refused, the expected
/// values themselves accepted.
fn refused(what: &str, expect: &Expect, perturb: impl FnOnce(&mut Vec<f32>)) {
    let what = &format!("tolerances {what}");
    expect.try_check(what, &expect.want.clone()).unwrap();
    let mut bad = expect.want.clone();
    perturb(&mut bad);
    assert!(expect.try_check(what, &bad).is_err(), "{what}: a perturbed result passed");
}

/// The index of the largest |value| (a typical element to perturb).
fn largest(v: &[f32]) -> usize {
    (0..v.len()).fold(0, |m, i| if v[i].abs() > v[m].abs() { i } else { m })
}

/// Logits in ±20 over 64 × 1000 and 4 × 32000; the backward passes with upstream in ±1.
fn softmax_family_catches_a_tenth_of_a_percent() {
    let mut rng = Rng::new(61);
    for (rows, classes) in [(64, 1000), (4, 32000)] {
        let shape = Shape::rows(rows, classes);
        let x = rng.logits(rows * classes, 20.0);
        let dy = rng.logits(rows * classes, 1.0);
        let what = format!("{rows}x{classes}");
        let lp = harness::checks::log_softmax(&x, shape);
        every_element_catches(&format!("log_softmax {what}"), &lp, None, 0.0);
        // One row's log-sum-exp off by 1e-3 shifts every log-probability of the row.
        refused(&format!("log_softmax lse+1e-3 {what}"), &lp, |v| {
            v[classes..2 * classes].iter_mut().for_each(|l| *l -= 1e-3)
        });
        let p = harness::checks::softmax(&x, shape);
        every_element_catches(&format!("softmax {what}"), &p, None, 0.0);
        refused(&format!("softmax ×1.001 {what}"), &p, |v| v[classes + 7] *= 1.001);
        let (y, probs) = (lp.want.clone(), p.want.clone());
        for (name, expect) in [
            ("log_softmax_backward", harness::checks::log_softmax_backward(&y, &dy, shape)),
            ("softmax_backward", harness::checks::softmax_backward(&probs, &dy, shape)),
        ] {
            // dx = dy − p·Σdy (or p·(dy − Σp·dy)) cancels where its terms nearly agree, and
            // its sum is known to a few ulps of how far its partial sums reach (the larger
            // of the sum and the root-sum-square of its terms): only elements fifty times
            // smaller than those (a few in a thousand) may hide a 0.1 % error, since a
            // sum of 32000 terms rounds to ~100 ulps (a 1e-5 of its reach).
            let reach = |terms: &mut dyn Iterator<Item = f64>| {
                let (sum, squares) = terms.fold((0.0, 0.0), |(s, q), t| (s + t, q + t * t));
                f64::max(sum.abs(), f64::sqrt(squares))
            };
            let terms: Vec<f64> = (0..rows * classes)
                .map(|i| {
                    let row = i / classes;
                    let (dy_row, p_row) = (&dy[row * classes..][..classes], &probs[row * classes..][..classes]);
                    let p = f64::from(probs[i]);
                    match name {
                        "log_softmax_backward" => {
                            f64::from(dy[i]).abs() + p * reach(&mut dy_row.iter().map(|d| f64::from(*d)))
                        }
                        _ => {
                            let mut products = dy_row.iter().zip(p_row).map(|(d, p)| f64::from(*d) * f64::from(*p));
                            p * (f64::from(dy[i]).abs() + reach(&mut products))
                        }
                    }
                })
                .collect();
            let exempt = every_element_catches(&format!("{name} {what}"), &expect, Some(&terms), 50.0);
            assert!(exempt * 100 < rows * classes, "{name} {what}: {exempt} cancelling elements");
            let at = largest(&expect.want);
            refused(&format!("{name} ×1.001 {what}"), &expect, |v| v[at] *= 1.001);
        }
    }
}

/// Cross-entropy on logits in ±20: every reduction's loss, every gradient entry (off the
/// target ~1/C of the target's) and the lse, at 1000 and 32000 classes.
fn cross_entropy_catches_a_tenth_of_a_percent() {
    let mut rng = Rng::new(62);
    for (rows, classes) in [(64, 1000), (4, 32000)] {
        let x = rng.logits(rows * classes, 20.0);
        let targets = rng.targets(rows, classes);
        for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
            let mut opts = CrossEntropyOptions::default();
            opts.reduction = reduction;
            let g = harness::grad_output(&mut rng, rows, &opts);
            let case = CeCase::index(Shape::rows(rows, classes), x.clone(), targets.clone(), opts, g);
            let what = format!("cross_entropy {rows}x{classes} {reduction:?}");
            let e = &case.expect;
            every_element_catches(&format!("{what} loss"), &e.loss, None, 0.0);
            every_element_catches(&format!("{what} grad"), &e.grad, None, 0.0);
            every_element_catches(&format!("{what} lse"), &e.lse, None, 0.0);
            let off_target = (targets[0] as usize + 1) % classes;
            let mut grad = e.grad.want.clone();
            grad[off_target] *= 1.001;
            assert!(e.try_check(&what, Got::outputs(None, Some(&grad))).is_err(), "{what}: off-target entry × 1.001");
            let mut loss = e.loss.want.clone();
            loss[0] *= 1.001;
            assert!(e.try_check(&what, Got::outputs(Some(&loss), None)).is_err(), "{what}: loss × 1.001");
            let lse: Vec<f32> = e.lse.want.iter().map(|l| l + 1e-3).collect();
            let with_lse = Got { lse: Some(&lse), ..Default::default() };
            assert!(e.try_check(&what, with_lse).is_err(), "{what}: lse + 1e-3");
            e.try_check(&what, Got::outputs(Some(&e.loss.want), Some(&e.grad.want))).unwrap();
        }
    }
}

fn nll_catches_a_tenth_of_a_percent() {
    let mut rng = Rng::new(63);
    let (rows, classes) = (256, 100);
    let shape = Shape::rows(rows, classes);
    let lp = cpu::log_softmax(&rng.logits(rows * classes, 20.0), rows, classes).unwrap();
    let targets = rng.targets(rows, classes);
    for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
        let mut opts = CrossEntropyOptions::default();
        opts.reduction = reduction;
        opts.weight = Some((0..classes).map(|c| 0.5 + (c % 3) as f32).collect());
        let g = harness::grad_output(&mut rng, rows, &opts);
        let (loss, grad) = harness::checks::nll(&lp, &targets, shape, &opts, &g);
        let what = format!("nll {reduction:?}");
        every_element_catches(&format!("{what} loss"), &loss, None, 0.0);
        every_element_catches(&format!("{what} grad"), &grad, None, 0.0);
        refused(&format!("{what} loss"), &loss, |v| v[0] *= 1.001);
        let at = largest(&grad.want);
        refused(&format!("{what} grad"), &grad, |v| v[at] *= 1.001);
    }
}

/// Each elementwise loss's tolerance (a few dozen ulps of its terms) catches 0.1 % in
/// every element but those that are the near-cancellation of larger terms.
fn elementwise_catches_a_tenth_of_a_percent() {
    let mut rng = Rng::new(64);
    let n = 4096;
    let x = rng.logits(n, 4.0);
    let y = rng.logits(n, 4.0);
    let p: Vec<f32> = (0..n).map(|_| rng.uniform(0.01, 0.99)).collect();
    let g = vec![0.75; n];
    let none = Reduction::None;
    let mut bce = wgpu_loss::BceOptions::default();
    bce.reduction = none;
    let cases: [(Case, &[f32], &[f32]); 6] = [
        (Case::Mse(none), &x, &y),
        (Case::L1(none), &x, &y),
        (Case::SmoothL1(none, 1.0), &x, &y),
        (Case::Huber(none, 1.0), &x, &y),
        (Case::BceWithLogits(bce.clone()), &x, &p),
        (Case::Bce(bce), &p, &p[..].iter().rev().copied().collect::<Vec<_>>()),
    ];
    for (case, input, target) in cases {
        let (loss, grad) = case.run(None, Call::Both, input, target, &g).unwrap();
        let (loss_tol, grad_tol) = crate::elementwise::tolerances(&case, input, target, &g);
        let what = format!("{case:?}");
        for (name, expect) in [("loss", Expect::new(loss, loss_tol)), ("grad", Expect::new(grad, grad_tol))] {
            // The tolerance is 32 ulps of the element's terms (BCE with logits cancels where
            // σ(x) ≈ y): only such near-cancellations may hide a 0.1 % error.
            let terms: Vec<f64> = expect.tol.iter().map(|t| t / (32.0 * harness::tol::EPS)).collect();
            let exempt = every_element_catches(&format!("{what} {name}"), &expect, Some(&terms), 100.0);
            assert!(exempt * 100 < n, "{what} {name}: {exempt} cancelling elements");
            let at = largest(&expect.want);
            refused(&format!("{what} {name}"), &expect, |v| v[at] *= 1.001);
        }
    }
}

/// NaN must meet NaN and ±inf the same infinity, whatever the tolerance.
fn non_finite_values_must_match_exactly() {
    let expect = Expect::new(vec![f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0], vec![1e30; 4]);
    expect.try_check("exact", &[f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 1.0]).unwrap();
    for bad in [
        [0.0, f32::INFINITY, f32::NEG_INFINITY, 1.0],
        [f32::NAN, f32::NAN, f32::NEG_INFINITY, 1.0],
        [f32::NAN, f32::INFINITY, f32::INFINITY, 1.0],
        [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, f32::NAN],
    ] {
        assert!(expect.try_check("exact", &bad).is_err(), "{bad:?} passed");
    }
}
