//! log_softmax / softmax and their backward passes: GPU against the f64 CPU twins on every
//! path of the matrix.

use std::sync::OnceLock;

use wgpu_loss::cpu;

use crate::harness::{self, Expect, LARGE, Path, Rng, Shape, poisoned_rows, shapes, trials};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(
        per_path: [forward_matches_cpu, backward_matches_cpu, adversarial_rows_match_cpu_exactly_where_non_finite],
        once: [exact_values]
    )
}

/// One batch with its expected outputs.
struct Case {
    shape: Shape,
    x: Vec<f32>,
    first: Expect,
    second: Expect,
}

impl Case {
    /// Whether `path` runs this case: large batches on the default path only, rows that
    /// fit the path's bindings.
    fn runs_on(&self, path: &Path) -> bool {
        (path.is_default() || self.x.len() <= LARGE) && path.fits(self.shape.classes)
    }

    fn what(&self, path: &Path) -> String {
        format!("{}x{} {}", self.shape.n, self.shape.classes, path.label())
    }
}

/// Every shape: log-softmax and softmax of logits in ±20.
fn forward_cases() -> &'static [Case] {
    static CASES: OnceLock<Vec<Case>> = OnceLock::new();
    CASES.get_or_init(|| {
        let mut rng = Rng::new(1);
        shapes(true)
            .into_iter()
            .map(|(rows, classes)| {
                let shape = Shape::rows(rows, classes);
                let x = rng.logits(rows * classes, 20.0);
                Case {
                    first: harness::checks::log_softmax(&x, shape),
                    second: harness::checks::softmax(&x, shape),
                    shape,
                    x,
                }
            })
            .collect()
    })
}

fn forward_matches_cpu(path: &'static Path) {
    for case in forward_cases().iter().filter(|c| c.runs_on(path)) {
        let Shape { n, classes, .. } = case.shape;
        let what = case.what(path);
        case.first.check(&format!("log_softmax {what}"), &path.gpu.log_softmax(&case.x, n, classes).unwrap());
        case.second.check(&format!("softmax {what}"), &path.gpu.softmax(&case.x, n, classes).unwrap());
    }
}

/// A backward case with the forward outputs it starts from (log-softmax's, softmax's).
type BackwardCase = (Case, Vec<f32>, Vec<f32>);

/// Every shape: the backward passes from the CPU's outputs of logits in ±5, upstream in ±1.
/// `x` holds the upstream gradient, `first` log-softmax's backward, `second` softmax's.
fn backward_cases() -> &'static [BackwardCase] {
    static CASES: OnceLock<Vec<BackwardCase>> = OnceLock::new();
    CASES.get_or_init(|| {
        let mut rng = Rng::new(2);
        shapes(true)
            .into_iter()
            .map(|(rows, classes)| {
                let shape = Shape::rows(rows, classes);
                let x = rng.logits(rows * classes, 5.0);
                let dy = rng.logits(rows * classes, 1.0);
                let y = cpu::log_softmax(&x, rows, classes).unwrap();
                let p = cpu::softmax(&x, rows, classes).unwrap();
                let case = Case {
                    first: harness::checks::log_softmax_backward(&y, &dy, shape),
                    second: harness::checks::softmax_backward(&p, &dy, shape),
                    shape,
                    x: dy,
                };
                (case, y, p)
            })
            .collect()
    })
}

fn backward_matches_cpu(path: &'static Path) {
    for (case, y, p) in backward_cases().iter().filter(|(c, ..)| c.runs_on(path)) {
        let Shape { n, classes, .. } = case.shape;
        let what = case.what(path);
        let dy = &case.x;
        let g = path.gpu.log_softmax_backward(y, dy, n, classes).unwrap();
        case.first.check(&format!("log_softmax_backward {what}"), &g);
        let g = path.gpu.softmax_backward(p, dy, n, classes).unwrap();
        case.second.check(&format!("softmax_backward {what}"), &g);
    }
}

/// ±1e4, -inf entries, ties, peaked and denormal rows stay exact; rows with a NaN, a
/// +inf or no finite logit are all NaN, and poison no other row. The backward passes from
/// those outputs match too.
fn adversarial_rows_match_cpu_exactly_where_non_finite(path: &'static Path) {
    let mut rng = Rng::new(3);
    for classes in [1, 2, 3, 8, 33, 300] {
        let rows = poisoned_rows(classes);
        let n = rows.len();
        let x: Vec<f32> = rows.concat();
        let shape = Shape::rows(n, classes);
        let what = format!("adversarial {n}x{classes} {}", path.label());
        let lp = path.gpu.log_softmax(&x, n, classes).unwrap();
        harness::checks::log_softmax(&x, shape).check(&format!("log_softmax {what}"), &lp);
        let p = path.gpu.softmax(&x, n, classes).unwrap();
        harness::checks::softmax(&x, shape).check(&format!("softmax {what}"), &p);
        // NaN rows are exactly the last three and those with no finite logit.
        for (r, row) in lp.chunks(classes).enumerate() {
            let no_finite = x[r * classes..][..classes].iter().all(|v| *v == f32::NEG_INFINITY);
            let poisoned = r >= n - 3 || no_finite;
            assert_eq!(row.iter().all(|v| v.is_nan()), poisoned, "{what}: row {r} = {row:?}");
        }
        let want_lp = cpu::log_softmax(&x, n, classes).unwrap();
        let want_p = cpu::softmax(&x, n, classes).unwrap();
        let dy = rng.logits(n * classes, 1.0);
        let g = path.gpu.log_softmax_backward(&want_lp, &dy, n, classes).unwrap();
        harness::checks::log_softmax_backward(&want_lp, &dy, shape).check(&format!("log_softmax_backward {what}"), &g);
        let g = path.gpu.softmax_backward(&want_p, &dy, n, classes).unwrap();
        harness::checks::softmax_backward(&want_p, &dy, shape).check(&format!("softmax_backward {what}"), &g);
    }
}

fn exact_values() {
    let gpu = harness::gpu();
    assert_eq!(gpu.log_softmax(&[5.0, -3.0], 2, 1).unwrap(), vec![0.0, 0.0]);
    let ln3 = -(3f32.ln());
    let lp = gpu.log_softmax(&[7.0; 3], 1, 3).unwrap();
    assert!(lp.iter().all(|&v| (v - ln3).abs() <= 1e-6), "{lp:?}");
    let p = gpu.softmax(&[f32::NEG_INFINITY, 1e4, 1e4], 1, 3).unwrap();
    assert_eq!(p, vec![0.0, 0.5, 0.5]);
}
