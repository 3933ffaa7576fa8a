//! The encode API: recording into the caller's encoder on the caller's buffers. Every op
//! reads and writes at 4-byte (never 16-byte) aligned offsets inside one larger buffer
//! whose other words must survive; workspaces are reused; several ops chain in one
//! encoder; bad buffers are refused before recording; device-side target errors reach the
//! workspace's status.

use half::f16;
use wgpu_loss::{CrossEntropyOptions, Error, Gpu, LossBuffers, Precision, Reduction, SoftmaxOp, Workspace, cpu};

use crate::harness::{self, Arena, CeCase, Got, Rng, Shape, download, gpu, trials, upload};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    trials!(once: [
        softmax_family_at_offsets,
        cross_entropy_at_offsets_matches_cpu,
        nll_at_offsets_matches_cpu,
        f16_logits_and_gradient_at_offsets,
        repeated_recording_reuses_the_workspace,
        ops_chain_in_one_encoder,
        bad_buffers_are_refused_before_recording,
        out_of_range_target_on_the_device_gives_nan_row,
        status_reports_the_first_bad_target,
        from_device_uses_the_callers_device,
        runs_on_the_requested_backend,
    ])
}

fn encoder(gpu: &Gpu) -> wgpu::CommandEncoder {
    gpu.device().create_command_encoder(&Default::default())
}

/// log-softmax, softmax, their backward passes and the `(N, C, d)` form, each reading and
/// writing at offsets inside one arena.
fn softmax_family_at_offsets() {
    let gpu = gpu();
    let mut rng = Rng::new(10);
    for (rows, classes, spatial) in [(5, 37, 1), (3, 64, 1), (2, 9, 5)] {
        let shape = Shape::spatial(rows, classes, spatial);
        let n = shape.len();
        let x = rng.logits(n, 6.0);
        let dy = rng.logits(n, 1.0);
        let y = cpu::softmax_spatial(SoftmaxOp::LogSoftmax, &x, None, rows, classes, spatial).unwrap();
        let p = cpu::softmax_spatial(SoftmaxOp::Softmax, &x, None, rows, classes, spatial).unwrap();
        let (mut ins, mut outs) = (Arena::new(), Arena::new());
        let (x_at, dy_at, y_at, p_at) = (ins.put(&x), ins.put(&dy), ins.put(&y), ins.put(&p));
        let out_at: Vec<_> = (0..4).map(|_| outs.output(n)).collect();
        ins.upload(gpu);
        outs.upload(gpu);
        let mut enc = encoder(gpu);
        let mut ws: Vec<Workspace> = (0..4).map(|_| Workspace::new(gpu)).collect();
        let ops = [
            (SoftmaxOp::LogSoftmax, x_at, None),
            (SoftmaxOp::Softmax, x_at, None),
            (SoftmaxOp::LogSoftmaxBackward, y_at, Some(dy_at)),
            (SoftmaxOp::SoftmaxBackward, p_at, Some(dy_at)),
        ];
        for (k, (op, input, dy)) in ops.into_iter().enumerate() {
            let (input, out) = (ins.slice(input), outs.slice(out_at[k]));
            let dy = dy.map(|d| ins.slice(d));
            match (spatial, op) {
                (1, SoftmaxOp::LogSoftmax) => gpu.encode_log_softmax(&mut enc, &mut ws[k], input, out, rows, classes),
                (1, SoftmaxOp::Softmax) => gpu.encode_softmax(&mut enc, &mut ws[k], input, out, rows, classes),
                (1, SoftmaxOp::LogSoftmaxBackward) => {
                    gpu.encode_log_softmax_backward(&mut enc, &mut ws[k], input, dy.unwrap(), out, rows, classes)
                }
                (1, _) => gpu.encode_softmax_backward(&mut enc, &mut ws[k], input, dy.unwrap(), out, rows, classes),
                _ => gpu.encode_softmax_spatial(&mut enc, &mut ws[k], op, input, dy, out, rows, classes, spatial),
            }
            .unwrap();
        }
        gpu.queue().submit([enc.finish()]);
        let what = format!("at offsets {rows}x{classes}x{spatial}");
        ins.read(gpu, &what);
        let got = outs.read(gpu, &what);
        harness::checks::log_softmax(&x, shape).check(&format!("log_softmax {what}"), &got[0]);
        harness::checks::softmax(&x, shape).check(&format!("softmax {what}"), &got[1]);
        harness::checks::log_softmax_backward(&y, &dy, shape).check(&format!("log_softmax_backward {what}"), &got[2]);
        harness::checks::softmax_backward(&p, &dy, shape).check(&format!("softmax_backward {what}"), &got[3]);
    }
}

