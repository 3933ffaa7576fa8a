//! The encode API: recording into the caller's encoder on the caller's buffers, at any
//! 4-byte-aligned offset, reusing workspaces, and refusing bad buffers before recording.

mod common;

use common::{Rng, assert_gradient, assert_loss, download, gpu, upload};
use wgpu_loss::{CrossEntropyOptions, Error, Gpu, LossBuffers, Reduction, Workspace, cpu};

fn encoder(gpu: &Gpu) -> wgpu::CommandEncoder {
    gpu.device().create_command_encoder(&Default::default())
}

/// Data placed at unaligned (but 4-byte-aligned) offsets inside larger buffers, as an app
/// with one big arena would: results match the CPU and nothing outside the range changes.
#[test]
fn cross_entropy_at_offsets_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(11);
    let (rows, classes) = (37, 45);
    let n = rows * classes;
    let x = rng.logits(n, 6.0);
    let targets = rng.targets(rows, classes);
    let mut opts = CrossEntropyOptions::default();
    opts.label_smoothing = 0.05;
    opts.weight = Some((0..classes).map(|c| 1.0 + c as f32 / 10.0).collect());
    let (pad_x, pad_t, pad_g) = (3usize, 5usize, 7usize);
    let logits = upload(gpu, &[vec![9.0f32; pad_x], x.clone()].concat());
    let target_buf = upload(gpu, &[vec![0i32; pad_t], targets.clone()].concat());
    let out = upload(gpu, &vec![-1.0f32; pad_g + n + 1 + 8]);
    let mut ws = Workspace::new(gpu);
    let mut enc = encoder(gpu);
    let grad_at = pad_g as u64 * 4;
    let loss_at = (pad_g + n + 4) as u64 * 4;
    let buffers = LossBuffers::new(target_buf.slice(pad_t as u64 * 4..))
        .input(logits.slice(pad_x as u64 * 4..))
        .grad(out.slice(grad_at..grad_at + n as u64 * 4))
        .loss(out.slice(loss_at..loss_at + 4));
    gpu.encode_cross_entropy(&mut enc, &mut ws, &buffers, rows, classes, &opts)
        .unwrap();
    gpu.queue().submit([enc.finish()]);

    let all = download(gpu, &out, 0, pad_g + n + 1 + 8);
    let (want_loss, want_grad) = cpu::cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &[1.0]).unwrap();
    assert_gradient("grad at offset", &all[pad_g..pad_g + n], &want_grad);
    assert_loss(
        "loss at offset",
        &all[pad_g + n + 4..][..1],
        &want_loss,
        &x,
        rows,
        &opts,
    );
    assert!(
        all[..pad_g]
            .iter()
            .chain(&all[pad_g + n..pad_g + n + 4])
            .all(|&v| v == -1.0),
        "wrote outside its ranges"
    );
}

/// A training loop records the same op on the same buffers every step: the workspace
/// reuses its bind group and parameters, and every step is right.
#[test]
fn repeated_recording_reuses_the_workspace() {
    let gpu = gpu();
    let mut rng = Rng::new(12);
    let (rows, classes) = (64, 10);
    let opts = CrossEntropyOptions::default();
    let targets = rng.targets(rows, classes);
    let logits = upload(gpu, &vec![0.0f32; rows * classes]);
    let target_buf = upload(gpu, &targets);
    let loss = upload(gpu, &[0.0f32]);
    let grad = upload(gpu, &vec![0.0f32; rows * classes]);
    let mut ws = Workspace::new(gpu);
    for step in 0..4 {
        let x = rng.logits(rows * classes, 3.0 + step as f32);
        gpu.queue().write_buffer(&logits, 0, bytemuck::cast_slice(&x));
        let mut enc = encoder(gpu);
        let buffers = LossBuffers::new(target_buf.slice(..))
            .input(logits.slice(..))
            .loss(loss.slice(..))
            .grad(grad.slice(..));
        gpu.encode_cross_entropy(&mut enc, &mut ws, &buffers, rows, classes, &opts)
            .unwrap();
        gpu.queue().submit([enc.finish()]);
        let (want_loss, want_grad) = cpu::cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &[1.0]).unwrap();
        assert_loss("loss", &download(gpu, &loss, 0, 1), &want_loss, &x, rows, &opts);
        assert_gradient("grad", &download(gpu, &grad, 0, rows * classes), &want_grad);
    }
}

