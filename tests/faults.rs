//! Faults: a lost device and an impatient readback give `Err`, never a panic or a hang.

use std::time::Duration;

use wgpu_loss::{CrossEntropyOptions, Error, Gpu, GpuOptions};

/// The GPU tests' per-element tolerances (tests/gpu/harness/tol.rs).
#[path = "gpu/harness/tol.rs"]
#[allow(dead_code)]
mod tol;

/// A destroyed device: every op returns `Err` (no panic, no hang).
#[test]
fn lost_device_gives_err() {
    let gpu = Gpu::new().unwrap();
    let x = vec![0.5f32; 64 * 10];
    let targets = vec![1i32; 64];
    assert!(gpu.cross_entropy(&x, &targets, 64, 10, &CrossEntropyOptions::default()).is_ok());
    gpu.device().destroy();
    let err = gpu.cross_entropy(&x, &targets, 64, 10, &CrossEntropyOptions::default()).unwrap_err();
    eprintln!("after destroy: {err}");
    assert!(matches!(err, Error::Device(_) | Error::Readback(_)), "{err:?}");
    assert!(gpu.log_softmax(&x, 64, 10).is_err());
}

/// A readback that cannot finish within the caller's timeout returns `Err(Readback)`, and
/// the device stays usable: the next call on it succeeds. The batch (16384 × 4096, 256 MiB
/// in and out) takes far longer than the 1 ms allowed on any adapter: ~0.1 s of kernel on
/// lavapipe, and more than 1 ms of transfer alone on a discrete GPU. On GL, wgpu runs a
/// submission's commands inside `queue.submit` (about 0.25 s here on llvmpipe, against
/// 0.1 ms on Vulkan), so the results are ready before the readback waits at all: there the
/// timeout cannot fire, and the call must return the right values instead.
#[test]
fn readback_timeout_gives_err_and_the_device_stays_usable() {
    let patient = Gpu::new().unwrap();
    let mut opts = GpuOptions::default();
    opts.readback_timeout = Duration::from_millis(1);
    let impatient = Gpu::from_device_with_options(patient.device().clone(), patient.queue().clone(), opts);
    let (rows, classes) = (16384, 4096);
    let x = vec![0.25f32; rows * classes];
    let want = -(classes as f32).ln();
    let close = |lp: &[f32]| lp.iter().all(|&v| (v - want).abs() <= 4.0 * f32::EPSILON * want.abs());
    match (impatient.log_softmax(&x, rows, classes), patient.adapter_info().backend) {
        (Err(Error::Readback(e)), backend) if backend != wgpu::Backend::Gl => eprintln!("impatient readback: {e}"),
        (Ok(lp), wgpu::Backend::Gl) => assert!(lp.len() == x.len() && close(&lp), "GL: wrong values"),
        (Ok(lp), backend) => panic!("{backend:?}: a 1 ms readback returned {} values instead of Err", lp.len()),
        (Err(e), backend) => panic!("{backend:?}: {e:?}"),
    }
    assert_eq!(patient.softmax(&[1.0, 1.0], 1, 2).unwrap(), vec![0.5, 0.5]);
    let lp = patient.log_softmax(&x[..3 * classes], 3, classes).unwrap();
    assert!(close(&lp), "{:?}", &lp[..4]);
}

/// A batch larger than the device's largest buffer is refused with `Err(TooLarge)` before
/// anything is allocated, and the `Gpu` stays usable for smaller ones.
#[test]
fn batch_beyond_the_device_buffer_limit_is_an_error() {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).expect("an adapter");
    let mut limits = adapter.limits();
    limits.max_buffer_size = 1 << 20;
    let (device, queue) = pollster::block_on(
        adapter.request_device(&wgpu::DeviceDescriptor { required_limits: limits, ..Default::default() }),
    )
    .unwrap();
    let gpu = Gpu::from_device(device, queue);
    let (rows, classes) = (300, 1000);
    let x = vec![0.5f32; rows * classes];
    let err = gpu.cross_entropy_with_grad(&x, &vec![1; rows], rows, classes, &CrossEntropyOptions::default(), &[1.0]);
    assert!(matches!(err, Err(Error::TooLarge { limit: 1048576, .. })), "{err:?}");
    assert!(matches!(gpu.log_softmax(&x, rows, classes), Err(Error::TooLarge { .. })));
    let small = gpu.cross_entropy(&x[..20 * classes], &[1; 20], 20, classes, &CrossEntropyOptions::default()).unwrap();
    assert!((small[0] - (classes as f32).ln()).abs() < 1e-5);
}

/// On a device whose largest buffer (1 MiB) cannot hold the `tokens × vocab` logits (512
/// × 1024 f32, 2 MiB), the fused linear + cross-entropy op runs — its scratch holds a
/// chunk of tokens at a time — and matches its CPU twin.
#[test]
fn fused_linear_cross_entropy_runs_where_the_logits_would_not_fit() {
    let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
    let adapter = pollster::block_on(instance.request_adapter(&Default::default())).expect("an adapter");
    let mut limits = adapter.limits();
    limits.max_buffer_size = 1 << 20;
    limits.max_storage_buffer_binding_size = limits.max_storage_buffer_binding_size.min(1 << 20);
    let (device, queue) = pollster::block_on(
        adapter.request_device(&wgpu::DeviceDescriptor { required_limits: limits, ..Default::default() }),
    )
    .unwrap();
    let gpu = Gpu::from_device(device, queue);
    let (tokens, hidden, vocab) = (512, 16, 1024);
    assert!(4 * tokens * vocab > 1 << 20);
    let h: Vec<f32> = (0..tokens * hidden).map(|i| ((i * 37 % 101) as f32 / 50.0) - 1.0).collect();
    let w: Vec<f32> = (0..vocab * hidden).map(|i| ((i * 53 % 97) as f32 / 200.0) - 0.25).collect();
    let targets: Vec<i32> = (0..tokens).map(|t| (t * 7 % vocab) as i32).collect();
    let opts = CrossEntropyOptions::default();
    let got = gpu.linear_cross_entropy_with_grad(&h, &w, None, &targets, tokens, hidden, vocab, &opts, &[1.0]).unwrap();
    let want =
        wgpu_loss::cpu::linear_cross_entropy_with_grad(&h, &w, None, &targets, tokens, hidden, vocab, &opts, &[1.0])
            .unwrap();
    let tol = tol::linear_cross_entropy(&h, &w, None, &targets, (tokens, hidden, vocab), &opts, &[1.0]);
    for (name, got, want, tol) in [
        ("loss", &got.loss, &want.loss, &tol.loss),
        ("grad_hidden", &got.grad_hidden, &want.grad_hidden, &tol.grad_hidden),
        ("grad_weight", &got.grad_weight, &want.grad_weight, &tol.grad_weight),
    ] {
        tol::compare(&format!("lowered limits {name}"), got, want, tol).unwrap();
    }
}
