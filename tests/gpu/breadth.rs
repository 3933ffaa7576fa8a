//! The breadth of cross-entropy on the GPU against the f64 CPU twins: probability targets,
//! (N, C, d1, …) layouts for the softmax family, NLL and cross-entropy, and the fused
//! kernel's extras (z-loss, soft-capping, log-sum-exp, argmax, accuracy), on every path.

use std::sync::OnceLock;

use wgpu_loss::{CrossEntropyOptions, Extras, LossBuffers, Reduction, SoftmaxOp, Workspace, cpu};

use crate::harness::{
    self, CeCase, Got, Path, Rng, Shape, adversarial_rows, download, gpu, grad_output, option_sets,
    probability_targets, spatial_layout, targets_for, trials, upload,
};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(
        per_path: [
            probability_targets_match_cpu,
            probability_targets_on_adversarial_rows,
            spatial_layouts_match_cpu,
            fused_extras_match_cpu,
            extras_on_adversarial_rows,
        ],
        once: [spatial_layout_is_pytorchs, encode_api_extras_probs_and_spatial, bad_arguments_are_errors]
    )
}

/// Of the pairwise option sets, those every path runs (the default path runs all nine):
/// `none` plain, `sum` with smoothing and an ignored target, `mean` with weights.
fn on_every_path(k: usize, case: CeCase) -> CeCase {
    if [0, 5, 6].contains(&k) { case } else { case.on_default_path_only() }
}

fn probability_targets_match_cpu(path: &'static Path) {
    static CASES: OnceLock<Vec<CeCase>> = OnceLock::new();
    let cases = CASES.get_or_init(|| {
        let mut rng = Rng::new(41);
        let mut cases = Vec::new();
        for (rows, classes) in [(1, 1), (7, 3), (65, 33), (9, 257), (3, 1000)] {
            let x = rng.logits(rows * classes, 8.0);
            let y = probability_targets(&mut rng, rows, classes);
            for (k, opts) in option_sets(classes, -100).into_iter().enumerate() {
                let g = grad_output(&mut rng, rows, &opts);
                let case = CeCase::probs(Shape::rows(rows, classes), x.clone(), y.clone(), opts, g);
                cases.push(on_every_path(k, case));
            }
        }
        cases
    });
    cases.iter().for_each(|case| case.check_on(path));
}

/// ±1e4, -inf (0·-inf is NaN where the target puts no mass, +inf where it does), ties,
/// denormals, and a NaN target poisoning only its row.
fn probability_targets_on_adversarial_rows(path: &'static Path) {
    static CASES: OnceLock<Vec<CeCase>> = OnceLock::new();
    let cases = CASES.get_or_init(|| {
        let mut rng = Rng::new(42);
        let mut cases = Vec::new();
        for classes in [1, 3, 33, 300] {
            let rows = adversarial_rows(classes);
            let n = rows.len();
            let x: Vec<f32> = rows.concat();
            let mut y = probability_targets(&mut rng, n, classes);
            y[0] = f32::NAN;
            for (k, opts) in option_sets(classes, -100).into_iter().enumerate() {
                let g = grad_output(&mut rng, n, &opts);
                cases.push(on_every_path(k, CeCase::probs(Shape::rows(n, classes), x.clone(), y.clone(), opts, g)));
            }
        }
        cases
    });
    cases.iter().for_each(|case| case.check_on(path));
}

/// An NLL case: targets, options, upstream gradient, expected loss and gradient.
type NllCase = (Vec<i32>, CrossEntropyOptions, Vec<f32>, harness::Expect, harness::Expect);

/// One `(N, C, d)` batch: the softmax family's expected outputs and the loss cases.
struct Spatial {
    shape: Shape,
    x: Vec<f32>,
    dy: Vec<f32>,
    /// log-softmax then softmax: forward, and backward from the forward's output.
    softmax: Vec<(SoftmaxOp, harness::Expect, SoftmaxOp, harness::Expect)>,
    /// Class-index and probability-target cross-entropy per option set.
    losses: Vec<CeCase>,
    /// NLL of the log-probabilities per option set.
    nll: Vec<NllCase>,
    log_probs: Vec<f32>,
}

