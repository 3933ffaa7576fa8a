//! Fused linear + cross-entropy beside the unfused op on the same adapter, and the products'
//! GFLOP/s beside the adapter's FMA throughput.
//!
//! Shapes (tokens × hidden size × vocabulary): 1024 × 256 × 32000 on CPU adapters (lavapipe,
//! llvmpipe); 4096 × 512 × 32000 and 8192 × 1024 × 128256 on GPUs. Data: hidden states in
//! ±1, a weight in ±3/√H, random targets, mean reduction; in device buffers once. Two ops,
//! each recorded with a reused workspace, submitted and waited for (wall time; uploads and
//! readbacks never timed), the loss and `∂h`, `∂W` asked for:
//!
//! - `fused`: `encode_linear_cross_entropy` (token chunks within the default 64 MiB scratch).
//! - `unfused`: `encode_linear` into a `tokens × vocab` logits buffer, `encode_cross_entropy`
//!   with its gradient written over the logits, `encode_linear_backward` — this crate's
//!   matmul, cross-entropy, then the two backward products. Skipped, and said so, where the
//!   device cannot hold the logits.
//!
//! For each: the time (median of the runs), the scratch (device bytes allocated beyond the
//! inputs and outputs: the workspaces, and the logits for the unfused op) and the peak
//! device bytes of the op (inputs + outputs + scratch). Then the products alone:
//! `encode_linear` on the whole shape, `2·N·H·V` flops, as GFLOP/s beside an FMA probe
//! (`benches/fma.wgsl`, 64 flops per invocation per step, no memory traffic) run in the same
//! process.
//!
//! **Outputs are checked first**: one chunk's worth of tokens (16) through both ops against
//! the f64 CPU twin (`1e-4·|cpu| + 1e-6·max|cpu|` per value), and the two ops against each
//! other bit for bit; a mismatch aborts the bench.
//!
//! `cargo bench -- --test` runs each op once; `cargo bench --bench linear_cross_entropy`
//! three times (the summary prints either way, on stderr, as Markdown).
//!
//! ```text
//! XDG_RUNTIME_DIR=/tmp WGPU_BACKEND=vulkan cargo bench --bench linear_cross_entropy
//! ```

use std::time::{Duration, Instant};

use wgpu::util::DeviceExt;
use wgpu_loss::{CrossEntropyOptions, Gpu, LinearBuffers, LossBuffers, Workspace, cpu};

/// Tokens × hidden size × vocabulary.
type Shape = (usize, usize, usize);

/// The shapes for this adapter.
fn shapes(gpu: &Gpu) -> Vec<Shape> {
    if gpu.adapter_info().device_type == wgpu::DeviceType::Cpu {
        vec![(1024, 256, 32_000)]
    } else {
        vec![(4096, 512, 32_000), (8192, 1024, 128_256)]
    }
}

#[path = "shared/split_mix.rs"]
mod split_mix;
use split_mix::SplitMix64;

const USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

fn upload<T: bytemuck::Pod>(gpu: &Gpu, data: &[T]) -> wgpu::Buffer {
    gpu.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
        label: Some("bench data"),
        contents: bytemuck::cast_slice(data),
        usage: USAGE,
    })
}

fn zeros(gpu: &Gpu, floats: usize) -> wgpu::Buffer {
    gpu.device().create_buffer(&wgpu::BufferDescriptor {
        label: Some("bench output"),
        size: 4 * floats as u64,
        usage: USAGE,
        mapped_at_creation: false,
    })
}

/// One problem's data on the device, and what the ops write.
struct Problem {
    dims: Shape,
    host: (Vec<f32>, Vec<f32>, Vec<i32>),
    hidden: wgpu::Buffer,
    weight: wgpu::Buffer,
    targets: wgpu::Buffer,
    /// Loss, ∂h, ∂W.
    outputs: [wgpu::Buffer; 3],
}

impl Problem {
    fn new(gpu: &Gpu, (n, h, v): Shape, seed: u64) -> Self {
        let mut rng = SplitMix64(seed);
        let scale = 3.0 / (h as f32).sqrt();
        let hidden: Vec<f32> = (0..n * h).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let weight: Vec<f32> = (0..v * h).map(|_| rng.uniform(-scale, scale)).collect();
        let targets: Vec<i32> = (0..n).map(|_| rng.class(v)).collect();
        Self {
            dims: (n, h, v),
            hidden: upload(gpu, &hidden),
            weight: upload(gpu, &weight),
            targets: upload(gpu, &targets),
            outputs: [zeros(gpu, 1), zeros(gpu, n * h), zeros(gpu, v * h)],
            host: (hidden, weight, targets),
        }
    }

