//! Scale: batches larger than one storage binding are recorded as row chunks, in the slice
//! and encode APIs alike, and give the same results as unchunked batches; rows too long for
//! one workgroup are split into segments (read one by one or as vec4) whose partials merge
//! exactly; a million classes per row; the gradient in place on every kernel path.

use wgpu_loss::{CrossEntropyOptions, Error, LossBuffers, Reduction, Workspace, cpu};

use crate::harness::{
    self, CeCase, Got, Path, Rng, Shape, download, gpu, gpu_with, grad_output, matrix, option_sets, trials, upload,
};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(
        per_path: [gradient_in_place_over_the_logits],
        once: [
            chunked_batches_match_cpu_and_unchunked_bits,
            chunked_status_names_the_absolute_row,
            batch_reductions_over_many_blocks,
            encode_api_chunks_at_offsets,
            batch_larger_than_a_binding,
            split_rows_match_cpu,
            a_million_classes_per_row,
        ]
    )
}

fn same_bits(a: &[f32], b: &[f32]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits())
}

/// The chunked path (bindings of 8 KiB: 1 row of 1000 classes per chunk, 63 rows of 31)
/// against the CPU and against the default path's bits: cross-entropy, NLL (loss and
/// gradient), log-softmax and the softmax backward.
fn chunked_batches_match_cpu_and_unchunked_bits() {
    let (small, whole) = (&matrix().path("chunked").gpu, gpu());
    let mut rng = Rng::new(21);
    for (rows, classes) in [(7, 1000), (100, 31), (101, 30), (99, 8), (3, 1023), (1, 1000)] {
        let shape = Shape::rows(rows, classes);
        let x = rng.logits(rows * classes, 8.0);
        let lp = cpu::log_softmax(&x, rows, classes).unwrap();
        let mut targets = rng.targets(rows, classes);
        targets[rows / 2] = -100;
        for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
            let mut opts = CrossEntropyOptions::default();
            opts.reduction = reduction;
            opts.label_smoothing = 0.1;
            let g = grad_output(&mut rng, rows, &opts);
            let what = format!("chunked {rows}x{classes} {reduction:?}");
            let case = CeCase::index(shape, x.clone(), targets.clone(), opts.clone(), g.clone());
            let chunked = small.cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &g).unwrap();
            let unchunked = whole.cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &g).unwrap();
            case.expect.check(&what, Got::outputs(Some(&chunked.0), Some(&chunked.1)));
            assert!(
                same_bits(&chunked.0, &unchunked.0) && same_bits(&chunked.1, &unchunked.1),
                "{what}: chunking changed bits"
            );
            let (want_loss, want_grad) = harness::checks::nll(&lp, &targets, shape, &opts, &g);
            let loss = small.nll_loss(&lp, &targets, rows, classes, &opts).unwrap();
            want_loss.check(&format!("nll_loss {what}"), &loss);
            let whole_loss = whole.nll_loss(&lp, &targets, rows, classes, &opts).unwrap();
            assert!(same_bits(&loss, &whole_loss), "{what}: chunking changed the NLL loss's bits");
            let grad = small.nll_loss_grad(&targets, rows, classes, &opts, &g).unwrap();
            want_grad.check(&format!("nll_loss_grad {what}"), &grad);
            let whole_grad = whole.nll_loss_grad(&targets, rows, classes, &opts, &g).unwrap();
            assert!(same_bits(&grad, &whole_grad), "{what}: chunking changed the NLL gradient's bits");
        }
        let got = small.log_softmax(&x, rows, classes).unwrap();
        harness::checks::log_softmax(&x, shape).check("log_softmax chunked", &got);
        assert!(same_bits(&got, &whole.log_softmax(&x, rows, classes).unwrap()), "log-softmax bits");
        let p = cpu::softmax(&x, rows, classes).unwrap();
        let dy = rng.logits(rows * classes, 1.0);
        let dx = small.softmax_backward(&p, &dy, rows, classes).unwrap();
        harness::checks::softmax_backward(&p, &dy, shape).check("softmax_backward chunked", &dx);
        assert!(same_bits(&dx, &whole.softmax_backward(&p, &dy, rows, classes).unwrap()), "softmax backward bits");
    }
}

/// Out-of-range targets in a later chunk are reported with their absolute row.
fn chunked_status_names_the_absolute_row() {
    let small = &matrix().path("chunked").gpu;
    let (rows, classes) = (9, 1000);
    let x = vec![0.0f32; rows * classes];
    let mut targets = vec![3i32; rows];
    targets[7] = 1000;
    let err = small.cross_entropy(&x, &targets, rows, classes, &CrossEntropyOptions::default()).unwrap_err();
    assert_eq!(err, Error::InvalidTarget { row: 7, value: 1000, classes });
}