fn spatial_cases() -> &'static [Spatial] {
    static CASES: OnceLock<Vec<Spatial>> = OnceLock::new();
    CASES.get_or_init(|| {
        let mut rng = Rng::new(43);
        [(1, 1, 5), (2, 3, 7), (3, 21, 64), (2, 300, 9)]
            .into_iter()
            .map(|(n, classes, spatial)| {
                let shape = Shape::spatial(n, classes, spatial);
                let positions = n * spatial;
                let x = rng.logits(n * classes * spatial, 6.0);
                let dy = rng.logits(x.len(), 1.0);
                let softmax = [
                    (SoftmaxOp::LogSoftmax, SoftmaxOp::LogSoftmaxBackward),
                    (SoftmaxOp::Softmax, SoftmaxOp::SoftmaxBackward),
                ]
                .into_iter()
                .map(|(forward, backward)| {
                    let want = cpu::softmax_spatial(forward, &x, None, n, classes, spatial).unwrap();
                    let fwd = match forward {
                        SoftmaxOp::LogSoftmax => harness::checks::log_softmax(&x, shape),
                        _ => harness::checks::softmax(&x, shape),
                    };
                    let bwd = match backward {
                        SoftmaxOp::LogSoftmaxBackward => harness::checks::log_softmax_backward(&want, &dy, shape),
                        _ => harness::checks::softmax_backward(&want, &dy, shape),
                    };
                    (forward, fwd, backward, bwd)
                })
                .collect();
                let mut targets = rng.targets(positions, classes);
                targets[positions / 2] = -100;
                let log_probs = cpu::softmax_spatial(SoftmaxOp::LogSoftmax, &x, None, n, classes, spatial).unwrap();
                let (mut losses, mut nll) = (Vec::new(), Vec::new());
                for mut opts in option_sets(classes, targets[0]) {
                    opts.spatial = spatial;
                    let targets = targets_for(&opts, &targets);
                    let g = grad_output(&mut rng, positions, &opts);
                    let y = probability_targets(&mut rng, positions, classes);
                    let y = spatial_layout(&y, n, classes, spatial);
                    losses.push(CeCase::index(shape, x.clone(), targets.clone(), opts.clone(), g.clone()));
                    losses.push(CeCase::probs(shape, x.clone(), y, opts.clone(), g.clone()));
                    let (loss, grad) = harness::checks::nll(&log_probs, &targets, shape, &opts, &g);
                    nll.push((targets, opts, g, loss, grad));
                }
                Spatial { shape, x, dy, softmax, losses, nll, log_probs }
            })
            .collect()
    })
}

/// `(N, C, d)` inputs for the whole softmax family, NLL and cross-entropy, read in place.
fn spatial_layouts_match_cpu(path: &'static Path) {
    let gpu = &path.gpu;
    for case in spatial_cases().iter().filter(|c| path.fits(c.shape.classes * c.shape.spatial)) {
        let Shape { n, classes, spatial } = case.shape;
        let what = format!("{n}x{classes}x{spatial} {}", path.label());
        for (forward, fwd, backward, bwd) in &case.softmax {
            let got = gpu.softmax_spatial(*forward, &case.x, None, n, classes, spatial).unwrap();
            fwd.check(&format!("{forward:?} {what}"), &got);
            let dx = gpu.softmax_spatial(*backward, &fwd.want, Some(&case.dy), n, classes, spatial).unwrap();
            bwd.check(&format!("{backward:?} {what}"), &dx);
        }
        case.losses.iter().for_each(|c| c.check_on(path));
        for (targets, opts, g, loss, grad) in &case.nll {
            let got = gpu.nll_loss(&case.log_probs, targets, n, classes, opts).unwrap();
            loss.check(&format!("nll_loss {what} {opts:?}"), &got);
            let got = gpu.nll_loss_grad(targets, n, classes, opts, g).unwrap();
            grad.check(&format!("nll_loss_grad {what} {opts:?}"), &got);
        }
    }
}

/// The hand-made layout check: a (2, 3, 2) batch is the (4, 3) batch transposed per sample.
fn spatial_layout_is_pytorchs() {
    let rows = [1.0, 2.0, 3.0, 0.0, 0.0, 0.0, -1.0, 5.0, 2.0, 4.0, 4.0, 4.0];
    let nc_d = spatial_layout(&rows, 2, 3, 2);
    assert_eq!(nc_d[..6], [1.0, 0.0, 2.0, 0.0, 3.0, 0.0]);
    let by_rows = gpu().log_softmax(&rows, 4, 3).unwrap();
    let by_layout = gpu().softmax_spatial(SoftmaxOp::LogSoftmax, &nc_d, None, 2, 3, 2).unwrap();
    let expect = harness::checks::log_softmax(&nc_d, Shape::spatial(2, 3, 2));
    expect.check("log_softmax layout", &by_layout);
    expect.check("log_softmax layout of rows", &spatial_layout(&by_rows, 2, 3, 2));
}

fn extras_options(classes: usize, hit: i32) -> Vec<CrossEntropyOptions> {
    let mut all = Vec::new();
    for (k, mut opts) in option_sets(classes, hit).into_iter().enumerate() {
        (opts.z_loss_scale, opts.logit_softcap) = [(1e-3, 0.0), (0.0, 5.0), (1e-2, 30.0)][k % 3];
        all.push(opts);
    }
    all
}