/// Several ops in one encoder, each with its own workspace, one submit: log-softmax
/// then NLL on its output equals fused cross-entropy, and the backward kernels chain.
#[test]
fn ops_chain_in_one_encoder() {
    let gpu = gpu();
    let mut rng = Rng::new(13);
    let (rows, classes) = (20, 33);
    let n = rows * classes;
    let x = rng.logits(n, 5.0);
    let targets = rng.targets(rows, classes);
    let mut opts = CrossEntropyOptions::default();
    opts.reduction = Reduction::None;
    let logits = upload(gpu, &x);
    let target_buf = upload(gpu, &targets);
    let lp = upload(gpu, &vec![0.0f32; n]);
    let nll = upload(gpu, &vec![0.0f32; rows]);
    let ce = upload(gpu, &vec![0.0f32; rows]);
    let g_lp = upload(gpu, &vec![0.0f32; n]);
    let g_x = upload(gpu, &vec![0.0f32; n]);
    let ones = upload(gpu, &vec![1.0f32; rows]);
    let mut ws: Vec<Workspace> = (0..4).map(|_| Workspace::new(gpu)).collect();
    let mut enc = encoder(gpu);
    gpu.encode_log_softmax(&mut enc, &mut ws[0], logits.slice(..), lp.slice(..), rows, classes)
        .unwrap();
    let nll_buffers = LossBuffers::new(target_buf.slice(..))
        .input(lp.slice(..))
        .loss(nll.slice(..))
        .grad(g_lp.slice(..))
        .grad_output(ones.slice(..));
    gpu.encode_nll_loss(&mut enc, &mut ws[1], &nll_buffers, rows, classes, &opts)
        .unwrap();
    gpu.encode_log_softmax_backward(
        &mut enc,
        &mut ws[2],
        lp.slice(..),
        g_lp.slice(..),
        g_x.slice(..),
        rows,
        classes,
    )
    .unwrap();
    let ce_buffers = LossBuffers::new(target_buf.slice(..))
        .input(logits.slice(..))
        .loss(ce.slice(..));
    gpu.encode_cross_entropy(&mut enc, &mut ws[3], &ce_buffers, rows, classes, &opts)
        .unwrap();
    gpu.queue().submit([enc.finish()]);

    let want_loss = cpu::cross_entropy(&x, &targets, rows, classes, &opts).unwrap();
    let (_, want_grad) = cpu::cross_entropy_with_grad(&x, &targets, rows, classes, &opts, &vec![1.0; rows]).unwrap();
    assert_loss(
        "log_softmax → nll",
        &download(gpu, &nll, 0, rows),
        &want_loss,
        &x,
        rows,
        &opts,
    );
    assert_loss(
        "fused cross_entropy",
        &download(gpu, &ce, 0, rows),
        &want_loss,
        &x,
        rows,
        &opts,
    );
    assert_gradient("nll → log_softmax_backward", &download(gpu, &g_x, 0, n), &want_grad);
}