/// Batches of more rows than one block of the batch reductions (65536 rows each, then
/// a pass over the blocks' partials): sum and mean of cross-entropy (loss alone, and with the
/// gradient, whose mean divisor comes first) and NLL against the CPU; a NaN row in the last
/// block makes the loss NaN; an out-of-range target in the second block is reported with
/// its row by the reduction that records it.
fn batch_reductions_over_many_blocks() {
    let mut rng = Rng::new(24);
    let (rows, classes) = (2 * 65536 + 5, 2);
    let shape = Shape::rows(rows, classes);
    let mut x = rng.logits(rows * classes, 6.0);
    let mut targets = rng.targets(rows, classes);
    targets[70_000] = -100;
    let weight = vec![0.75, 1.5];
    for (reduction, weighted) in [(Reduction::Sum, false), (Reduction::Mean, true), (Reduction::Mean, false)] {
        let mut opts = CrossEntropyOptions::default();
        opts.reduction = reduction;
        opts.weight = weighted.then(|| weight.clone());
        let what = format!("{rows}x{classes} {reduction:?} weighted {weighted}");
        let case = CeCase::index(shape, x.clone(), targets.clone(), opts.clone(), vec![1.25]);
        let (loss, grad) = gpu().cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &[1.25]).unwrap();
        case.expect.check(&what, Got::outputs(Some(&loss), Some(&grad)));
        let forward = gpu().cross_entropy(&x, &targets, rows, classes, &opts).unwrap();
        case.expect.check(&format!("forward {what}"), Got::outputs(Some(&forward), None));
        let lp = cpu::log_softmax(&x, rows, classes).unwrap();
        let (want, _) = harness::checks::nll(&lp, &targets, shape, &opts, &[1.25]);
        want.check(&format!("nll_loss {what}"), &gpu().nll_loss(&lp, &targets, rows, classes, &opts).unwrap());
    }
    x[2 * (rows - 3)] = f32::NAN;
    let loss = gpu().cross_entropy(&x, &targets, rows, classes, &CrossEntropyOptions::default()).unwrap();
    assert!(loss[0].is_nan(), "a NaN row in the last block: {}", loss[0]);
    targets[65_540] = 7;
    let err = gpu().cross_entropy(&x, &targets, rows, classes, &CrossEntropyOptions::default()).unwrap_err();
    assert_eq!(err, Error::InvalidTarget { row: 65_540, value: 7, classes });
}

/// The encode API chunks too (bindings of 2 KiB), at any 4-byte offset, writing nothing
/// outside its ranges.
fn encode_api_chunks_at_offsets() {
    let small = gpu_with(|o| o.max_binding_size = Some(2048));
    let mut rng = Rng::new(22);
    let (rows, classes) = (11, 300);
    let n = rows * classes;
    let x = rng.logits(n, 5.0);
    let targets = rng.targets(rows, classes);
    let opts = CrossEntropyOptions::default();
    let case = CeCase::index(Shape::rows(rows, classes), x.clone(), targets.clone(), opts.clone(), vec![1.0]);
    let logits = upload(small, &[vec![0.0f32; 5], x.clone()].concat());
    let target_buf = upload(small, &targets);
    let out = upload(small, &vec![-1.0f32; n + 3 + 1]);
    let mut enc = small.device().create_command_encoder(&Default::default());
    let buffers = LossBuffers::new(target_buf.slice(..))
        .input(logits.slice(20..))
        .grad(out.slice(12..12 + n as u64 * 4))
        .loss(out.slice(0..4));
    small.encode_cross_entropy(&mut enc, &mut Workspace::new(small), &buffers, rows, classes, &opts).unwrap();
    small.queue().submit([enc.finish()]);
    let all = download(small, &out, 0, n + 4);
    case.expect.check("encode chunked", Got::outputs(Some(&all[..1]), Some(&all[3..3 + n])));
    assert_eq!(all[1..3], [-1.0, -1.0], "wrote between the loss and the gradient");
    assert_eq!(all[3 + n], -1.0, "wrote past the gradient");
}

/// A real batch past the 128 MiB binding of Mesa's adapters: 2048 × 32000 f32 logits (262 MB).
fn batch_larger_than_a_binding() {
    let mut rng = Rng::new(23);
    let (rows, classes) = (2048, 32000);
    let x = rng.logits(rows * classes, 10.0);
    let targets = rng.targets(rows, classes);
    let opts = CrossEntropyOptions::default();
    let (loss, grad) = gpu().cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &[1.0]).unwrap();
    let case = CeCase::index(Shape::rows(rows, classes), x, targets, opts, vec![1.0]);
    case.expect.check("2048x32000", Got::outputs(Some(&loss), Some(&grad)));
}