    fn buffers(&self) -> LinearBuffers<'_> {
        LinearBuffers::new(self.hidden.slice(..), self.weight.slice(..), self.targets.slice(..))
            .loss(self.outputs[0].slice(..))
            .grad_hidden(self.outputs[1].slice(..))
            .grad_weight(self.outputs[2].slice(..))
    }

    /// Bytes of the inputs and outputs.
    fn io_bytes(&self) -> u64 {
        [&self.hidden, &self.weight, &self.targets].into_iter().chain(&self.outputs).map(wgpu::Buffer::size).sum()
    }

    fn read(&self, gpu: &Gpu) -> Vec<Vec<f32>> {
        self.outputs.iter().map(|b| gpu.read_buffer(b.slice(..)).expect("read back")).collect()
    }
}

/// The unfused op's logits buffer and workspaces.
struct Unfused {
    logits: wgpu::Buffer,
    ws: [Workspace; 3],
}

impl Unfused {
    /// `None` where the device cannot make the `tokens × vocab` logits buffer.
    fn new(gpu: &Gpu, (n, _, v): Shape) -> Option<Self> {
        let bytes = 4 * (n * v) as u64;
        if bytes > gpu.device().limits().max_buffer_size {
            return None;
        }
        let ws = [Workspace::new(gpu), Workspace::new(gpu), Workspace::new(gpu)];
        Some(Self { logits: zeros(gpu, n * v), ws })
    }

    fn record(&mut self, gpu: &Gpu, p: &Problem, encoder: &mut wgpu::CommandEncoder) {
        let (n, h, v) = p.dims;
        let buffers = p.buffers();
        let ce = LossBuffers::new(p.targets.slice(..))
            .input(self.logits.slice(..))
            .grad_in_place()
            .loss(p.outputs[0].slice(..));
        let [a, b, c] = &mut self.ws;
        gpu.encode_linear(encoder, a, &buffers, self.logits.slice(..), n, h, v).unwrap();
        gpu.encode_cross_entropy(encoder, b, &ce, n, v, &CrossEntropyOptions::default()).unwrap();
        gpu.encode_linear_backward(encoder, c, &buffers, self.logits.slice(..), n, h, v).unwrap();
    }

    fn scratch_bytes(&self) -> u64 {
        self.logits.size() + self.ws.iter().map(Workspace::allocated_bytes).sum::<u64>()
    }
}

/// Wall time of one submission of `record`, waited for.
fn time(gpu: &Gpu, record: impl FnOnce(&mut wgpu::CommandEncoder)) -> Duration {
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    record(&mut encoder);
    let start = Instant::now();
    let submission = gpu.queue().submit([encoder.finish()]);
    gpu.device()
        .poll(wgpu::PollType::Wait { submission_index: Some(submission), timeout: None })
        .expect("the submission finishes");
    start.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// `got` against the twin's `want`: `1e-4·|want| + 1e-6·max|want|` per value.
fn check_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let max = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        assert!((g - w).abs() <= 1e-4 * w.abs() + 1e-6 * max, "{what}[{i}]: GPU {g}, CPU twin {w}");
    }
}

/// The first 16 tokens through both ops: against the twin, and the ops against each other
/// bit for bit.
fn check_one_chunk(gpu: &Gpu, p: &Problem) {
    let (_, h, v) = p.dims;
    let n = 16;
    let sub = Problem {
        dims: (n, h, v),
        hidden: upload(gpu, &p.host.0[..n * h]),
        weight: p.weight.clone(),
        targets: upload(gpu, &p.host.2[..n]),
        outputs: [zeros(gpu, 1), zeros(gpu, n * h), zeros(gpu, v * h)],
        host: (Vec::new(), Vec::new(), Vec::new()),
    };
    let mut ws = Workspace::new(gpu);
    time(gpu, |e| gpu.encode_linear_cross_entropy(e, &mut ws, &sub.buffers(), n, h, v, &Default::default()).unwrap());
    let fused = sub.read(gpu);
    let opts = CrossEntropyOptions::default();
    let want = cpu::linear_cross_entropy_with_grad(
        &p.host.0[..n * h],
        &p.host.1,
        None,
        &p.host.2[..n],
        n,
        h,
        v,
        &opts,
        &[1.0],
    )
    .expect("the twin");
    for (name, got, want) in [
        ("loss", &fused[0], &want.loss),
        ("grad_hidden", &fused[1], &want.grad_hidden),
        ("grad_weight", &fused[2], &want.grad_weight),
    ] {
        check_close(&format!("fused {name} {n}x{h}x{v}"), got, want);
    }
    if let Some(mut unfused) = Unfused::new(gpu, sub.dims) {
        time(gpu, |e| unfused.record(gpu, &sub, e));
        let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        for (k, got) in sub.read(gpu).iter().enumerate() {
            assert_eq!(bits(got), bits(&fused[k]), "output {k}: unfused and fused differ");
        }
    }
}