/// Bad buffers are refused with an `Err` naming the argument, before anything is
/// recorded, and the device stays usable.
#[test]
fn bad_buffers_are_refused_before_recording() {
    let gpu = gpu();
    let (rows, classes) = (4, 3);
    let opts = CrossEntropyOptions::default();
    let logits = upload(gpu, &[0.0f32; 12]);
    let targets = upload(gpu, &[0i32; 4]);
    let out = upload(gpu, &[0.0f32; 16]);
    let uniform_only = gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: None,
        size: 64,
        usage: wgpu::BufferUsages::UNIFORM,
        mapped_at_creation: false,
    });
    let mut ws = Workspace::new(gpu);
    let mut enc = encoder(gpu);
    let mut record =
        |buffers: LossBuffers<'_>| gpu.encode_cross_entropy(&mut enc, &mut ws, &buffers, rows, classes, &opts);

    let small = LossBuffers::new(targets.slice(..))
        .input(logits.slice(..40))
        .loss(out.slice(..));
    assert!(matches!(
        record(small),
        Err(Error::LengthMismatch {
            argument: "input",
            expected: 12,
            actual: 10
        })
    ));
    let no_storage = LossBuffers::new(targets.slice(..))
        .input(uniform_only.slice(..48))
        .loss(out.slice(..));
    assert!(matches!(
        record(no_storage),
        Err(Error::InvalidArgument { argument: "input", .. })
    ));
    let nothing_wanted = LossBuffers::new(targets.slice(..)).input(logits.slice(..));
    assert!(matches!(
        record(nothing_wanted),
        Err(Error::InvalidArgument {
            argument: "buffers",
            ..
        })
    ));
    let no_input = LossBuffers::new(targets.slice(..)).loss(out.slice(..));
    assert!(matches!(
        record(no_input),
        Err(Error::InvalidArgument { argument: "input", .. })
    ));
    let short_targets = LossBuffers::new(targets.slice(..8))
        .input(logits.slice(..))
        .loss(out.slice(..));
    assert!(matches!(
        record(short_targets),
        Err(Error::LengthMismatch {
            argument: "targets",
            ..
        })
    ));
    let short_grad = LossBuffers::new(targets.slice(..))
        .input(logits.slice(..))
        .grad(out.slice(..44));
    assert!(matches!(
        record(short_grad),
        Err(Error::LengthMismatch { argument: "grad", .. })
    ));
    let err = gpu.encode_cross_entropy(
        &mut encoder(gpu),
        &mut Workspace::new(gpu),
        &LossBuffers::new(targets.slice(..))
            .input(logits.slice(..))
            .loss(out.slice(..)),
        0,
        3,
        &opts,
    );
    assert!(matches!(err, Err(Error::EmptyBatch { rows: 0, classes: 3 })));
    let mut bad_eps = opts.clone();
    bad_eps.label_smoothing = -0.1;
    let err = gpu.encode_cross_entropy(
        &mut encoder(gpu),
        &mut Workspace::new(gpu),
        &LossBuffers::new(targets.slice(..))
            .input(logits.slice(..))
            .loss(out.slice(..)),
        rows,
        classes,
        &bad_eps,
    );
    assert!(matches!(
        err,
        Err(Error::InvalidArgument {
            argument: "label_smoothing",
            ..
        })
    ));
    let err = gpu.encode_log_softmax(
        &mut encoder(gpu),
        &mut Workspace::new(gpu),
        logits.slice(..),
        out.slice(..8),
        rows,
        classes,
    );
    assert!(matches!(err, Err(Error::LengthMismatch { argument: "output", .. })));
    // Still usable.
    assert_eq!(gpu.softmax(&[1.0, 1.0], 1, 2).unwrap(), vec![0.5, 0.5]);
}

/// Targets live on the device in the encode API, so an out-of-range one is not seen on
/// the host: that row's loss and gradient are NaN, the other rows are exact.
#[test]
fn out_of_range_target_on_the_device_gives_nan_row() {
    let gpu = gpu();
    let mut opts = CrossEntropyOptions::default();
    opts.reduction = Reduction::None;
    let x = [1.0f32, 2.0, 3.0, 1.0, 2.0, 3.0];
    let logits = upload(gpu, &x);
    let targets = upload(gpu, &[2i32, 7]);
    let loss = upload(gpu, &[0.0f32; 2]);
    let grad = upload(gpu, &[0.0f32; 6]);
    let mut enc = encoder(gpu);
    let buffers = LossBuffers::new(targets.slice(..))
        .input(logits.slice(..))
        .loss(loss.slice(..))
        .grad(grad.slice(..));
    gpu.encode_cross_entropy(&mut enc, &mut Workspace::new(gpu), &buffers, 2, 3, &opts)
        .unwrap();
    gpu.queue().submit([enc.finish()]);
    let l = download(gpu, &loss, 0, 2);
    let g = download(gpu, &grad, 0, 6);
    let want = cpu::cross_entropy(&x[..3], &[2], 1, 3, &opts).unwrap();
    assert!((l[0] - want[0]).abs() < 1e-6 && l[1].is_nan(), "{l:?}");
    assert!(
        g[..3].iter().all(|v| v.is_finite()) && g[3..].iter().all(|v| v.is_nan()),
        "{g:?}"
    );
}