/// Cross-entropy from an arena: logits, targets and a per-row (or one) upstream gradient
/// in, loss, gradient, lse, argmax and accuracy out, every range at a 4-byte offset.
fn cross_entropy_at_offsets_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(11);
    let (rows, classes) = (37, 45);
    let n = rows * classes;
    let x = rng.logits(n, 6.0);
    let targets = rng.targets(rows, classes);
    for reduction in [Reduction::None, Reduction::Mean] {
        let mut opts = CrossEntropyOptions::default();
        opts.reduction = reduction;
        opts.label_smoothing = 0.05;
        opts.weight = Some((0..classes).map(|c| 1.0 + c as f32 / 10.0).collect());
        let g = harness::grad_output(&mut rng, rows, &opts);
        let case = CeCase::index(Shape::rows(rows, classes), x.clone(), targets.clone(), opts.clone(), g.clone());
        let (mut ins, mut outs) = (Arena::new(), Arena::new());
        let (x_at, t_at, g_at) = (ins.put(&x), ins.put(&targets), ins.put(&g));
        let out_at = [g.len(), n, rows, rows, 1].map(|len| outs.output(len));
        ins.upload(gpu);
        outs.upload(gpu);
        let buffers = LossBuffers::new(ins.slice(t_at))
            .input(ins.slice(x_at))
            .grad_output(ins.slice(g_at))
            .loss(outs.slice(out_at[0]))
            .grad(outs.slice(out_at[1]))
            .lse(outs.slice(out_at[2]))
            .argmax(outs.slice(out_at[3]))
            .accuracy(outs.slice(out_at[4]));
        let mut enc = encoder(gpu);
        gpu.encode_cross_entropy(&mut enc, &mut Workspace::new(gpu), &buffers, rows, classes, &opts).unwrap();
        gpu.queue().submit([enc.finish()]);
        let what = format!("at offsets {reduction:?}");
        ins.read(gpu, &what);
        let got = outs.read(gpu, &what);
        let argmax: Vec<i32> = got[3].iter().map(|v| v.to_bits() as i32).collect();
        let outputs = Got {
            loss: Some(&got[0]),
            grad: Some(&got[1]),
            lse: Some(&got[2]),
            argmax: Some(&argmax),
            accuracy: Some(Some(got[4][0])),
        };
        case.expect.check(&what, outputs);
    }
}

/// NLL from an arena, with an upstream gradient buffer.
fn nll_at_offsets_matches_cpu() {
    let gpu = gpu();
    let mut rng = Rng::new(12);
    let (rows, classes) = (29, 13);
    let shape = Shape::rows(rows, classes);
    let lp = cpu::log_softmax(&rng.logits(rows * classes, 5.0), rows, classes).unwrap();
    let mut targets = rng.targets(rows, classes);
    targets[3] = -100;
    let mut opts = CrossEntropyOptions::default();
    opts.reduction = Reduction::None;
    let g: Vec<f32> = rng.logits(rows, 2.0);
    let (mut ins, mut outs) = (Arena::new(), Arena::new());
    let (lp_at, t_at, g_at) = (ins.put(&lp), ins.put(&targets), ins.put(&g));
    let (loss_at, grad_at) = (outs.output(rows), outs.output(rows * classes));
    ins.upload(gpu);
    outs.upload(gpu);
    let buffers = LossBuffers::new(ins.slice(t_at))
        .input(ins.slice(lp_at))
        .grad_output(ins.slice(g_at))
        .loss(outs.slice(loss_at))
        .grad(outs.slice(grad_at));
    let mut enc = encoder(gpu);
    gpu.encode_nll_loss(&mut enc, &mut Workspace::new(gpu), &buffers, rows, classes, &opts).unwrap();
    gpu.queue().submit([enc.finish()]);
    ins.read(gpu, "nll at offsets");
    let got = outs.read(gpu, "nll at offsets");
    let (want_loss, want_grad) = harness::checks::nll(&lp, &targets, shape, &opts, &g);
    want_loss.check("nll_loss at offsets", &got[0]);
    want_grad.check("nll_loss_grad at offsets", &got[1]);
}

