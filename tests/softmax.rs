//! log_softmax / softmax and their backward passes: GPU against the f64 CPU twins.

mod common;

use common::{Rng, adversarial_rows, assert_gradient, assert_softmax_forward, gpus, shapes};
use wgpu_loss::cpu;

#[test]
fn forward_matches_cpu_on_every_shape() {
    let mut rng = Rng::new(1);
    for gpu in gpus() {
        for (rows, classes) in shapes() {
            let x = rng.logits(rows * classes, 20.0);
            let what = format!("{rows}x{classes} subgroups={}", gpu.uses_subgroups());
            assert_softmax_forward(gpu, &x, rows, classes, &what);
        }
    }
}

#[test]
fn backward_matches_cpu_on_every_shape() {
    let mut rng = Rng::new(2);
    for gpu in gpus() {
        for (rows, classes) in shapes() {
            let x = rng.logits(rows * classes, 5.0);
            let dy = rng.logits(rows * classes, 1.0);
            let what = format!("{rows}x{classes} subgroups={}", gpu.uses_subgroups());
            let y = cpu::log_softmax(&x, rows, classes).unwrap();
            let g = gpu.log_softmax_backward(&y, &dy, rows, classes).unwrap();
            let want = cpu::log_softmax_backward(&y, &dy, rows, classes).unwrap();
            assert_gradient(&format!("log_softmax_backward {what}"), &g, &want);
            let p = cpu::softmax(&x, rows, classes).unwrap();
            let g = gpu.softmax_backward(&p, &dy, rows, classes).unwrap();
            let want = cpu::softmax_backward(&p, &dy, rows, classes).unwrap();
            assert_gradient(&format!("softmax_backward {what}"), &g, &want);
        }
    }
}

/// ±1e4, -inf entries, ties, peaked and denormal rows stay exact; rows with a NaN, a
/// +inf or no finite logit are all NaN, and poison no other row.
#[test]
fn adversarial_rows_match_cpu_exactly_where_non_finite() {
    for gpu in gpus() {
        for classes in [1, 2, 3, 8, 33, 300] {
            let mut rows = adversarial_rows(classes);
            rows.push(vec![f32::NEG_INFINITY; classes]);
            rows.push(
                (0..classes)
                    .map(|i| if i == classes / 2 { f32::NAN } else { 1.0 })
                    .collect(),
            );
            rows.push((0..classes).map(|i| if i == 0 { f32::INFINITY } else { 1.0 }).collect());
            let n = rows.len();
            let x: Vec<f32> = rows.concat();
            let what = format!("{n}x{classes} subgroups={}", gpu.uses_subgroups());
            assert_softmax_forward(gpu, &x, n, classes, &what);
            let lp = gpu.log_softmax(&x, n, classes).unwrap();
            let want = cpu::log_softmax(&x, n, classes).unwrap();
            // NaN rows are exactly the last three and those with no finite logit.
            for (r, row) in lp.chunks(classes).enumerate() {
                let no_finite = x[r * classes..][..classes].iter().all(|v| *v == f32::NEG_INFINITY);
                let poisoned = r >= n - 3 || no_finite;
                assert_eq!(row.iter().all(|v| v.is_nan()), poisoned, "{what}: row {r} = {row:?}");
            }
            let dy = vec![0.5; n * classes];
            let g = gpu.log_softmax_backward(&want, &dy, n, classes).unwrap();
            assert_gradient(
                &format!("log_softmax_backward {what}"),
                &g,
                &cpu::log_softmax_backward(&want, &dy, n, classes).unwrap(),
            );
        }
    }
}

#[test]
fn exact_values() {
    let gpu = common::gpu();
    assert_eq!(gpu.log_softmax(&[5.0, -3.0], 2, 1).unwrap(), vec![0.0, 0.0]);
    let ln3 = -(3f32.ln());
    let lp = gpu.log_softmax(&[7.0; 3], 1, 3).unwrap();
    assert!(lp.iter().all(|&v| (v - ln3).abs() <= 1e-6), "{lp:?}");
    let p = gpu.softmax(&[f32::NEG_INFINITY, 1e4, 1e4], 1, 3).unwrap();
    assert_eq!(p, vec![0.0, 0.5, 0.5]);
}