/// The device reports the first out-of-range row and its value in the workspace's status,
/// which the caller checks when convenient; the next good recording clears it.
#[test]
fn status_reports_the_first_bad_target() {
    let gpu = gpu();
    let (rows, classes) = (300, 4);
    let logits = upload(gpu, &vec![0.5f32; rows * classes]);
    let mut targets: Vec<i32> = (0..rows as i32).map(|r| r % 4).collect();
    targets[299] = -5;
    targets[123] = 4;
    targets[200] = 99;
    let target_buf = upload(gpu, &targets);
    let loss = upload(gpu, &[0.0f32]);
    let grad = upload(gpu, &vec![0.0f32; rows * classes]);
    let mut ws = Workspace::new(gpu);
    for (op, with_grad) in [
        ("cross_entropy", false),
        ("cross_entropy", true),
        ("nll_loss", false),
        ("nll_loss", true),
    ] {
        let mut buffers = LossBuffers::new(target_buf.slice(..))
            .input(logits.slice(..))
            .loss(loss.slice(..));
        if with_grad {
            buffers = buffers.grad(grad.slice(..));
        }
        let mut enc = encoder(gpu);
        let opts = CrossEntropyOptions::default();
        if op == "cross_entropy" {
            gpu.encode_cross_entropy(&mut enc, &mut ws, &buffers, rows, classes, &opts)
                .unwrap();
        } else {
            gpu.encode_nll_loss(&mut enc, &mut ws, &buffers, rows, classes, &opts)
                .unwrap();
        }
        gpu.queue().submit([enc.finish()]);
        let err = ws.check_targets(gpu).unwrap_err();
        assert_eq!(
            err,
            Error::InvalidTarget {
                row: 123,
                value: 4,
                classes
            },
            "{op} grad={with_grad}"
        );
        assert!(download(gpu, &loss, 0, 1)[0].is_nan());
    }
    // The slice API reads the same status back with its results.
    let x = vec![0.5f32; rows * classes];
    let opts = CrossEntropyOptions::default();
    let err = gpu.cross_entropy(&x, &targets, rows, classes, &opts).unwrap_err();
    assert_eq!(
        err,
        Error::InvalidTarget {
            row: 123,
            value: 4,
            classes
        }
    );
    // A good batch afterwards: the device is fine and the status is clear.
    let good = upload(gpu, &vec![1i32; rows]);
    let mut enc = encoder(gpu);
    let buffers = LossBuffers::new(good.slice(..))
        .input(logits.slice(..))
        .loss(loss.slice(..));
    gpu.encode_cross_entropy(&mut enc, &mut ws, &buffers, rows, classes, &opts)
        .unwrap();
    gpu.queue().submit([enc.finish()]);
    ws.check_targets(gpu).unwrap();
    assert!((download(gpu, &loss, 0, 1)[0] - 4f32.ln()).abs() < 1e-6);
}

/// An app that already has a device embeds the library with `from_device`.
#[test]
fn from_device_uses_the_callers_device() {
    let own = gpu();
    let embedded = Gpu::from_device(own.device().clone(), own.queue().clone());
    assert_eq!(embedded.adapter_info().name, own.adapter_info().name);
    let lp = embedded.log_softmax(&[0.0, 0.0], 1, 2).unwrap();
    assert!((lp[0] + 2f32.ln()).abs() < 1e-7);
}

/// The tests run where `WGPU_BACKEND` says (CI runs them on Vulkan and on GL).
#[test]
fn runs_on_the_requested_backend() {
    let info = gpu().adapter_info();
    eprintln!(
        "adapter: {} ({:?}, {}), subgroups: {}",
        info.name,
        info.backend,
        info.driver,
        gpu().uses_subgroups()
    );
    if let Ok(wanted) = std::env::var("WGPU_BACKEND") {
        let backend = format!("{:?}", info.backend).to_lowercase();
        assert!(
            wanted.to_lowercase().contains(&backend),
            "WGPU_BACKEND={wanted} but running on {backend}"
        );
    }
}
