//! Bad arguments: every slice-API op returns the same `Err` as its CPU twin, naming the
//! argument and the value, and the `Gpu` stays usable afterwards.

use crate::harness::gpu;
use wgpu_loss::{CrossEntropyOptions, Error, Reduction, cpu};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    crate::harness::trials!(once: [gpu_and_cpu_refuse_the_same_inputs, row_ops_refuse_bad_shapes_like_the_cpu, a_row_longer_than_a_binding_is_an_error, i64_targets_are_accepted_and_checked])
}

fn opts_with(f: impl FnOnce(&mut CrossEntropyOptions)) -> CrossEntropyOptions {
    let mut o = CrossEntropyOptions::default();
    f(&mut o);
    o
}

/// (what, logits, targets, rows, classes, options, grad_output)
type Case<'a> = (&'a str, &'a [f32], &'a [i32], usize, usize, CrossEntropyOptions, &'a [f32]);

fn gpu_and_cpu_refuse_the_same_inputs() {
    let gpu = gpu();
    let x = [0.0f32; 6];
    let default = CrossEntropyOptions::default();
    let cases: Vec<Case<'_>> = vec![
        ("rows == 0", &[], &[], 0, 3, default.clone(), &[1.0]),
        ("classes == 0", &[], &[0, 0], 2, 0, default.clone(), &[1.0]),
        ("logits too short", &x[..5], &[0, 1], 2, 3, default.clone(), &[1.0]),
        ("targets too long", &x, &[0, 1, 2], 2, 3, default.clone(), &[1.0]),
        ("target == classes", &x, &[0, 3], 2, 3, default.clone(), &[1.0]),
        ("target -1", &x, &[-1, 0], 2, 3, default.clone(), &[1.0]),
        ("weight of length 2", &x, &[0, 1], 2, 3, opts_with(|o| o.weight = Some(vec![1.0, 2.0])), &[1.0]),
        ("NaN weight", &x, &[0, 1], 2, 3, opts_with(|o| o.weight = Some(vec![1.0, f32::NAN, 1.0])), &[1.0]),
        ("label_smoothing 1.5", &x, &[0, 1], 2, 3, opts_with(|o| o.label_smoothing = 1.5), &[1.0]),
        ("label_smoothing -0.1", &x, &[0, 1], 2, 3, opts_with(|o| o.label_smoothing = -0.1), &[1.0]),
        ("label_smoothing NaN", &x, &[0, 1], 2, 3, opts_with(|o| o.label_smoothing = f32::NAN), &[1.0]),
        ("grad_output per row for mean", &x, &[0, 1], 2, 3, default.clone(), &[1.0, 1.0]),
        ("one grad_output for none", &x, &[0, 1], 2, 3, opts_with(|o| o.reduction = Reduction::None), &[1.0]),
    ];
    for (what, x, t, rows, classes, opts, g) in cases {
        let want = cpu::cross_entropy_with_grad(x, t, rows, classes, &opts, g).unwrap_err();
        assert_eq!(gpu.cross_entropy_with_grad(x, t, rows, classes, &opts, g).unwrap_err(), want, "{what}");
        assert_eq!(gpu.cross_entropy_grad(x, t, rows, classes, &opts, g).unwrap_err(), want, "{what}");
        // The ops that do not take every argument refuse exactly when their twins do.
        assert_eq!(
            gpu.cross_entropy(x, t, rows, classes, &opts).err(),
            cpu::cross_entropy(x, t, rows, classes, &opts).err(),
            "{what}"
        );
        assert_eq!(
            gpu.nll_loss(x, t, rows, classes, &opts).err(),
            cpu::nll_loss(x, t, rows, classes, &opts).err(),
            "{what}"
        );
        assert_eq!(
            gpu.nll_loss_grad(t, rows, classes, &opts, g).err(),
            cpu::nll_loss_grad(t, rows, classes, &opts, g).err(),
            "{what}"
        );
    }
    let opts = CrossEntropyOptions::default();
    assert!(matches!(
        gpu.cross_entropy(&x, &[0, 3], 2, 3, &opts),
        Err(Error::InvalidTarget { row: 1, value: 3, classes: 3 })
    ));
    // Out of range is fine when it equals ignore_index (PyTorch does the same).
    let ignore7 = opts_with(|o| o.ignore_index = 7);
    assert!(gpu.cross_entropy(&x, &[0, 7], 2, 3, &ignore7).is_ok());
    // Messages name the argument and the value.
    let msg = gpu.cross_entropy(&x, &[0, 1], 2, 3, &opts_with(|o| o.label_smoothing = 1.5)).unwrap_err().to_string();
    assert!(msg.contains("label_smoothing") && msg.contains("1.5"), "{msg}");
}