/// Every output of `cross_entropy_with_extras` (and the plain loss) on `path`.
fn check_extras(path: &Path, case: &CeCase) {
    let (Shape { n, classes, .. }, harness::OwnedTargets::Index(targets)) = (case.shape, &case.targets) else {
        unreachable!("extras need class-index targets")
    };
    let what = case.what(&path.label());
    let got = path
        .gpu
        .cross_entropy_with_extras(&case.x, targets, n, classes, &case.opts, Extras::all(), Some(&case.g))
        .unwrap();
    case.expect.check(
        &format!("extras {what}"),
        Got {
            loss: Some(&got.loss),
            grad: Some(&got.grad),
            lse: Some(&got.lse),
            argmax: Some(&got.argmax),
            accuracy: Some(got.accuracy),
        },
    );
    let plain = path.gpu.cross_entropy(&case.x, targets, n, classes, &case.opts).unwrap();
    case.expect.check(&format!("plain {what}"), Got::outputs(Some(&plain), None));
}

/// z-loss and soft-capping change the loss and the gradient; lse, argmax and accuracy
/// come out of the same pass. Every path, every reduction, with smoothing and weights; 300
/// rows take the accuracy's reduction past its 256 invocations.
fn fused_extras_match_cpu(path: &'static Path) {
    static CASES: OnceLock<Vec<CeCase>> = OnceLock::new();
    let cases = CASES.get_or_init(|| {
        let mut rng = Rng::new(44);
        let mut cases = Vec::new();
        for (rows, classes) in [(1, 1), (9, 2), (33, 31), (7, 97), (5, 1000), (300, 7)] {
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
                cases.push(CeCase::index(Shape::rows(rows, classes), x.clone(), targets, opts, g));
            }
        }
        cases
    });
    for case in cases.iter().filter(|c| path.fits(c.shape.classes)) {
        check_extras(path, case);
    }
}

/// lse, argmax, loss and gradient on rows with NaN, ±inf, all -inf, ±0 ties, and huge
/// logits with a cap.
fn extras_on_adversarial_rows(path: &'static Path) {
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
    let targets = vec![1, 1, 0, 0, 0, 3];
    for cap in [0.0, 1.0, 50.0] {
        let mut opts = CrossEntropyOptions::default();
        opts.reduction = Reduction::None;
        opts.logit_softcap = cap;
        opts.z_loss_scale = 1e-4;
        let g = vec![1.0; rows.len()];
        let case = CeCase::index(Shape::rows(rows.len(), 4), x.clone(), targets.clone(), opts, g);
        check_extras(path, &case);
    }
}

/// The encode API: extras copied into the caller's buffers at offsets, probability targets
/// and a spatial batch recorded into one encoder, nothing else submitted.
fn encode_api_extras_probs_and_spatial() {
    let gpu = gpu();
    let mut rng = Rng::new(45);
    let (rows, classes) = (37, 19);
    let x = rng.logits(rows * classes, 5.0);
    let targets = rng.targets(rows, classes);
    let y = probability_targets(&mut rng, rows, classes);
    let mut opts = CrossEntropyOptions::default();
    opts.z_loss_scale = 1e-3;
    let shape = Shape::rows(rows, classes);
    let want = CeCase::index(shape, x.clone(), targets.clone(), opts.clone(), Vec::new());
    let want_probs = CeCase::probs(shape, x.clone(), y.clone(), opts.clone(), Vec::new());
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
    gpu.encode_cross_entropy(&mut encoder, &mut ws, &buffers, rows, classes, &opts).unwrap();
    let mut ws2 = Workspace::new(gpu);
    let buffers =
        LossBuffers::new(probs.slice(..)).input(logits.slice(..)).loss(out.slice(at(3 + 2 * rows)..at(4 + 2 * rows)));
    gpu.encode_cross_entropy_probs(&mut encoder, &mut ws2, &buffers, rows, classes, &opts).unwrap();
    gpu.queue().submit([encoder.finish()]);
    let got: Vec<f32> = download(gpu, &out, 0, 4 + 2 * rows);
    assert_eq!(got[0], 0.0, "nothing written before the loss");
    let argmax: Vec<i32> = got[2 + rows..2 + 2 * rows].iter().map(|v| v.to_bits() as i32).collect();
    want.expect.check(
        "encode extras",
        Got {
            loss: Some(&got[1..2]),
            lse: Some(&got[2..2 + rows]),
            argmax: Some(&argmax),
            accuracy: Some(Some(got[2 + 2 * rows])),
            ..Default::default()
        },
    );
    want_probs.expect.check("encode probs", Got::outputs(Some(&got[3 + 2 * rows..]), None));
}

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
    let e = gpu.encode_cross_entropy(&mut encoder, &mut ws, &buffers, 2, 3, &d()).unwrap_err();
    assert!(e.to_string().contains("COPY_DST"), "{e}");
}
