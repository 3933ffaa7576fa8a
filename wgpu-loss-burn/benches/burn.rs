//! burn's own losses against this crate's through burn, on one burn wgpu device under
//! autodiff (fusion on): `CrossEntropyLoss` against `cross_entropy` (forward + backward),
//! and `Linear` + `CrossEntropyLoss` against `linear_cross_entropy`. Each pair's loss and
//! gradients are checked against each other before timing; then the median of 7 runs after
//! 2 warm-ups (one run with `--test`, as `cargo bench -- --test` asks), each run ending in a
//! device sync, and the bytes burn's allocator holds after a run from a cleaned pool (its
//! pages are kept, so this is the run's peak) plus this crate's own buffers.
//!
//! `cargo bench -p wgpu-loss-burn --bench burn`

use std::time::{Duration, Instant};

use burn::module::Param;
use burn::nn::Linear;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::wgpu::WgpuBackend;
use burn::tensor::{Device, DeviceKind, Distribution, Int, Tensor};

/// What one side of a pair computes: the loss and the gradients asked for.
type Run<'a> = Box<dyn Fn() -> Vec<Tensor<2>> + 'a>;

struct Measured {
    time: Duration,
    bytes: u64,
}

fn measure(device: &Device, runs: usize, run: &Run<'_>) -> Measured {
    device.memory_cleanup();
    let mut times = Vec::new();
    let mut bytes = 0;
    for i in 0..runs + 2 {
        let start = Instant::now();
        let outputs = run();
        device.sync().expect("device sync");
        if i >= 2 || runs == 1 {
            times.push(start.elapsed());
        }
        bytes = bytes.max(device.memory_pool_usage().map_or(0, |u| u.bytes_reserved));
        drop(outputs);
        if runs == 1 {
            break;
        }
    }
    times.sort();
    Measured { time: times[times.len() / 2], bytes: bytes + wgpu_loss_burn::allocated_bytes(device).unwrap_or(0) }
}

/// Largest |a − b| over the largest |b|, over all outputs.
fn relative_difference(a: Vec<Tensor<2>>, b: Vec<Tensor<2>>) -> f32 {
    let read = |t: Tensor<2>| t.into_data().convert::<f32>().try_into_vec::<f32>().expect("read back");
    a.into_iter()
        .zip(b)
        .map(|(a, b)| {
            let (a, b) = (read(a), read(b));
            let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(f32::MIN_POSITIVE);
            a.iter().zip(&b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
        })
        .fold(0f32, f32::max)
}

fn compare(device: &Device, name: &str, runs: usize, theirs: Run<'_>, ours: Run<'_>) {
    let difference = relative_difference(ours(), theirs());
    assert!(difference < 1e-3, "{name}: outputs differ by {difference} of their largest value");
    let theirs = measure(device, runs, &theirs);
    let ours = measure(device, runs, &ours);
    let mib = |b: u64| b as f64 / (1 << 20) as f64;
    println!(
        "| {name} | {:.1} | {:.1} | {:.2}× | {:.0} | {:.0} |",
        theirs.time.as_secs_f64() * 1e3,
        ours.time.as_secs_f64() * 1e3,
        theirs.time.as_secs_f64() / ours.time.as_secs_f64(),
        mib(theirs.bytes),
        mib(ours.bytes),
    );
}

fn main() {
    let runs = if std::env::args().any(|a| a == "--test") { 1 } else { 7 };
    let device = wgpu_loss_burn::wgpu_device(DeviceKind::DefaultDevice, WgpuBackend::Auto).expect("burn's wgpu device");
    let gpu = wgpu_loss_burn::gpu(&device).expect("registered");
    println!("burn device on {:?}; median of {runs}", gpu.adapter_info().backend);
    let limit = gpu.device().limits().max_storage_buffer_binding_size;
    let device = device.autodiff();
    println!("| op | burn (ms) | wgpu-loss-burn (ms) | speed-up | burn MiB | wgpu-loss-burn MiB |");
    println!("| --- | --- | --- | --- | --- | --- |");
    for (rows, classes) in [(8192, 1000), (1024, 32000), (128, 128256), (2048, 32000)] {
        // burn's CrossEntropyLoss binds the whole logits (and log-probabilities): on the CPU
        // adapters' 128 MiB bindings 2048 × 32000 fails, so it is measured on GPUs only.
        if (rows * classes * 4) as u64 > limit {
            println!("| cross-entropy {rows} × {classes} | binding limit {limit} B: burn cannot run it | | | | |");
            continue;
        }
        bench_cross_entropy(&device, runs, rows, classes);
    }
    bench_linear(&device, runs, (1024, 256, 32000));
}

/// burn's `CrossEntropyLoss` against `cross_entropy`, forward + backward.
fn bench_cross_entropy(device: &Device, runs: usize, rows: usize, classes: usize) {
    let logits = Tensor::<2>::random([rows, classes], Distribution::Uniform(-4.0, 4.0), device);
    let targets = Tensor::<1, Int>::random([rows], Distribution::Uniform(0.0, classes as f64), device);
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let with_grad = |loss: Tensor<1>, x: &Tensor<2>| {
        let grads = loss.backward();
        vec![loss.unsqueeze(), x.grad(&grads).expect("a gradient")]
    };
    let theirs: Run<'_> = Box::new(|| {
        let x = logits.clone().require_grad();
        with_grad(loss_fn.forward(x.clone(), targets.clone()), &x)
    });
    let ours: Run<'_> = Box::new(|| {
        let x = logits.clone().require_grad();
        let loss = wgpu_loss_burn::cross_entropy(x.clone(), targets.clone(), &Default::default()).expect("loss");
        with_grad(loss, &x)
    });
    compare(device, &format!("cross-entropy {rows} × {classes}"), runs, theirs, ours);
}

/// burn's `Linear` + `CrossEntropyLoss` against `linear_cross_entropy` on the same
/// parameters, forward + backward (∂h and ∂W compared).
fn bench_linear(device: &Device, runs: usize, (tokens, hidden_size, vocab): (usize, usize, usize)) {
    let h = Tensor::<2>::random([tokens, hidden_size], Distribution::Uniform(-1.0, 1.0), device);
    let scale = 1.0 / (hidden_size as f64).sqrt();
    let linear = Linear {
        weight: Param::from_tensor(Tensor::random([hidden_size, vocab], Distribution::Uniform(-scale, scale), device)),
        bias: Some(Param::from_tensor(Tensor::random([vocab], Distribution::Uniform(-0.1, 0.1), device))),
    };
    let targets = Tensor::<1, Int>::random([tokens], Distribution::Uniform(0.0, vocab as f64), device);
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    let grads_of = |loss: Tensor<1>, x: &Tensor<2>| {
        let grads = loss.backward();
        let gw = linear.weight.val().grad(&grads).expect("∂W");
        vec![loss.unsqueeze(), x.grad(&grads).expect("∂h"), gw]
    };
    let theirs: Run<'_> = Box::new(|| {
        let x = h.clone().require_grad();
        grads_of(loss_fn.forward(linear.forward(x.clone()), targets.clone()), &x)
    });
    let ours: Run<'_> = Box::new(|| {
        let x = h.clone().require_grad();
        let bias = linear.bias.as_ref().map(|b| b.val());
        let weight = linear.weight.val();
        let loss = wgpu_loss_burn::linear_cross_entropy(x.clone(), weight, bias, targets.clone(), &Default::default())
            .expect("loss");
        grads_of(loss, &x)
    });
    compare(device, &format!("linear + cross-entropy {tokens} × {hidden_size} × {vocab}"), runs, theirs, ours);
}