fn row_ops_refuse_bad_shapes_like_the_cpu() {
    let gpu = gpu();
    let x = [0.0f32; 6];
    for (rows, classes, len) in [(0, 3, 0), (2, 0, 0), (2, 3, 5), (1, 3, 6)] {
        let x = &x[..len];
        assert_eq!(gpu.log_softmax(x, rows, classes).unwrap_err(), cpu::log_softmax(x, rows, classes).unwrap_err());
        assert_eq!(gpu.softmax(x, rows, classes).unwrap_err(), cpu::softmax(x, rows, classes).unwrap_err());
    }
    assert_eq!(
        gpu.log_softmax_backward(&x, &x[..5], 2, 3).unwrap_err(),
        cpu::log_softmax_backward(&x, &x[..5], 2, 3).unwrap_err()
    );
    assert_eq!(
        gpu.softmax_backward(&x[..4], &x, 2, 3).unwrap_err(),
        cpu::softmax_backward(&x[..4], &x, 2, 3).unwrap_err()
    );
    assert_eq!(gpu.softmax(&[1.0, 1.0], 1, 2).unwrap(), vec![0.5, 0.5]);
}

/// A row longer than one storage binding can hold is an `Err` naming `classes` (not a
/// panic), and the `Gpu` stays usable. (Batches of many rows are chunked instead: tests/scale.rs.)
fn a_row_longer_than_a_binding_is_an_error() {
    let mut opts = wgpu_loss::GpuOptions::default();
    opts.max_binding_size = Some(4096);
    let capped = wgpu_loss::Gpu::from_device_with_options(gpu().device().clone(), gpu().queue().clone(), opts);
    let (rows, classes) = (3, 2000);
    let x = vec![0.0f32; rows * classes];
    let err = capped.log_softmax(&x, rows, classes).err();
    assert!(matches!(err, Some(Error::TooLarge { argument: "classes", limit: 4096, .. })), "{err:?}");
    let err = capped.cross_entropy(&x, &[0; 3], rows, classes, &CrossEntropyOptions::default()).err();
    assert!(matches!(err, Some(Error::TooLarge { argument: "classes", .. })), "{err:?}");
    assert_eq!(capped.softmax(&[1.0, 1.0], 1, 2).unwrap(), vec![0.5, 0.5]);
}

/// `i64` targets (PyTorch's index type) work everywhere `i32` ones do, with the same
/// results; one that does not fit `i32` is `Err(InvalidTarget)` naming its row and value.
fn i64_targets_are_accepted_and_checked() {
    let gpu = gpu();
    let x = [0.5f32, 1.0, -1.0, 2.0, 0.0, 0.25];
    let mut opts = CrossEntropyOptions::default();
    opts.label_smoothing = 0.1;
    let narrow = gpu.cross_entropy_with_grad(&x, &[2, 0], 2, 3, &opts, &[1.0]).unwrap();
    let wide = gpu.cross_entropy_with_grad(&x, &[2i64, 0], 2, 3, &opts, &[1.0]).unwrap();
    assert_eq!(narrow, wide);
    let v: Vec<i64> = vec![1, -100];
    assert_eq!(gpu.nll_loss(&x, &v, 2, 3, &opts).unwrap(), gpu.nll_loss(&x, &[1, -100], 2, 3, &opts).unwrap());
    assert_eq!(gpu.cross_entropy(&x, &v[..], 2, 3, &opts).unwrap(), cpu::cross_entropy(&x, &v, 2, 3, &opts).unwrap());
    let big = [0i64, 1 << 33];
    let want = Error::InvalidTarget { row: 1, value: 1 << 33, classes: 3 };
    assert_eq!(gpu.cross_entropy(&x, &big, 2, 3, &opts).unwrap_err(), want);
    assert_eq!(cpu::nll_loss_grad(&big, 2, 3, &opts, &[1.0]).unwrap_err(), want);
}
