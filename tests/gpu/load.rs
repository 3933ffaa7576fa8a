//! Load and plumbing of the slice API: one `Gpu` shared by 8 threads gives exactly the
//! single-threaded results, mapped and staged slice buffers give the same bits, and a soak
//! of 10,000 slice-API calls keeps process memory bounded (scratch is reused).

use crate::harness::{Rng, gpu, gpu_with};
use wgpu_loss::{CrossEntropyOptions, Gpu, Reduction};

pub fn tests() -> Vec<libtest_mimic::Trial> {
    crate::harness::trials!(once: [eight_threads_share_one_gpu_and_get_the_single_threaded_results, mapped_and_staged_slice_buffers_give_the_same_bits], ignored: [soak_ten_thousand_calls_keeps_memory_bounded])
}

fn assert_send_sync<T: Send + Sync>() {}

/// Every op once on a batch; all results flattened, to compare bit for bit.
fn every_op(gpu: &Gpu, x: &[f32], targets: &[i32], rows: usize, classes: usize) -> Vec<u32> {
    let mut opts = CrossEntropyOptions::default();
    opts.label_smoothing = 0.1;
    let g = [1.0];
    let lp = gpu.log_softmax(x, rows, classes).unwrap();
    let mut out = lp.clone();
    out.extend(gpu.softmax(x, rows, classes).unwrap());
    out.extend(gpu.log_softmax_backward(&lp, x, rows, classes).unwrap());
    out.extend(gpu.softmax_backward(&lp, x, rows, classes).unwrap());
    out.extend(gpu.nll_loss(&lp, targets, rows, classes, &opts).unwrap());
    out.extend(gpu.nll_loss_grad(targets, rows, classes, &opts, &g).unwrap());
    out.extend(gpu.cross_entropy(x, targets, rows, classes, &opts).unwrap());
    out.extend(gpu.cross_entropy_grad(x, targets, rows, classes, &opts, &g).unwrap());
    let (l, gr) = gpu.cross_entropy_with_grad(x, targets, rows, classes, &opts, &g).unwrap();
    out.extend(l);
    out.extend(gr);
    opts.reduction = Reduction::None;
    out.extend(gpu.cross_entropy(x, targets, rows, classes, &opts).unwrap());
    out.iter().map(|v| v.to_bits()).collect()
}

fn eight_threads_share_one_gpu_and_get_the_single_threaded_results() {
    assert_send_sync::<Gpu>();
    let gpu = gpu();
    let batches: Vec<(Vec<f32>, Vec<i32>, usize, usize)> = (0..8)
        .map(|i| {
            let mut rng = Rng::new(100 + i as u64);
            let (rows, classes) = (5 + 13 * i, 3 + 97 * i);
            (rng.logits(rows * classes, 6.0), rng.targets(rows, classes), rows, classes)
        })
        .collect();
    let alone: Vec<Vec<u32>> = batches.iter().map(|(x, t, r, c)| every_op(gpu, x, t, *r, *c)).collect();
    std::thread::scope(|s| {
        for (i, (x, t, r, c)) in batches.iter().enumerate() {
            let want = &alone[i];
            s.spawn(move || {
                for round in 0..5 {
                    assert!(every_op(gpu, x, t, *r, *c) == *want, "thread {i} round {round} differs");
                }
            });
        }
    });
}

/// The slice API maps its buffers where the adapter shares memory with the host and the
/// device can (lavapipe: always, so CI's Vulkan run takes the mapped path and its GL run,
/// without `MAPPABLE_PRIMARY_BUFFERS`, the staged one), and either way every op gives the
/// same bits, on shapes whose inputs and outputs span one word to many pages.
fn mapped_and_staged_slice_buffers_give_the_same_bits() {
    let gpu = gpu();
    let info = gpu.adapter_info();
    let unified = matches!(info.device_type, wgpu::DeviceType::Cpu | wgpu::DeviceType::IntegratedGpu);
    let can = gpu.device().features().contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS);
    assert_eq!(gpu.maps_slice_buffers(), unified && can, "{info:?}");
    if info.backend == wgpu::Backend::Vulkan && info.device_type == wgpu::DeviceType::Cpu {
        assert!(gpu.maps_slice_buffers(), "lavapipe offers MAPPABLE_PRIMARY_BUFFERS: the mapped path must be tested");
    }
    let mapped = gpu_with(|o| o.mapped_slices = Some(true));
    let staged = gpu_with(|o| o.mapped_slices = Some(false));
    assert_eq!(mapped.maps_slice_buffers(), can);
    assert!(!staged.maps_slice_buffers());
    let mut rng = Rng::new(31);
    for (rows, classes) in [(1, 1), (3, 5), (64, 1000), (2, 70_000)] {
        let x = rng.logits(rows * classes, 6.0);
        let t = rng.targets(rows, classes);
        let want = every_op(staged, &x, &t, rows, classes);
        assert!(every_op(mapped, &x, &t, rows, classes) == want, "{rows}×{classes}: mapped differs from staged");
        // Again, on the reused (and now initialised) buffers.
        assert!(every_op(mapped, &x, &t, rows, classes) == want, "{rows}×{classes}: the second mapped call differs");
    }
    // An out-of-range target still comes back as the batch state's error through either path.
    for gpu in [mapped, staged] {
        let err = gpu.cross_entropy(&[0.0; 6], &[0, 3], 2, 3, &CrossEntropyOptions::default());
        assert!(matches!(err, Err(wgpu_loss::Error::InvalidTarget { row: 1, value: 3, classes: 3 })), "{err:?}");
    }
}

fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).unwrap().parse().unwrap();
    pages * 4096
}

/// 10,000 slice-API calls on varying shapes: resident memory after a warm-up stays within
/// a fixed bound, so no buffer is created per call without bound. Run by CI once, on Vulkan:
/// `cargo test --release --test load -- --ignored`.
fn soak_ten_thousand_calls_keeps_memory_bounded() {
    let gpu = gpu();
    let mut rng = Rng::new(7);
    let opts = CrossEntropyOptions::default();
    let mut call = |i: usize| {
        let (rows, classes) = (1 + i % 64, 1 + (i * 7) % 300);
        let x = rng.logits(rows * classes, 4.0);
        let t = rng.targets(rows, classes);
        match i % 3 {
            0 => drop(gpu.cross_entropy_with_grad(&x, &t, rows, classes, &opts, &[1.0]).unwrap()),
            1 => drop(gpu.log_softmax(&x, rows, classes).unwrap()),
            _ => drop(gpu.nll_loss(&x, &t, rows, classes, &opts).unwrap()),
        }
    };
    for i in 0..1000 {
        call(i);
    }
    let warm = resident_bytes();
    for i in 1000..10_000 {
        call(i);
    }
    let end = resident_bytes();
    let growth = end.saturating_sub(warm);
    eprintln!("resident after warm-up {} MiB, after 10,000 calls {} MiB", warm >> 20, end >> 20);
    assert!(growth < 32 << 20, "resident memory grew by {} MiB over 9,000 calls", growth >> 20);
}
