//! Deterministic data: the generator, the shapes and option sets every family is checked
//! on, rows that stress the numerics, and buffers for the encode API.

use wgpu_loss::{CrossEntropyOptions, Gpu, Reduction};

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

/// Batches above this many elements run on the default path only (the rest of the matrix
/// takes the smaller shapes, which reach the same kernels).
pub const LARGE: usize = 1_000_000;

/// The shapes every row-wise op is checked on: classes around the row workgroup sizes (8,
/// 16, 32, 64, 256), odd sizes and 1, in batches of 1, 7 and 1000 rows; and rows split into
/// segments by default on every adapter (beyond 131072 classes on CPU adapters, 32768 on
/// GPUs: 131073 read one by one, 131076 as vec4, each with a last segment of 1 or 4 classes
/// on CPU adapters), one row at a time and nine (over [`LARGE`]: the default path only, as
/// one row reaches the same kernels). Batches are kept under 128 MiB of logits; `large`
/// adds those over [`LARGE`] elements.
pub fn shapes(large: bool) -> Vec<(usize, usize)> {
    let grid = [1, 7, 1000].into_iter().flat_map(|rows| [1, 2, 3, 10, 31, 32, 33, 1000, 4097].map(|c| (rows, c)));
    let split = [(1, 131_073), (1, 131_076), (9, 131_073), (9, 131_076)];
    grid.chain(split)
        .filter(|&(rows, classes)| rows * classes <= 8_000_000 && (large || rows * classes <= LARGE))
        .collect()
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

/// Upstream gradients for `opts` over `rows` loss rows: one value per row for none, one
/// otherwise.
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
        (0..c).map(|i| if i % 3 == 1 { ninf } else { i as f32 * 0.01 }).collect(),
        (0..c).map(|i| if i == 0 { 3.0 } else { ninf }).collect(),
        (0..c).map(|i| if i == c - 1 { ninf } else { 1e4 - i as f32 }).collect(),
        (0..c).map(|i| if i % 2 == 0 { 1e-40 } else { -1e-38 }).collect(),
    ];
    if c > 1 {
        rows.push((0..c).map(|i| if i == 0 { ninf } else { 1.0 }).collect());
    }
    rows
}

/// The adversarial rows followed by the three that poison their row: a NaN, a `+inf`, and
/// no finite logit at all.
pub fn poisoned_rows(classes: usize) -> Vec<Vec<f32>> {
    let mut rows = adversarial_rows(classes);
    rows.push((0..classes).map(|i| if i == classes / 2 { f32::NAN } else { 1.0 }).collect());
    rows.push((0..classes).map(|i| if i == classes / 3 { f32::INFINITY } else { 1.0 }).collect());
    rows.push(vec![f32::NEG_INFINITY; classes]);
    rows
}

/// `targets` as valid for `opts`: rows marked -100 stay ignored under the default
/// `ignore_index` and become class 0 when another `ignore_index` is in force.
pub fn targets_for(opts: &CrossEntropyOptions, targets: &[i32]) -> Vec<i32> {
    targets.iter().map(|&t| if t == -100 && opts.ignore_index != -100 { 0 } else { t }).collect()
}

/// A probability row for each row: random non-negative masses, some rows normalised, some
/// not (PyTorch does not require it), some one-hot.
pub fn probability_targets(rng: &mut Rng, rows: usize, classes: usize) -> Vec<f32> {
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

/// `(N·d, C)` rows → `(N, C, d)`.
pub fn spatial_layout(rows: &[f32], n: usize, classes: usize, spatial: usize) -> Vec<f32> {
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

/// A device buffer holding `data` (STORAGE | COPY_SRC | COPY_DST), for the encode API.
pub fn upload<T: bytemuck::Pod>(gpu: &Gpu, data: &[T]) -> wgpu::Buffer {
    use wgpu::util::DeviceExt;
    gpu.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("test data"),
        contents: bytemuck::cast_slice(data),
        usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
    })
}

/// Reads `len` f32 values at byte `offset` of `buffer` (after all submitted work).
pub fn download(gpu: &Gpu, buffer: &wgpu::Buffer, offset: u64, len: usize) -> Vec<f32> {
    gpu.read_buffer(buffer.slice(offset..offset + len as u64 * 4)).expect("read back")
}