/// Split rows (partials per segment, merged exactly) match the CPU: ordinary rows, rows
/// whose segments are entirely -inf, NaN in one segment, ±1e4, all options; segments of 7
/// classes (read one by one) and of 8 (read as vec4 where the rows allow).
fn split_rows_match_cpu() {
    let mut rng = Rng::new(24);
    let splits = [gpu_with(|o| o.segment_classes = Some(7)), gpu_with(|o| o.segment_classes = Some(8))];
    let cases = [(5, 15), (3, 33), (4, 100), (2, 1000), (1, 4097), (2, 4100)];
    for (split, (rows, classes)) in splits.iter().flat_map(|s| cases.map(|c| (s, c))) {
        let mut rows_x: Vec<Vec<f32>> = rng.logits(rows * classes, 10.0).chunks(classes).map(<[f32]>::to_vec).collect();
        for row in &mut rows_x[1..] {
            row.iter_mut().take(classes / 2).for_each(|v| *v = f32::NEG_INFINITY);
        }
        if rows > 2 {
            rows_x[2][classes - 1] = 1e4;
            rows_x[rows - 1][classes / 3] = f32::NAN;
        }
        let x = rows_x.concat();
        let shape = Shape::rows(rows, classes);
        let targets: Vec<i32> = (0..rows).map(|r| ((r * 7 + classes - 1) % classes) as i32).collect();
        for opts in option_sets(classes, targets[0]) {
            let g = grad_output(&mut rng, rows, &opts);
            CeCase::index(shape, x.clone(), targets.clone(), opts, g).check_slice(split, "split", false);
        }
        harness::checks::log_softmax(&x, shape)
            .check("log_softmax split", &split.log_softmax(&x, rows, classes).unwrap());
        harness::checks::softmax(&x, shape).check("softmax split", &split.softmax(&x, rows, classes).unwrap());
    }
}

/// Extreme classification: 1,000,000 classes per row, split into segments read as vec4
/// (plain rows) and one by one (with smoothing).
fn a_million_classes_per_row() {
    let mut rng = Rng::new(26);
    let (rows, classes) = (3, 1_000_000);
    let x = rng.logits(rows * classes, 10.0);
    let targets = vec![0, 999_999, 123_456];
    for eps in [0.0, 0.1] {
        let mut opts = CrossEntropyOptions::default();
        opts.label_smoothing = eps;
        let case = CeCase::index(Shape::rows(rows, classes), x.clone(), targets.clone(), opts, vec![1.0]);
        case.check_slice(gpu(), "a million classes", false);
    }
    let shape = Shape::rows(rows, classes);
    harness::checks::log_softmax(&x, shape).check("log_softmax 1M", &gpu().log_softmax(&x, rows, classes).unwrap());
}

/// The gradient written in place over the logits equals the separate-buffer gradient, on
/// every kernel path (short rows, whole rows, split rows, row chunks), and the loss is
/// computed from the logits before they are overwritten.
fn gradient_in_place_over_the_logits(path: &'static Path) {
    let mut rng = Rng::new(27);
    let device = &path.gpu;
    for (rows, classes) in [(50, 10), (9, 1000), (40, 300), (3, 1028)] {
        if !path.fits(classes) {
            continue;
        }
        let x = rng.logits(rows * classes, 7.0);
        let targets = rng.targets(rows, classes);
        for eps in [0.0, 0.05] {
            let mut ce = CrossEntropyOptions::default();
            ce.label_smoothing = eps;
            let case = CeCase::index(Shape::rows(rows, classes), x.clone(), targets.clone(), ce.clone(), vec![1.0]);
            let logits = upload(device, &x);
            let target_buf = upload(device, &targets);
            let loss = upload(device, &[0.0f32]);
            let mut enc = device.device().create_command_encoder(&Default::default());
            let buffers =
                LossBuffers::new(target_buf.slice(..)).input(logits.slice(..)).loss(loss.slice(..)).grad_in_place();
            device.encode_cross_entropy(&mut enc, &mut Workspace::new(device), &buffers, rows, classes, &ce).unwrap();
            device.queue().submit([enc.finish()]);
            let got_loss = download(device, &loss, 0, 1);
            let got_grad = download(device, &logits, 0, rows * classes);
            let what = format!("in place {}", case.what(&path.label()));
            case.expect.check(&what, Got::outputs(Some(&got_loss), Some(&got_grad)));
        }
    }
    let one_target = upload(device, &[0i32]);
    let nll = LossBuffers::new(one_target.slice(..)).grad_in_place();
    let mut enc = device.device().create_command_encoder(&Default::default());
    let err =
        device.encode_nll_loss(&mut enc, &mut Workspace::new(device), &nll, 1, 1, &CrossEntropyOptions::default());
    assert!(matches!(err, Err(Error::InvalidArgument { argument: "grad_in_place", .. })), "{err:?}");
}
