//! Shared by the GPU-vs-CPU test binaries: one `Gpu` per binary, deterministic data, and
//! the comparisons with their stated tolerances.
#![allow(dead_code)] // each test binary uses its own subset

use std::sync::OnceLock;

use wgpu_loss::{CrossEntropyOptions, Gpu, GpuOptions, Reduction};

/// The binary's shared default `Gpu`. No adapter is an error, never a skip.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| Gpu::new().unwrap_or_else(|e| panic!("no GPU for the tests: {e}")))
}

/// Every row-reduction path the adapter has, on the shared device: the default; 32
/// invocations per row (several subgroups per row where the default is one, or another
/// tree size); and the workgroup-memory fallback when the default uses subgroups.
pub fn gpus() -> Vec<&'static Gpu> {
    static OTHERS: OnceLock<Vec<Gpu>> = OnceLock::new();
    let others = OTHERS.get_or_init(|| {
        let with = |subgroups: bool, row_workgroup_size: Option<u32>| {
            let mut opts = GpuOptions::default();
            opts.subgroups = subgroups;
            opts.row_workgroup_size = row_workgroup_size;
            Gpu::from_device_with_options(gpu().device().clone(), gpu().queue().clone(), opts)
        };
        let mut others = vec![with(true, Some(32))];
        if gpu().uses_subgroups() {
            others.push(with(false, None));
        }
        others
    });
    std::iter::once(gpu()).chain(others).collect()
}

/// A small deterministic generator (xorshift64*), so every run tests the same values.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    /// Uniform in [lo, hi).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }
    pub fn logits(&mut self, n: usize, scale: f32) -> Vec<f32> {
        (0..n).map(|_| self.uniform(-scale, scale)).collect()
    }
    pub fn targets(&mut self, rows: usize, classes: usize) -> Vec<i32> {
        (0..rows).map(|_| self.below(classes) as i32).collect()
    }
}

/// The shapes every op is checked on: classes around the row workgroup sizes (8, 16,
/// 32, 256), odd sizes and 1; batches kept under 128 MiB of logits.
pub fn shapes() -> Vec<(usize, usize)> {
    let mut shapes = Vec::new();
    for rows in [1, 7, 1000] {
        for classes in [1, 2, 3, 10, 31, 32, 33, 1000, 4097, 50000] {
            if rows * classes <= 8_000_000 {
                shapes.push((rows, classes));
            }
        }
    }
    shapes
}

/// Largest |x| over the finite values (at least 1).
pub fn scale_of(values: &[f32]) -> f32 {
    values
        .iter()
        .filter(|v| v.is_finite())
        .fold(1.0f32, |m, v| m.max(v.abs()))
}

/// Non-finite expectations must match exactly (NaN ↔ NaN, ±inf ↔ ±inf); finite ones
/// within `abs + rel·|expected|`.
pub fn assert_close(what: &str, gpu: &[f32], cpu: &[f32], abs: f32, rel: f32) {
    assert_eq!(gpu.len(), cpu.len(), "{what}: length");
    for (i, (&g, &c)) in gpu.iter().zip(cpu).enumerate() {
        if !c.is_finite() || !g.is_finite() {
            let same = (c.is_nan() && g.is_nan()) || c == g;
            assert!(same, "{what}[{i}]: gpu {g} vs cpu {c} (non-finite must match exactly)");
            continue;
        }
        let tol = abs + rel * c.abs();
        assert!(
            (g - c).abs() <= tol,
            "{what}[{i}]: gpu {g} vs cpu {c}, |diff| {} > tol {tol}",
            (g - c).abs()
        );
    }
}

/// Elementwise outputs (log-probabilities, probabilities, per-row losses):
/// `2e-5·max(1, max|x|) + 1e-4·|expected|`. f32 log-sum-exp loses a few ulps of the
/// largest logit (2e-5 is ~170 ulps of 1), and values near 0 are compared absolutely.
pub fn assert_elementwise(what: &str, gpu: &[f32], cpu: &[f32], inputs: &[f32]) {
    assert_close(what, gpu, cpu, 2e-5 * scale_of(inputs), 1e-4);
}

/// log-softmax and softmax of `x` on `gpu` against the CPU twins.
pub fn assert_softmax_forward(gpu: &Gpu, x: &[f32], rows: usize, classes: usize, what: &str) {
    let lp = gpu.log_softmax(x, rows, classes).unwrap();
    let want = wgpu_loss::cpu::log_softmax(x, rows, classes).unwrap();
    assert_elementwise(&format!("log_softmax {what}"), &lp, &want, x);
    let p = gpu.softmax(x, rows, classes).unwrap();
    let want = wgpu_loss::cpu::softmax(x, rows, classes).unwrap();
    assert_elementwise(&format!("softmax {what}"), &p, &want, x);
}

/// Gradients: `1e-5·max|grad| + 1e-4·|expected|`: each element is g·(p·S - q), with p
/// correct to a few ulps, so the error is relative to the largest gradient of the batch.
pub fn assert_gradient(what: &str, gpu: &[f32], cpu: &[f32]) {
    let max = cpu.iter().filter(|v| v.is_finite()).fold(0.0f32, |m, v| m.max(v.abs()));
    assert_close(what, gpu, cpu, 1e-5 * max, 1e-4);
}

/// Reduced losses (sum or mean) and per-row losses: the elementwise tolerance of one
/// row, scaled by the largest |weight| and, for sums, by how many rows were added.
pub fn assert_loss(what: &str, gpu: &[f32], cpu: &[f32], logits: &[f32], rows: usize, opts: &CrossEntropyOptions) {
    let w = opts.weight.as_ref().map_or(1.0, |w| scale_of(w));
    let added = match opts.reduction {
        Reduction::None => 1.0,
        Reduction::Sum | Reduction::Mean => rows as f32,
    };
    assert_close(
        what,
        gpu,
        cpu,
        2e-5 * scale_of(logits) * w * added.sqrt().max(1.0),
        1e-4,
    );
}

