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