/// GFLOP/s of the FMA probe: the best of `runs` dispatches of 4096 workgroups.
fn fma_gflops(gpu: &Gpu, runs: usize) -> f64 {
    let device = gpu.device();
    let module = device.create_shader_module(wgpu::include_wgsl!("fma.wgsl"));
    let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
        label: Some("fma probe"),
        layout: None,
        module: &module,
        entry_point: Some("fma_probe"),
        compilation_options: Default::default(),
        cache: None,
    });
    let workgroups = 4096u32;
    let out = zeros(gpu, 4 * 64 * workgroups as usize);
    let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &pipeline.get_bind_group_layout(0),
        entries: &[wgpu::BindGroupEntry { binding: 0, resource: out.as_entire_binding() }],
    });
    let flops = 64.0 * 1024.0 * 64.0 * f64::from(workgroups);
    let best = (0..runs.max(2))
        .map(|_| {
            time(gpu, |e| {
                let mut pass = e.begin_compute_pass(&Default::default());
                pass.set_pipeline(&pipeline);
                pass.set_bind_group(0, &group, &[]);
                pass.dispatch_workgroups(workgroups, 1, 1);
            })
        })
        .min()
        .expect("runs");
    let sums: Vec<f32> = gpu.read_buffer(out.slice(..64)).expect("read back");
    assert!(sums.iter().all(|s| s.is_finite() && *s > 0.0), "the probe's sums: {sums:?}");
    flops / best.as_secs_f64() / 1e9
}

fn gib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20))
}

fn main() {
    let runs = if std::env::args().any(|a| a == "--test") { 1 } else { 3 };
    let gpu = Gpu::new().expect("an adapter");
    let info = gpu.adapter_info();
    eprintln!("adapter: {} ({:?}, {:?}; {})", info.name, info.backend, info.device_type, info.driver_info);
    let fma = fma_gflops(&gpu, runs + 1);
    let mut lines = Vec::new();
    for (i, dims) in shapes(&gpu).into_iter().enumerate() {
        let (n, h, v) = dims;
        let p = Problem::new(&gpu, dims, 7 + i as u64);
        check_one_chunk(&gpu, &p);
        let mut ws = Workspace::new(&gpu);
        let fused: Vec<Duration> = (0..runs)
            .map(|_| {
                time(&gpu, |e| {
                    gpu.encode_linear_cross_entropy(e, &mut ws, &p.buffers(), n, h, v, &Default::default()).unwrap()
                })
            })
            .collect();
        let fused = median(fused);
        let flops = 2.0 * (n * h * v) as f64;
        let id = format!("{n}×{h}×{v}");
        let line = |op: &str, time: Duration, scratch: u64| {
            let (secs, peak) = (time.as_secs_f64(), p.io_bytes() + scratch);
            format!(
                "| {id} | {op} | {secs:.2} s | {} | {} | {:.1} |",
                gib(scratch),
                gib(peak),
                3.0 * flops / secs / 1e9
            )
        };
        lines.push(line("fused", fused, ws.allocated_bytes()));
        match Unfused::new(&gpu, dims) {
            Some(mut u) => {
                let unfused = median((0..runs).map(|_| time(&gpu, |e| u.record(&gpu, &p, e))).collect());
                lines.push(line("unfused", unfused, u.scratch_bytes()));
                let ratio = fused.as_secs_f64() / unfused.as_secs_f64();
                let scratch = ws.allocated_bytes() as f64 / u.scratch_bytes() as f64;
                lines.push(format!("| {id} | fused ÷ unfused | {ratio:.2}× time | {scratch:.3}× scratch | | |"));
                let logits = u.logits.clone();
                let mut lws = Workspace::new(&gpu);
                let products = median(
                    (0..runs)
                        .map(|_| {
                            time(&gpu, |e| {
                                gpu.encode_linear(e, &mut lws, &p.buffers(), logits.slice(..), n, h, v).unwrap()
                            })
                        })
                        .collect(),
                );
                let gflops = flops / products.as_secs_f64() / 1e9;
                lines.push(format!(
                    "| {id} | `encode_linear` (h·Wᵀ alone) | {:.2} s | | | {gflops:.1} ({:.0} % of FMA) |",
                    products.as_secs_f64(),
                    100.0 * gflops / fma
                ));
            }
            None => lines.push(format!(
                "| {id} | unfused | does not fit: the logits alone are {} | | | |",
                gib(4 * (n * v) as u64)
            )),
        }
    }
    eprintln!("\nFMA probe: {fma:.1} GFLOP/s (f32, 2 flops per FMA)\n");
    eprintln!("| Shape | Op | Time | Scratch | Peak device bytes | GFLOP/s (3 products) |");
    eprintln!("| --- | --- | --- | --- | --- | --- |");
    for line in lines {
        eprintln!("{line}");
    }
}