/// f16 logits and gradient through `LossBuffers::precision` at offsets inside an arena
/// (an odd class count, so the halves end inside a word); without SHADER_F16, an `Err`.
fn f16_logits_and_gradient_at_offsets() {
    let gpu = gpu();
    let mut rng = Rng::new(13);
    let (rows, classes) = (7, 33);
    let n = rows * classes;
    let halves: Vec<f16> = rng.logits(n, 6.0).into_iter().map(f16::from_f32).collect();
    let widened: Vec<f32> = halves.iter().map(|h| h.to_f32()).collect();
    let targets = rng.targets(rows, classes);
    let opts = CrossEntropyOptions::default();
    let case = CeCase::index(Shape::rows(rows, classes), widened, targets.clone(), opts.clone(), vec![1.0]);
    let (mut ins, mut outs) = (Arena::new(), Arena::new());
    let (x_at, t_at) = (ins.put(&halves), ins.put(&targets));
    let (loss_at, grad_at) = (outs.output(1), outs.output(n.div_ceil(2)));
    ins.upload(gpu);
    outs.upload(gpu);
    let buffers = LossBuffers::new(ins.slice(t_at))
        .input(ins.slice(x_at))
        .loss(outs.slice(loss_at))
        .grad(outs.slice(grad_at))
        .precision(Precision::F16);
    let mut enc = encoder(gpu);
    let result = gpu.encode_cross_entropy(&mut enc, &mut Workspace::new(gpu), &buffers, rows, classes, &opts);
    if !gpu.device().features().contains(wgpu::Features::SHADER_F16) {
        assert!(result.unwrap_err().to_string().contains("SHADER_F16"));
        return;
    }
    result.unwrap();
    gpu.queue().submit([enc.finish()]);
    ins.read(gpu, "f16 at offsets");
    let got = outs.read(gpu, "f16 at offsets");
    let grad: Vec<f32> = bytemuck::cast_slice::<f32, f16>(&got[1])[..n].iter().map(|h| h.to_f32()).collect();
    // The grad range holds n halves and, for odd n, half a word the kernel must not touch.
    if n % 2 == 1 {
        let last = bytemuck::cast_slice::<f32, u16>(&got[1])[n];
        let sentinel_high_half = (harness::arena::SENTINEL >> 16) as u16;
        assert_eq!(last, sentinel_high_half, "f16 at offsets: the half after the gradient changed");
    }
    case.expect.check("f16 at offsets", Got::outputs(Some(&got[0]), None));
    let tol: Vec<f64> = case
        .expect
        .grad
        .want
        .iter()
        .zip(&case.expect.grad.tol)
        .map(|(w, t)| t + f64::from(w.abs()) / 2048.0 + 1.0 / 16_777_216.0)
        .collect();
    harness::tol::assert_within("f16 grad at offsets", &grad, &case.expect.grad.want, &tol);
}

/// A training loop records the same op on the same buffers every step: the workspace
/// reuses its bind group and parameters, and every step is right.
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
        let buffers =
            LossBuffers::new(target_buf.slice(..)).input(logits.slice(..)).loss(loss.slice(..)).grad(grad.slice(..));
        gpu.encode_cross_entropy(&mut enc, &mut ws, &buffers, rows, classes, &opts).unwrap();
        gpu.queue().submit([enc.finish()]);
        let case = CeCase::index(Shape::rows(rows, classes), x, targets.clone(), opts.clone(), vec![1.0]);
        let (l, g) = (download(gpu, &loss, 0, 1), download(gpu, &grad, 0, rows * classes));
        case.expect.check(&format!("step {step}"), Got::outputs(Some(&l), Some(&g)));
    }
}

/// Several ops in one encoder, each with its own workspace, one submit: log-softmax
/// then NLL on its output equals fused cross-entropy, and the backward kernels chain.
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
    gpu.encode_log_softmax(&mut enc, &mut ws[0], logits.slice(..), lp.slice(..), rows, classes).unwrap();
    let nll_buffers = LossBuffers::new(target_buf.slice(..))
        .input(lp.slice(..))
        .loss(nll.slice(..))
        .grad(g_lp.slice(..))
        .grad_output(ones.slice(..));
    gpu.encode_nll_loss(&mut enc, &mut ws[1], &nll_buffers, rows, classes, &opts).unwrap();
    gpu.encode_log_softmax_backward(&mut enc, &mut ws[2], lp.slice(..), g_lp.slice(..), g_x.slice(..), rows, classes)
        .unwrap();
    let ce_buffers = LossBuffers::new(target_buf.slice(..)).input(logits.slice(..)).loss(ce.slice(..));
    gpu.encode_cross_entropy(&mut enc, &mut ws[3], &ce_buffers, rows, classes, &opts).unwrap();
    gpu.queue().submit([enc.finish()]);
    // The chain rounds through the stored log-probabilities: held to the cross-entropy
    // tolerance of logits and to the backward's tolerance of those log-probabilities.
    let case = CeCase::index(Shape::rows(rows, classes), x, targets, opts, vec![1.0; rows]);
    case.expect.check("log_softmax → nll", Got::outputs(Some(&download(gpu, &nll, 0, rows)), None));
    case.expect.check("fused cross_entropy", Got::outputs(Some(&download(gpu, &ce, 0, rows)), None));
    let chained = download(gpu, &g_x, 0, n);
    case.expect.check("nll → log_softmax_backward", Got::outputs(None, Some(&chained)));
}