/// The options the tests combine: every reduction, with and without weights, an
/// ignore_index that some rows hit, and label smoothing 0, 0.1 and 1.
pub fn option_sets(classes: usize, targets_hit: i32) -> Vec<CrossEntropyOptions> {
    let weight: Vec<f32> = (0..classes).map(|c| 0.25 + (c % 7) as f32 * 0.3).collect();
    // A pairwise covering set over (reduction, weight, ignore_index, label_smoothing).
    let rows: [(Reduction, bool, bool, f32); 9] = [
        (Reduction::None, false, false, 0.0),
        (Reduction::None, true, true, 0.1),
        (Reduction::None, true, false, 1.0),
        (Reduction::Sum, false, true, 1.0),
        (Reduction::Sum, true, false, 0.0),
        (Reduction::Sum, false, true, 0.1),
        (Reduction::Mean, true, true, 0.0),
        (Reduction::Mean, false, false, 0.1),
        (Reduction::Mean, true, true, 1.0),
    ];
    rows.iter()
        .map(|&(reduction, with_weight, ignore, eps)| {
            let mut o = CrossEntropyOptions::default();
            o.reduction = reduction;
            o.weight = with_weight.then(|| weight.clone());
            if ignore {
                o.ignore_index = targets_hit;
            }
            o.label_smoothing = eps;
            o
        })
        .collect()
}

/// Every combination of the options above (for one small shape).
pub fn all_option_combinations(classes: usize, targets_hit: i32) -> Vec<CrossEntropyOptions> {
    let weight: Vec<f32> = (0..classes).map(|c| 0.5 + c as f32 * 0.25).collect();
    let mut all = Vec::new();
    for reduction in [Reduction::None, Reduction::Sum, Reduction::Mean] {
        for with_weight in [false, true] {
            for ignore in [-100, targets_hit] {
                for eps in [0.0, 0.1, 0.5, 1.0] {
                    let mut o = CrossEntropyOptions::default();
                    o.reduction = reduction;
                    o.weight = with_weight.then(|| weight.clone());
                    o.ignore_index = ignore;
                    o.label_smoothing = eps;
                    all.push(o);
                }
            }
        }
    }
    all
}

/// Upstream gradients for `opts`: `rows` values for none, one otherwise.
pub fn grad_output(rng: &mut Rng, rows: usize, opts: &CrossEntropyOptions) -> Vec<f32> {
    match opts.reduction {
        Reduction::None => (0..rows).map(|_| rng.uniform(-2.0, 2.0)).collect(),
        Reduction::Sum | Reduction::Mean => vec![rng.uniform(0.5, 2.0)],
    }
}

/// Rows that stress the numerics, each `classes` wide: ±1e4, -inf entries (some, at the
/// target, all but one), ties, very peaked rows, tiny and denormal values.
pub fn adversarial_rows(classes: usize) -> Vec<Vec<f32>> {
    let c = classes;
    let ninf = f32::NEG_INFINITY;
    let mut rows = vec![
        vec![1e4; c],
        vec![-1e4; c],
        (0..c).map(|i| if i % 2 == 0 { 1e4 } else { -1e4 }).collect(),
        vec![0.0; c],
        (0..c).map(|i| if i == c / 2 { 50.0 } else { -50.0 }).collect(),
        (0..c)
            .map(|i| if i % 3 == 1 { ninf } else { i as f32 * 0.01 })
            .collect(),
        (0..c).map(|i| if i == 0 { 3.0 } else { ninf }).collect(),
        (0..c).map(|i| if i == c - 1 { ninf } else { 1e4 - i as f32 }).collect(),
        (0..c).map(|i| if i % 2 == 0 { 1e-40 } else { -1e-38 }).collect(),
    ];
    if c > 1 {
        rows.push((0..c).map(|i| if i == 0 { ninf } else { 1.0 }).collect());
    }
    rows
}

/// `targets` as valid for `opts`: rows marked -100 stay ignored under the default
/// `ignore_index` and become class 0 when another `ignore_index` is in force.
pub fn targets_for(opts: &CrossEntropyOptions, targets: &[i32]) -> Vec<i32> {
    targets
        .iter()
        .map(|&t| if t == -100 && opts.ignore_index != -100 { 0 } else { t })
        .collect()
}

/// A device buffer holding `data` (STORAGE | COPY_SRC | COPY_DST), for the encode API.
pub fn upload<T: bytemuck::Pod>(gpu: &Gpu, data: &[T]) -> wgpu::Buffer {
    use wgpu::util::DeviceExt;
    gpu.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("test data"),
        contents: bytemuck::cast_slice(data),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
    })
}

/// Reads `len` f32 values at byte `offset` of `buffer` (waits for all submitted work).
pub fn download(gpu: &Gpu, buffer: &wgpu::Buffer, offset: u64, len: usize) -> Vec<f32> {
    let bytes = (len as u64 * 4).next_multiple_of(4);
    let staging = gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("test readback"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    encoder.copy_buffer_to_buffer(buffer, offset, &staging, 0, bytes);
    gpu.queue().submit([encoder.finish()]);
    staging.slice(..).map_async(wgpu::MapMode::Read, |r| r.expect("map"));
    gpu.device().poll(wgpu::PollType::wait_indefinitely()).expect("poll");
    bytemuck::cast_slice::<u8, f32>(&staging.slice(..).get_mapped_range().expect("mapped")).to_vec()
}
