//! Scale: batches larger than one storage binding are recorded as row chunks, in the slice
//! and encode APIs alike, and give the same results as unchunked batches.

mod common;

use common::{Rng, assert_elementwise, assert_gradient, assert_loss, download, gpu, upload};
use wgpu_loss::{CrossEntropyOptions, Gpu, GpuOptions, LossBuffers, Reduction, Workspace, cpu};

/// A `Gpu` on the shared device whose bindings are capped at `bytes`, so small batches
/// exercise the chunked paths.
fn capped(bytes: u64) -> Gpu {
    let mut opts = GpuOptions::default();
    opts.max_binding_size = Some(bytes);
    Gpu::from_device_with_options(gpu().device().clone(), gpu().queue().clone(), opts)
}

#[test]
fn chunked_batches_match_cpu_and_unchunked_bits() {
    let mut rng = Rng::new(21);
    // 8 KiB bindings: 1 row of 1000 classes per chunk, 64 rows of 31.
    let small = capped(8192);
    for (rows, classes) in [(7, 1000), (100, 31), (3, 1023), (1, 1000)] {
        let x = rng.logits(rows * classes, 8.0);
        let mut targets = rng.targets(rows, classes);
        targets[rows / 2] = -100;
        for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
            let mut opts = CrossEntropyOptions::default();
            opts.reduction = reduction;
            opts.label_smoothing = 0.1;
            let g = common::grad_output(&mut rng, rows, &opts);
            let chunked = small
                .cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &g)
                .unwrap();
            let whole = gpu()
                .cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &g)
                .unwrap();
            let (want_loss, want_grad) = cpu::cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &g).unwrap();
            assert_loss("chunked loss", &chunked.0, &want_loss, &x, rows, &opts);
            assert_gradient("chunked grad", &chunked.1, &want_grad);
            let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(
                same(&chunked.0, &whole.0) && same(&chunked.1, &whole.1),
                "{rows}x{classes} {reduction:?}: chunking changed bits"
            );
            let lp = small
                .nll_loss(
                    &cpu::log_softmax(&x, rows, classes).unwrap(),
                    &targets,
                    rows,
                    classes,
                    &opts,
                )
                .unwrap();
            assert_eq!(lp.len(), want_loss.len());
            let ng = small.nll_loss_grad(&targets, rows, classes, &opts, &g).unwrap();
            assert_gradient(
                "chunked nll grad",
                &ng,
                &cpu::nll_loss_grad(&targets, rows, classes, &opts, &g).unwrap(),
            );
        }
        let lp = small.log_softmax(&x, rows, classes).unwrap();
        assert_elementwise(
            "chunked log_softmax",
            &lp,
            &cpu::log_softmax(&x, rows, classes).unwrap(),
            &x,
        );
        let dy = rng.logits(rows * classes, 1.0);
        let dx = small
            .softmax_backward(&cpu::softmax(&x, rows, classes).unwrap(), &dy, rows, classes)
            .unwrap();
        let p = cpu::softmax(&x, rows, classes).unwrap();
        assert_gradient(
            "chunked softmax_backward",
            &dx,
            &cpu::softmax_backward(&p, &dy, rows, classes).unwrap(),
        );
    }
}

/// Out-of-range targets in a later chunk are reported with their absolute row.
#[test]
fn chunked_status_names_the_absolute_row() {
    let small = capped(8192);
    let (rows, classes) = (9, 1000);
    let x = vec![0.0f32; rows * classes];
    let mut targets = vec![3i32; rows];
    targets[7] = 1000;
    let err = small
        .cross_entropy(&x, &targets, rows, classes, &CrossEntropyOptions::default())
        .unwrap_err();
    assert_eq!(
        err,
        wgpu_loss::Error::InvalidTarget {
            row: 7,
            value: 1000,
            classes
        }
    );
}