/// Bad buffers are refused with an `Err` naming the argument, before anything is
/// recorded, and the device stays usable.
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

    let small = LossBuffers::new(targets.slice(..)).input(logits.slice(..40)).loss(out.slice(..));
    assert!(matches!(record(small), Err(Error::LengthMismatch { argument: "input", expected: 12, actual: 10 })));
    let no_storage = LossBuffers::new(targets.slice(..)).input(uniform_only.slice(..48)).loss(out.slice(..));
    assert!(matches!(record(no_storage), Err(Error::InvalidArgument { argument: "input", .. })));
    let nothing_wanted = LossBuffers::new(targets.slice(..)).input(logits.slice(..));
    assert!(matches!(record(nothing_wanted), Err(Error::InvalidArgument { argument: "buffers", .. })));
    let no_input = LossBuffers::new(targets.slice(..)).loss(out.slice(..));
    assert!(matches!(record(no_input), Err(Error::InvalidArgument { argument: "input", .. })));
    let short_targets = LossBuffers::new(targets.slice(..8)).input(logits.slice(..)).loss(out.slice(..));
    assert!(matches!(record(short_targets), Err(Error::LengthMismatch { argument: "targets", .. })));
    let short_grad = LossBuffers::new(targets.slice(..)).input(logits.slice(..)).grad(out.slice(..44));
    assert!(matches!(record(short_grad), Err(Error::LengthMismatch { argument: "grad", .. })));
    let err = gpu.encode_cross_entropy(
        &mut encoder(gpu),
        &mut Workspace::new(gpu),
        &LossBuffers::new(targets.slice(..)).input(logits.slice(..)).loss(out.slice(..)),
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
        &LossBuffers::new(targets.slice(..)).input(logits.slice(..)).loss(out.slice(..)),
        rows,
        classes,
        &bad_eps,
    );
    assert!(matches!(err, Err(Error::InvalidArgument { argument: "label_smoothing", .. })));
    let err = gpu.encode_log_softmax(
        &mut encoder(gpu),
        &mut Workspace::new(gpu),
        logits.slice(..),
        out.slice(..8),
        rows,
        classes,
    );
    assert!(matches!(err, Err(Error::LengthMismatch { argument: "output", .. })));
    // One buffer read and written by one dispatch, even at disjoint ranges: WebGPU forbids
    // it, so the op refuses it before recording instead of poisoning the caller's encoder.
    let shared = upload(gpu, &[0.0f32; 32]);
    let err = gpu.encode_log_softmax(
        &mut encoder(gpu),
        &mut Workspace::new(gpu),
        shared.slice(..48),
        shared.slice(64..112),
        rows,
        classes,
    );
    assert!(matches!(err, Err(Error::InvalidArgument { argument: "output", .. })), "{err:?}");
    let same = LossBuffers::new(targets.slice(..)).input(shared.slice(..48)).loss(shared.slice(64..68));
    assert!(matches!(
        gpu.encode_cross_entropy(&mut encoder(gpu), &mut Workspace::new(gpu), &same, rows, classes, &opts),
        Err(Error::InvalidArgument { argument: "loss", .. })
    ));
    // Still usable.
    assert_eq!(gpu.softmax(&[1.0, 1.0], 1, 2).unwrap(), vec![0.5, 0.5]);
}

/// Targets live on the device in the encode API, so an out-of-range one is not seen on
/// the host: that row's loss and gradient are NaN, the other rows are exact.
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
    let buffers = LossBuffers::new(targets.slice(..)).input(logits.slice(..)).loss(loss.slice(..)).grad(grad.slice(..));
    gpu.encode_cross_entropy(&mut enc, &mut Workspace::new(gpu), &buffers, 2, 3, &opts).unwrap();
    gpu.queue().submit([enc.finish()]);
    let l = download(gpu, &loss, 0, 2);
    let g = download(gpu, &grad, 0, 6);
    let case = CeCase::index(Shape::rows(1, 3), x[..3].to_vec(), vec![2], opts.clone(), vec![1.0]);
    case.expect.check("the good row", Got::outputs(Some(&l[..1]), Some(&g[..3])));
    assert!(l[1].is_nan(), "{l:?}");
    assert!(g[3..].iter().all(|v| v.is_nan()), "{g:?}");
}

