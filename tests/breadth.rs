//! The breadth of cross-entropy on the GPU against the f64 CPU twins: probability targets,
//! (N, C, d1, …) layouts for the softmax family, NLL and cross-entropy, and the fused
//! kernel's extras (z-loss, soft-capping, log-sum-exp, argmax, accuracy), on every
//! row-reduction path, whole, split into segments and chunked.

mod common;

use common::{
    Rng, adversarial_rows, assert_close, assert_elementwise, assert_gradient, assert_loss, download, gpu, gpus,
    grad_output, option_sets, targets_for, upload,
};
use std::sync::OnceLock;

use wgpu_loss::{CrossEntropyOptions, Extras, Gpu, GpuOptions, LossBuffers, Reduction, SoftmaxOp, Workspace, cpu};

/// Every path, built once per binary on the shared device, each with its name: the
/// default; 32 invocations per row; the workgroup-memory fallback (where the default uses
/// subgroups); rows split into segments of 40 classes; and that with batches chunked at 16 KiB.
fn all_paths() -> &'static [(&'static str, Gpu)] {
    static PATHS: OnceLock<Vec<(&'static str, Gpu)>> = OnceLock::new();
    PATHS.get_or_init(|| {
        let with = |edit: &dyn Fn(&mut GpuOptions)| {
            let mut opts = GpuOptions::default();
            edit(&mut opts);
            Gpu::from_device_with_options(gpu().device().clone(), gpu().queue().clone(), opts)
        };
        let mut paths = vec![
            ("default", with(&|_| {})),
            ("32 per row", with(&|o| o.row_workgroup_size = Some(32))),
            ("split", with(&|o| o.segment_classes = 40)),
            (
                "split + chunked",
                with(&|o| {
                    o.segment_classes = 40;
                    o.max_binding_size = Some(16 << 10);
                }),
            ),
        ];
        if gpu().uses_subgroups() {
            paths.push(("workgroup memory", with(&|o| o.subgroups = false)));
        }
        paths
    })
}

/// A probability row for each row: random non-negative masses, some rows normalised, some
/// not (PyTorch does not require it), some one-hot.
fn probability_targets(rng: &mut Rng, rows: usize, classes: usize) -> Vec<f32> {
    let mut y = Vec::with_capacity(rows * classes);
    for r in 0..rows {
        let row: Vec<f32> = match r % 3 {
            0 => (0..classes).map(|_| rng.uniform(0.0, 1.0)).collect(),
            1 => {
                let mut one_hot = vec![0.0; classes];
                one_hot[rng.below(classes)] = 1.0;
                one_hot
            }
            _ => {
                let raw: Vec<f32> = (0..classes).map(|_| rng.uniform(0.0, 1.0)).collect();
                let total: f32 = raw.iter().sum();
                raw.iter().map(|v| v / total).collect()
            }
        };
        y.extend(row);
    }
    y
}

fn check_probs(gpu: &Gpu, rows: usize, classes: usize, x: &[f32], y: &[f32], opts: &CrossEntropyOptions, g: &[f32]) {
    let what = format!("probs {rows}x{classes} {opts:?}");
    let (want_loss, want_grad) = cpu::cross_entropy_probs_with_grad(x, y, rows, classes, opts, g).unwrap();
    let loss = gpu.cross_entropy_probs(x, y, rows, classes, opts).unwrap();
    assert_loss(&format!("loss {what}"), &loss, &want_loss, x, rows, opts);
    let grad = gpu.cross_entropy_probs_grad(x, y, rows, classes, opts, g).unwrap();
    assert_gradient(&format!("grad {what}"), &grad, &want_grad);
    let (loss, grad) = gpu.cross_entropy_probs_with_grad(x, y, rows, classes, opts, g).unwrap();
    assert_loss(&format!("fused loss {what}"), &loss, &want_loss, x, rows, opts);
    assert_gradient(&format!("fused grad {what}"), &grad, &want_grad);
}

#[test]
fn probability_targets_match_cpu() {
    let mut rng = Rng::new(41);
    for (path, gpu) in all_paths() {
        eprintln!("path: {path}");
        for (rows, classes) in [(1, 1), (7, 3), (65, 33), (9, 257), (3, 1000)] {
            let x = rng.logits(rows * classes, 8.0);
            let y = probability_targets(&mut rng, rows, classes);
            for opts in option_sets(classes, -100) {
                let g = grad_output(&mut rng, rows, &opts);
                check_probs(gpu, rows, classes, &x, &y, &opts, &g);
            }
        }
    }
}

/// ±1e4, -inf (0·-inf is NaN where the target puts no mass, +inf where it does), ties,
/// denormals, and a NaN target poisoning only its row.
#[test]
fn probability_targets_on_adversarial_rows() {
    let mut rng = Rng::new(42);
    for gpu in gpus() {
        for classes in [1, 3, 33, 300] {
            let rows = adversarial_rows(classes);
            let n = rows.len();
            let x: Vec<f32> = rows.concat();
            let mut y = probability_targets(&mut rng, n, classes);
            y[0] = f32::NAN;
            for opts in option_sets(classes, -100) {
                let g = grad_output(&mut rng, n, &opts);
                check_probs(gpu, n, classes, &x, &y, &opts, &g);
            }
        }
    }
}

/// `(N, C, d)` inputs for the whole softmax family, NLL and cross-entropy, read in place.
#[test]
fn spatial_layouts_match_cpu() {
    let mut rng = Rng::new(43);
    for (path, gpu) in all_paths() {
        for (n, classes, spatial) in [(1, 1, 5), (2, 3, 7), (3, 21, 64), (2, 300, 9)] {
            let positions = n * spatial;
            let x = rng.logits(n * classes * spatial, 6.0);
            let dy = rng.logits(x.len(), 1.0);
            for op in [SoftmaxOp::LogSoftmax, SoftmaxOp::Softmax] {
                let want = cpu::softmax_spatial(op, &x, None, n, classes, spatial).unwrap();
                let got = gpu.softmax_spatial(op, &x, None, n, classes, spatial).unwrap();
                assert_elementwise(&format!("{op:?} {n}x{classes}x{spatial}"), &got, &want, &x);
                let backward = match op {
                    SoftmaxOp::LogSoftmax => SoftmaxOp::LogSoftmaxBackward,
                    _ => SoftmaxOp::SoftmaxBackward,
                };
                let want_dx = cpu::softmax_spatial(backward, &want, Some(&dy), n, classes, spatial).unwrap();
                let dx = gpu
                    .softmax_spatial(backward, &want, Some(&dy), n, classes, spatial)
                    .unwrap();
                assert_gradient(&format!("{backward:?} {n}x{classes}x{spatial}"), &dx, &want_dx);
            }
            let mut targets = rng.targets(positions, classes);
            targets[positions / 2] = -100;
            let log_probs = cpu::softmax_spatial(SoftmaxOp::LogSoftmax, &x, None, n, classes, spatial).unwrap();
            for mut opts in option_sets(classes, targets[0]) {
                opts.spatial = spatial;
                let targets = targets_for(&opts, &targets);
                let g = grad_output(&mut rng, positions, &opts);
                let what = format!("{path} {n}x{classes}x{spatial} {opts:?}");
                let (want_loss, want_grad) = cpu::cross_entropy_with_grad(&x, &targets, n, classes, &opts, &g).unwrap();
                let (loss, grad) = gpu
                    .cross_entropy_with_grad(&x, &targets, n, classes, &opts, &g)
                    .unwrap();
                assert_loss(&format!("ce {what}"), &loss, &want_loss, &x, positions, &opts);
                assert_gradient(&format!("ce grad {what}"), &grad, &want_grad);
                let loss = gpu.cross_entropy(&x, &targets, n, classes, &opts).unwrap();
                assert_loss(&format!("ce loss {what}"), &loss, &want_loss, &x, positions, &opts);
                let y = probability_targets(&mut rng, positions, classes);
                let y = cpu_layout(&y, n, classes, spatial);
                let (want_loss, want_grad) = cpu::cross_entropy_probs_with_grad(&x, &y, n, classes, &opts, &g).unwrap();
                let (loss, grad) = gpu
                    .cross_entropy_probs_with_grad(&x, &y, n, classes, &opts, &g)
                    .unwrap();
                assert_loss(&format!("probs {what}"), &loss, &want_loss, &x, positions, &opts);
                assert_gradient(&format!("probs grad {what}"), &grad, &want_grad);
                let want = cpu::nll_loss(&log_probs, &targets, n, classes, &opts).unwrap();
                let got = gpu.nll_loss(&log_probs, &targets, n, classes, &opts).unwrap();
                assert_loss(&format!("nll {what}"), &got, &want, &log_probs, positions, &opts);
                let want = cpu::nll_loss_grad(&targets, n, classes, &opts, &g).unwrap();
                let got = gpu.nll_loss_grad(&targets, n, classes, &opts, &g).unwrap();
                assert_gradient(&format!("nll grad {what}"), &got, &want);
            }
        }
    }
}

/// `(N·d, C)` rows → `(N, C, d)`.
fn cpu_layout(rows: &[f32], n: usize, classes: usize, spatial: usize) -> Vec<f32> {
    let mut out = vec![0.0; rows.len()];
    for b in 0..n {
        for s in 0..spatial {
            for c in 0..classes {
                out[(b * classes + c) * spatial + s] = rows[(b * spatial + s) * classes + c];
            }
        }
    }
    out
}

/// The hand-made layout check: a (2, 3, 2) batch is the (4, 3) batch transposed per sample.
#[test]
fn spatial_layout_is_pytorchs() {
    let rows = [1.0, 2.0, 3.0, 0.0, 0.0, 0.0, -1.0, 5.0, 2.0, 4.0, 4.0, 4.0];
    let nc_d = cpu_layout(&rows, 2, 3, 2);
    assert_eq!(nc_d[..6], [1.0, 0.0, 2.0, 0.0, 3.0, 0.0]);
    let by_rows = gpu().log_softmax(&rows, 4, 3).unwrap();
    let by_layout = gpu()
        .softmax_spatial(SoftmaxOp::LogSoftmax, &nc_d, None, 2, 3, 2)
        .unwrap();
    assert_elementwise("layout", &by_layout, &cpu_layout(&by_rows, 2, 3, 2), &rows);
}

fn extras_options(classes: usize, hit: i32) -> Vec<CrossEntropyOptions> {
    let mut all = Vec::new();
    for (k, mut opts) in option_sets(classes, hit).into_iter().enumerate() {
        (opts.z_loss_scale, opts.logit_softcap) = [(1e-3, 0.0), (0.0, 5.0), (1e-2, 30.0)][k % 3];
        all.push(opts);
    }
    all
}

/// z-loss and soft-capping change the loss and the gradient; lse, argmax and accuracy
/// come out of the same pass. Every path, every reduction, with smoothing and weights.
#[test]
fn fused_extras_match_cpu() {
    let mut rng = Rng::new(44);
    for (path, gpu) in all_paths() {
        for (rows, classes) in [(1, 1), (9, 2), (33, 31), (7, 97), (5, 1000)] {
            let mut x = rng.logits(rows * classes, 12.0);
            if classes > 2 {
                x[1] = f32::NEG_INFINITY;
                x[classes + 1] = x[classes]; // a tie
            }
            let mut targets = rng.targets(rows, classes);
            targets[rows / 2] = -100;
            for opts in extras_options(classes, targets[0]) {
                let targets = targets_for(&opts, &targets);
                let g = grad_output(&mut rng, rows, &opts);
                let want = cpu::cross_entropy_with_extras(&x, &targets, rows, classes, &opts, Extras::all(), Some(&g))
                    .unwrap();
                let got = gpu
                    .cross_entropy_with_extras(&x, &targets, rows, classes, &opts, Extras::all(), Some(&g))
                    .unwrap();
                let what = format!("{path} {rows}x{classes} {opts:?}");
                assert_loss(&format!("loss {what}"), &got.loss, &want.loss, &x, rows, &opts);
                assert_gradient(&format!("grad {what}"), &got.grad, &want.grad);
                assert_elementwise(&format!("lse {what}"), &got.lse, &want.lse, &x);
                assert_eq!(got.argmax, want.argmax, "argmax {what}");
                // correct / counted: one f32 division, which WGSL allows 2.5 ulps.
                let (got_acc, want_acc) = (
                    got.accuracy.into_iter().collect::<Vec<_>>(),
                    want.accuracy.into_iter().collect::<Vec<_>>(),
                );
                assert_close(&format!("accuracy {what}"), &got_acc, &want_acc, 0.0, 3e-7);
                let plain = gpu.cross_entropy(&x, &targets, rows, classes, &opts).unwrap();
                assert_loss(&format!("plain loss {what}"), &plain, &want.loss, &x, rows, &opts);
            }
        }
    }
}

/// lse and argmax on rows with NaN, ±inf, all -inf, ±0 ties, and huge logits with a cap.
#[test]
fn extras_on_adversarial_rows() {
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let rows: Vec<[f32; 4]> = vec![
        [1.0, nan, 2.0, nan],
        [1.0, inf, inf, 0.0],
        [-inf, -inf, -inf, -inf],
        [-0.0, 0.0, -1.0, -0.0],
        [3e38, -3e38, 1.0, 2.0],
        [5.0, 5.0, 5.0, 5.0],
    ];
    let x: Vec<f32> = rows.concat();
    let targets = [1, 1, 0, 0, 0, 3];
    for (path, gpu) in all_paths() {
        for cap in [0.0, 1.0, 50.0] {
            let mut opts = CrossEntropyOptions::default();
            opts.reduction = Reduction::None;
            opts.logit_softcap = cap;
            opts.z_loss_scale = 1e-4;
            let g = vec![1.0; rows.len()];
            let want =
                cpu::cross_entropy_with_extras(&x, &targets, rows.len(), 4, &opts, Extras::all(), Some(&g)).unwrap();
            let got = gpu
                .cross_entropy_with_extras(&x, &targets, rows.len(), 4, &opts, Extras::all(), Some(&g))
                .unwrap();
            let what = format!("{path} cap {cap}");
            assert_eq!(got.argmax, want.argmax, "argmax {what}");
            assert_close(&format!("lse {what}"), &got.lse, &want.lse, 1e-6 * 3e38, 1e-6);
            assert_close(&format!("loss {what}"), &got.loss, &want.loss, 1e-4, 1e-5);
            assert_gradient(&format!("grad {what}"), &got.grad, &want.grad);
        }
    }
}

/// The encode API: extras copied into the caller's buffers at offsets, probability targets
/// and a spatial batch recorded into one encoder, nothing else submitted.
#[test]
fn encode_api_extras_probs_and_spatial() {
    let gpu = gpu();
    let mut rng = Rng::new(45);
    let (rows, classes) = (37, 19);
    let x = rng.logits(rows * classes, 5.0);
    let targets = rng.targets(rows, classes);
    let y = probability_targets(&mut rng, rows, classes);
    let mut opts = CrossEntropyOptions::default();
    opts.z_loss_scale = 1e-3;
    let want = cpu::cross_entropy_with_extras(&x, &targets, rows, classes, &opts, Extras::all(), None).unwrap();
    let want_probs = cpu::cross_entropy_probs(&x, &y, rows, classes, &opts).unwrap();
    let logits = upload(gpu, &x);
    let target_buf = upload(gpu, &targets);
    let probs = upload(gpu, &y);
    // One output buffer: [pad, loss, lse × rows, argmax × rows, accuracy, probs loss].
    let out = upload(gpu, &vec![0f32; 4 + 2 * rows]);
    let at = |i: usize| 4 * i as u64;
    let mut ws = Workspace::new(gpu);
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    let buffers = LossBuffers::new(target_buf.slice(..))
        .input(logits.slice(..))
        .loss(out.slice(at(1)..at(2)))
        .lse(out.slice(at(2)..at(2 + rows)))
        .argmax(out.slice(at(2 + rows)..at(2 + 2 * rows)))
        .accuracy(out.slice(at(2 + 2 * rows)..at(3 + 2 * rows)));
    gpu.encode_cross_entropy(&mut encoder, &mut ws, &buffers, rows, classes, &opts)
        .unwrap();
    let mut ws2 = Workspace::new(gpu);
    let buffers = LossBuffers::new(probs.slice(..))
        .input(logits.slice(..))
        .loss(out.slice(at(3 + 2 * rows)..at(4 + 2 * rows)));
    gpu.encode_cross_entropy_probs(&mut encoder, &mut ws2, &buffers, rows, classes, &opts)
        .unwrap();
    gpu.queue().submit([encoder.finish()]);
    let got: Vec<f32> = download(gpu, &out, 0, 4 + 2 * rows);
    assert_eq!(got[0], 0.0, "nothing written before the loss");
    assert_loss("loss", &got[1..2], &want.loss, &x, rows, &opts);
    assert_elementwise("lse", &got[2..2 + rows], &want.lse, &x);
    let argmax: Vec<i32> = got[2 + rows..2 + 2 * rows].iter().map(|v| v.to_bits() as i32).collect();
    assert_eq!(argmax, want.argmax);
    assert_eq!(Some(got[2 + 2 * rows]), want.accuracy);
    assert_loss("probs loss", &got[3 + 2 * rows..], &want_probs, &x, rows, &opts);
}

#[test]
fn bad_arguments_are_errors() {
    let gpu = gpu();
    let d = CrossEntropyOptions::default;
    let with = |edit: &dyn Fn(&mut CrossEntropyOptions)| {
        let mut o = d();
        edit(&mut o);
        o
    };
    let err = |r: wgpu_loss::Result<Vec<f32>>| r.unwrap_err().to_string();
    // Probability targets of the wrong length name the argument.
    assert!(err(gpu.cross_entropy_probs(&[0.0; 6], &[0.5; 5], 2, 3, &d())).contains("targets"));
    for (field, opts) in [
        ("spatial", with(&|o| o.spatial = 0)),
        ("z_loss_scale", with(&|o| o.z_loss_scale = f32::NAN)),
        ("logit_softcap", with(&|o| o.logit_softcap = -1.0)),
    ] {
        let message = err(gpu.cross_entropy(&[0.0; 6], &[0, 1], 2, 3, &opts));
        assert!(message.contains(field), "{field}: {message}");
    }
    // The cross-entropy-only options are refused by NLL.
    let capped = with(&|o| o.logit_softcap = 2.0);
    assert!(err(gpu.nll_loss(&[0.0; 6], &[0, 1], 2, 3, &capped)).contains("logit_softcap"));
    assert!(cpu::nll_loss(&[0.0; 6], &[0, 1], 2, 3, &capped).is_err());
    // A spatial batch whose targets do not cover every position.
    let spatial = with(&|o| o.spatial = 2);
    assert!(err(gpu.cross_entropy(&[0.0; 12], &[0, 1], 2, 3, &spatial)).contains("targets"));
    // Backward ops need an upstream gradient, forward ops take none.
    let e = gpu.softmax_spatial(SoftmaxOp::SoftmaxBackward, &[0.5; 2], None, 1, 2, 1);
    assert!(e.unwrap_err().to_string().contains("grad_output"));
    // Extras need COPY_DST buffers.
    let plain = gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 64,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    });
    let t = upload(gpu, &[0i32, 1]);
    let x = upload(gpu, &[0f32; 6]);
    let mut ws = Workspace::new(gpu);
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    let buffers = LossBuffers::new(t.slice(..)).input(x.slice(..)).lse(plain.slice(..8));
    let e = gpu
        .encode_cross_entropy(&mut encoder, &mut ws, &buffers, 2, 3, &d())
        .unwrap_err();
    assert!(e.to_string().contains("COPY_DST"), "{e}");
}