/// The encode API chunks too, at any 4-byte offset.
#[test]
fn encode_api_chunks_at_offsets() {
    let small = capped(2048);
    let mut rng = Rng::new(22);
    let (rows, classes) = (11, 300);
    let n = rows * classes;
    let x = rng.logits(n, 5.0);
    let targets = rng.targets(rows, classes);
    let opts = CrossEntropyOptions::default();
    let logits = upload(&small, &[vec![0.0f32; 5], x.clone()].concat());
    let target_buf = upload(&small, &targets);
    let out = upload(&small, &vec![0.0f32; n + 3 + 1]);
    let mut enc = small.device().create_command_encoder(&Default::default());
    let buffers = LossBuffers::new(target_buf.slice(..))
        .input(logits.slice(20..))
        .grad(out.slice(12..12 + n as u64 * 4))
        .loss(out.slice(0..4));
    small
        .encode_cross_entropy(&mut enc, &mut Workspace::new(&small), &buffers, rows, classes, &opts)
        .unwrap();
    small.queue().submit([enc.finish()]);
    let all = download(&small, &out, 0, n + 3);
    let (want_loss, want_grad) = cpu::cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &[1.0]).unwrap();
    assert_loss("loss", &all[..1], &want_loss, &x, rows, &opts);
    assert_gradient("grad", &all[3..], &want_grad);
}

/// A real batch past the 128 MiB binding of Mesa's adapters: 2048 × 32000 f32 logits (262 MB).
#[test]
fn batch_larger_than_a_binding() {
    let mut rng = Rng::new(23);
    let (rows, classes) = (2048, 32000);
    let x = rng.logits(rows * classes, 10.0);
    let targets = rng.targets(rows, classes);
    let opts = CrossEntropyOptions::default();
    let (loss, grad) = gpu()
        .cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &[1.0])
        .unwrap();
    let (want_loss, want_grad) = cpu::cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &[1.0]).unwrap();
    assert_loss("loss", &loss, &want_loss, &x, rows, &opts);
    assert_gradient("grad", &grad, &want_grad);
}

/// A `Gpu` on the shared device that splits rows longer than `2 × segment` classes.
fn splitting(segment: u32) -> Gpu {
    let mut opts = GpuOptions::default();
    opts.segment_classes = segment;
    Gpu::from_device_with_options(gpu().device().clone(), gpu().queue().clone(), opts)
}

/// Split rows (partials per segment, merged exactly) match the CPU: ordinary rows, rows
/// whose segments are entirely -inf, NaN in one segment, ±1e4, all options; segments of 7
/// classes (read one by one) and of 8 (read as vec4 where the rows allow).
#[test]
fn split_rows_match_cpu() {
    let mut rng = Rng::new(24);
    let splits = [splitting(7), splitting(8)];
    let cases = [(5, 15), (3, 33), (4, 100), (2, 1000), (1, 4097)];
    for (split, (rows, classes)) in splits.iter().flat_map(|s| cases.map(|c| (s, c))) {
        let mut x = rng.logits(rows * classes, 10.0);
        let mut rows_x: Vec<Vec<f32>> = x.chunks(classes).map(<[f32]>::to_vec).collect();
        for row in &mut rows_x[1..] {
            row.iter_mut().take(classes / 2).for_each(|v| *v = f32::NEG_INFINITY);
        }
        if rows > 2 {
            rows_x[2][classes - 1] = 1e4;
            rows_x[rows - 1][classes / 3] = f32::NAN;
        }
        x = rows_x.concat();
        let targets: Vec<i32> = (0..rows).map(|r| ((r * 7 + classes - 1) % classes) as i32).collect();
        for opts in common::option_sets(classes, targets[0]) {
            let g = common::grad_output(&mut rng, rows, &opts);
            let (loss, grad) = split
                .cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &g)
                .unwrap();
            let (want_loss, want_grad) = cpu::cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &g).unwrap();
            assert_loss(
                &format!("split loss {rows}x{classes} {opts:?}"),
                &loss,
                &want_loss,
                &x,
                rows,
                &opts,
            );
            assert_gradient(&format!("split grad {rows}x{classes} {opts:?}"), &grad, &want_grad);
            let loss_only = split.cross_entropy(&x, &targets, rows, classes, &opts).unwrap();
            assert_loss("split loss only", &loss_only, &want_loss, &x, rows, &opts);
        }
        let lp = split.log_softmax(&x, rows, classes).unwrap();
        assert_elementwise(
            "split log_softmax",
            &lp,
            &cpu::log_softmax(&x, rows, classes).unwrap(),
            &x,
        );
        let p = split.softmax(&x, rows, classes).unwrap();
        assert_elementwise("split softmax", &p, &cpu::softmax(&x, rows, classes).unwrap(), &x);
    }
}