/// The device reports the first out-of-range row and its value in the workspace's status,
/// which the caller checks when convenient; the next good recording clears it.
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
    for (op, with_grad) in [("cross_entropy", false), ("cross_entropy", true), ("nll_loss", false), ("nll_loss", true)]
    {
        let mut buffers = LossBuffers::new(target_buf.slice(..)).input(logits.slice(..)).loss(loss.slice(..));
        if with_grad {
            buffers = buffers.grad(grad.slice(..));
        }
        let mut enc = encoder(gpu);
        let opts = CrossEntropyOptions::default();
        if op == "cross_entropy" {
            gpu.encode_cross_entropy(&mut enc, &mut ws, &buffers, rows, classes, &opts).unwrap();
        } else {
            gpu.encode_nll_loss(&mut enc, &mut ws, &buffers, rows, classes, &opts).unwrap();
        }
        gpu.queue().submit([enc.finish()]);
        let err = ws.check_targets(gpu).unwrap_err();
        assert_eq!(err, Error::InvalidTarget { row: 123, value: 4, classes }, "{op} grad={with_grad}");
        assert!(download(gpu, &loss, 0, 1)[0].is_nan());
        // The status buffer, copied by hand to an offset of the caller's: [total weight,
        // 0xffff_ffff - first bad row, its value, 0].
        let mut arena = Arena::new();
        let at = arena.output(4);
        arena.upload(gpu);
        let mut enc = encoder(gpu);
        let status = arena.slice(at);
        enc.copy_buffer_to_buffer(ws.status_buffer(), 0, status.buffer(), status.offset(), 16);
        gpu.queue().submit([enc.finish()]);
        let words: Vec<u32> = arena.read(gpu, "status")[0].iter().map(|v| v.to_bits()).collect();
        assert_eq!(words[1..], [u32::MAX - 123, 4, 0], "{op} grad={with_grad}: status words");
    }
    // The slice API reads the same status back with its results.
    let x = vec![0.5f32; rows * classes];
    let opts = CrossEntropyOptions::default();
    let err = gpu.cross_entropy(&x, &targets, rows, classes, &opts).unwrap_err();
    assert_eq!(err, Error::InvalidTarget { row: 123, value: 4, classes });
    // A good batch afterwards: the device is fine and the status is clear.
    let good = upload(gpu, &vec![1i32; rows]);
    let mut enc = encoder(gpu);
    let buffers = LossBuffers::new(good.slice(..)).input(logits.slice(..)).loss(loss.slice(..));
    gpu.encode_cross_entropy(&mut enc, &mut ws, &buffers, rows, classes, &opts).unwrap();
    gpu.queue().submit([enc.finish()]);
    ws.check_targets(gpu).unwrap();
    let case = CeCase::index(Shape::rows(rows, classes), vec![0.5; rows * classes], vec![1; rows], opts, Vec::new());
    case.expect.check("good batch", Got::outputs(Some(&download(gpu, &loss, 0, 1)), None));
}

/// An app that already has a device embeds the library with `from_device`.
fn from_device_uses_the_callers_device() {
    let own = gpu();
    let embedded = Gpu::from_device(own.device().clone(), own.queue().clone());
    assert_eq!(embedded.adapter_info().name, own.adapter_info().name);
    let lp = embedded.log_softmax(&[0.0, 0.0], 1, 2).unwrap();
    harness::checks::log_softmax(&[0.0, 0.0], Shape::rows(1, 2)).check("log_softmax embedded", &lp);
}

/// The tests run where `WGPU_BACKEND` says (CI runs them on Vulkan and on GL).
fn runs_on_the_requested_backend() {
    let info = gpu().adapter_info();
    eprintln!("adapter: {} ({:?}, {}), subgroups: {}", info.name, info.backend, info.driver, gpu().uses_subgroups());
    if let Ok(wanted) = std::env::var("WGPU_BACKEND") {
        let backend = format!("{:?}", info.backend).to_lowercase();
        assert!(wanted.to_lowercase().contains(&backend), "WGPU_BACKEND={wanted} but running on {backend}");
    }
}