/// Split rows and row chunks together.
#[test]
fn split_rows_in_chunks() {
    let mut opts = GpuOptions::default();
    opts.segment_classes = 100;
    opts.max_binding_size = Some(16 << 10);
    let both = Gpu::from_device_with_options(gpu().device().clone(), gpu().queue().clone(), opts);
    let mut rng = Rng::new(25);
    let (rows, classes) = (9, 1500);
    let x = rng.logits(rows * classes, 6.0);
    let targets = rng.targets(rows, classes);
    let mut ce = CrossEntropyOptions::default();
    ce.reduction = Reduction::None;
    let (loss, grad) = both
        .cross_entropy_with_grad(&x, &targets, rows, classes, &ce, &[1.0; 9])
        .unwrap();
    let (want_loss, want_grad) = cpu::cross_entropy_with_grad(&x, &targets, rows, classes, &ce, &[1.0; 9]).unwrap();
    assert_loss("loss", &loss, &want_loss, &x, rows, &ce);
    assert_gradient("grad", &grad, &want_grad);
    let lp = both.log_softmax(&x, rows, classes).unwrap();
    assert_elementwise("log_softmax", &lp, &cpu::log_softmax(&x, rows, classes).unwrap(), &x);
}

/// Extreme classification: 1,000,000 classes per row.
#[test]
fn a_million_classes_per_row() {
    let mut rng = Rng::new(26);
    let (rows, classes) = (3, 1_000_000);
    let x = rng.logits(rows * classes, 10.0);
    let targets = vec![0, 999_999, 123_456];
    let mut opts = CrossEntropyOptions::default();
    opts.label_smoothing = 0.1;
    let (loss, grad) = gpu()
        .cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &[1.0])
        .unwrap();
    let (want_loss, want_grad) = cpu::cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &[1.0]).unwrap();
    assert_loss("loss", &loss, &want_loss, &x, rows, &opts);
    assert_gradient("grad", &grad, &want_grad);
}

/// The gradient written in place over the logits equals the separate-buffer gradient, on
/// every kernel path (short rows, whole rows, split rows, row chunks), and the loss is
/// computed from the logits before they are overwritten.
#[test]
fn gradient_in_place_over_the_logits() {
    let mut rng = Rng::new(27);
    let mut opts = GpuOptions::default();
    opts.segment_classes = 64;
    opts.max_binding_size = Some(64 << 10);
    let odd = Gpu::from_device_with_options(gpu().device().clone(), gpu().queue().clone(), opts);
    for (device, rows, classes) in [(gpu(), 50, 10), (gpu(), 9, 1000), (&odd, 9, 1000), (&odd, 40, 300)] {
        let x = rng.logits(rows * classes, 7.0);
        let targets = rng.targets(rows, classes);
        let mut ce = CrossEntropyOptions::default();
        ce.label_smoothing = 0.05;
        let logits = upload(device, &x);
        let target_buf = upload(device, &targets);
        let loss = upload(device, &[0.0f32]);
        let mut enc = device.device().create_command_encoder(&Default::default());
        let buffers = LossBuffers::new(target_buf.slice(..))
            .input(logits.slice(..))
            .loss(loss.slice(..))
            .grad_in_place();
        device
            .encode_cross_entropy(&mut enc, &mut Workspace::new(device), &buffers, rows, classes, &ce)
            .unwrap();
        device.queue().submit([enc.finish()]);
        let (want_loss, want_grad) = cpu::cross_entropy_with_grad(&x, &targets, rows, classes, &ce, &[1.0]).unwrap();
        assert_loss(
            "in-place loss",
            &download(device, &loss, 0, 1),
            &want_loss,
            &x,
            rows,
            &ce,
        );
        assert_gradient(
            &format!("in-place grad {rows}x{classes}"),
            &download(device, &logits, 0, rows * classes),
            &want_grad,
        );
    }
    let one_target = upload(gpu(), &[0i32]);
    let nll = LossBuffers::new(one_target.slice(..)).grad_in_place();
    let mut enc = gpu().device().create_command_encoder(&Default::default());
    let err = gpu().encode_nll_loss(
        &mut enc,
        &mut Workspace::new(gpu()),
        &nll,
        1,
        1,
        &CrossEntropyOptions::default(),
    );
    assert!(
        matches!(
            err,
            Err(wgpu_loss::Error::InvalidArgument {
                argument: "grad_in_place",
                ..
            })
        ),
        "{err:?}"
    );
}
