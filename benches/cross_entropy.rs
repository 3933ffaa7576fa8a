//! Throughput of the GPU loss kernels themselves, beside a plain copy kernel on the same
//! adapter and the f64 CPU twin.
//!
//! For each shape (rows × classes: 65536×10, 8192×1000, 1024×32000; at most 128 MiB of
//! f32 logits, the storage-binding limit of Mesa's software adapters) the data is put in
//! device buffers once: random logits in [-10, 10], random valid class-index targets. A
//! timed iteration records one op into a new encoder with a reused [`Workspace`], submits
//! it and waits for that submission; uploads, readbacks and buffer creation are never
//! timed. Groups, each with one benchmark per shape (`log_softmax/8192x1000`, ...):
//!
//! - `log_softmax`: `encode_log_softmax`; bytes = logits read + output written (8 per element).
//! - `cross_entropy`: `encode_cross_entropy`, loss only, mean; bytes = logits read (4 per
//!   element). The targets (4 bytes per row) and the one-value loss are not counted.
//! - `cross_entropy_with_grad`: the same with the gradient; bytes = logits read + gradient
//!   written (8 per element).
//! - `copy`: `benches/copy.wgsl`, one `vec4<f32>` per invocation, moving the same bytes as
//!   the logits (read + written, 8 per element): the most a compute kernel that touches each
//!   element once gets from this adapter, so op GB/s ÷ copy GB/s says how close an op comes.
//! - `cpu_cross_entropy_with_grad`: `wgpu_loss::cpu::cross_entropy_with_grad` (f64
//!   internally, one thread) on the same logits; bytes counted as for the GPU op.
//!
//! Criterion reports `Throughput::Bytes` per iteration (printed in GiB/s). Under `--test`
//! (`cargo bench -- --test`, `cargo test --benches`) every benchmark runs once.
//!
//! ```text
//! XDG_RUNTIME_DIR=/tmp WGPU_BACKEND=vulkan cargo bench --bench cross_entropy
//! ```

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use wgpu::util::DeviceExt;
use wgpu_loss::{CrossEntropyOptions, Gpu, LossBuffers, Workspace, cpu};

/// Rows × classes; each has a multiple of 4 elements (the copy kernel moves `vec4`s).
const SHAPES: [(usize, usize); 3] = [(65_536, 10), (8_192, 1_000), (1_024, 32_000)];
/// Invocations per workgroup of `copy_vec4`.
const COPY_WORKGROUP: u64 = 256;
const F32: u64 = 4;

/// A deterministic generator (SplitMix64), so every run benchmarks the same data.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [-10, 10].
    fn logit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * 20.0 - 10.0
    }

    /// Uniform in `0..classes`.
    fn class(&mut self, classes: usize) -> i32 {
        (self.next_u64() % classes as u64) as i32
    }
}

/// One shape's data, on the host (for the CPU twin) and in device buffers.
struct ShapeData {
    rows: usize,
    classes: usize,
    logits: Vec<f32>,
    targets: Vec<i32>,
    logits_buf: wgpu::Buffer,
    targets_buf: wgpu::Buffer,
    /// `rows × classes`: log-softmax's output and the copy's destination.
    output_buf: wgpu::Buffer,
    /// `rows × classes`: the cross-entropy gradient.
    grad_buf: wgpu::Buffer,
    /// The mean loss (one value).
    loss_buf: wgpu::Buffer,
}

impl ShapeData {
    fn new(gpu: &Gpu, rows: usize, classes: usize) -> Self {
        let mut rng = SplitMix64((rows * classes) as u64);
        let logits: Vec<f32> = (0..rows * classes).map(|_| rng.logit()).collect();
        let targets: Vec<i32> = (0..rows).map(|_| rng.class(classes)).collect();
        let device = gpu.device();
        let init = |label, contents: &[u8]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE,
            })
        };
        let empty = |label, bytes| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        };
        let matrix_bytes = (rows * classes) as u64 * F32;
        Self {
            logits_buf: init("bench logits", bytemuck::cast_slice(&logits)),
            targets_buf: init("bench targets", bytemuck::cast_slice(&targets)),
            output_buf: empty("bench output", matrix_bytes),
            grad_buf: empty("bench grad", matrix_bytes),
            loss_buf: empty("bench loss", F32),
            rows,
            classes,
            logits,
            targets,
        }
    }

    fn id(&self) -> String {
        format!("{}x{}", self.rows, self.classes)
    }

    /// Bytes of the `rows × classes` matrix, read or written once.
    fn matrix_bytes(&self) -> u64 {
        self.logits.len() as u64 * F32
    }
}

/// The `copy_vec4` pipeline, built once on the crate's device.
struct CopyKernel {
    pipeline: wgpu::ComputePipeline,
}

impl CopyKernel {
    fn new(device: &wgpu::Device) -> Self {
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("bench copy"),
            source: wgpu::ShaderSource::Wgsl(include_str!("copy.wgsl").into()),
        });
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some("bench copy"),
            layout: None,
            module: &module,
            entry_point: Some("copy_vec4"),
            compilation_options: Default::default(),
            cache: None,
        });
        Self { pipeline }
    }

    /// Binds `src` → `dst` once, as the loss ops' workspaces cache their bind groups.
    fn bind(&self, device: &wgpu::Device, src: &wgpu::Buffer, dst: &wgpu::Buffer) -> CopyBinding {
        assert_eq!(src.size(), dst.size(), "the copy moves whole buffers");
        assert!(src.size().is_multiple_of(4 * F32), "the copy moves whole vec4s");
        let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("bench copy"),
            layout: &self.pipeline.get_bind_group_layout(0),
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: src.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: dst.as_entire_binding(),
                },
            ],
        });
        CopyBinding {
            bind_group,
            workgroups: (src.size() / (4 * F32)).div_ceil(COPY_WORKGROUP),
        }
    }

    /// Records the copy, folding workgroups over the per-dimension limit into y.
    fn record(&self, device: &wgpu::Device, encoder: &mut wgpu::CommandEncoder, b: &CopyBinding) {
        let max = u64::from(device.limits().max_compute_workgroups_per_dimension);
        let x = b.workgroups.clamp(1, max);
        let y = b.workgroups.div_ceil(x);
        assert!(y <= max, "{} workgroups do not fit in x and y", b.workgroups);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("bench copy"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        pass.set_bind_group(0, &b.bind_group, &[]);
        pass.dispatch_workgroups(x as u32, y as u32, 1);
    }
}

struct CopyBinding {
    bind_group: wgpu::BindGroup,
    workgroups: u64,
}

/// Runs `iters` iterations of: record into a new encoder, submit, wait for that submission.
fn time_submissions(gpu: &Gpu, iters: u64, record: &mut impl FnMut(&mut wgpu::CommandEncoder)) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let mut encoder = gpu
            .device()
            .create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        record(&mut encoder);
        let submission = gpu.queue().submit([encoder.finish()]);
        gpu.device()
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: None,
            })
            .expect("the device finishes the submission");
    }
    start.elapsed()
}

/// One benchmark `group/id` over `timed` (which returns the time of `iters` iterations).
fn bench(c: &mut Criterion, group: &str, id: &str, bytes: u64, mut timed: impl FnMut(u64) -> Duration) {
    let mut group = c.benchmark_group(group);
    // Iterations take milliseconds to seconds: equal-sized samples, no linear ramp.
    group.sampling_mode(SamplingMode::Flat);
    group.throughput(Throughput::Bytes(bytes));
    group.bench_function(id, |b| b.iter_custom(&mut timed));
    group.finish();
}

/// One benchmark of a GPU op that `record` records (with its own reused workspace).
fn bench_gpu(
    c: &mut Criterion,
    gpu: &Gpu,
    group: &str,
    data: &ShapeData,
    bytes: u64,
    mut record: impl FnMut(&mut wgpu::CommandEncoder),
) {
    bench(c, group, &data.id(), bytes, |iters| {
        time_submissions(gpu, iters, &mut record)
    });
}

fn bench_shape(c: &mut Criterion, gpu: &Gpu, copy: &CopyKernel, data: &ShapeData) {
    let (rows, classes) = (data.rows, data.classes);
    let read = data.matrix_bytes();
    let opts = CrossEntropyOptions::default();

    let mut ws = Workspace::new(gpu);
    bench_gpu(c, gpu, "log_softmax", data, 2 * read, |encoder| {
        gpu.encode_log_softmax(
            encoder,
            &mut ws,
            data.logits_buf.slice(..),
            data.output_buf.slice(..),
            rows,
            classes,
        )
        .expect("log_softmax records");
    });

    let loss_only = LossBuffers::new(data.targets_buf.slice(..))
        .input(data.logits_buf.slice(..))
        .loss(data.loss_buf.slice(..));
    let with_grad = loss_only.grad(data.grad_buf.slice(..));
    for (group, buffers, bytes) in [
        ("cross_entropy", loss_only, read),
        ("cross_entropy_with_grad", with_grad, 2 * read),
    ] {
        let mut ws = Workspace::new(gpu);
        bench_gpu(c, gpu, group, data, bytes, |encoder| {
            gpu.encode_cross_entropy(encoder, &mut ws, &buffers, rows, classes, &opts)
                .expect("cross_entropy records");
        });
    }

    let binding = copy.bind(gpu.device(), &data.logits_buf, &data.output_buf);
    bench_gpu(c, gpu, "copy", data, 2 * read, |encoder| {
        copy.record(gpu.device(), encoder, &binding);
    });

    bench(c, "cpu_cross_entropy_with_grad", &data.id(), 2 * read, |iters| {
        let start = Instant::now();
        for _ in 0..iters {
            let out = cpu::cross_entropy_with_grad(&data.logits, &data.targets, rows, classes, &opts, &[1.0])
                .expect("valid arguments");
            std::hint::black_box(out);
        }
        start.elapsed()
    });
}

fn loss_kernels(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (or Mesa's lavapipe/llvmpipe)");
    let info = gpu.adapter_info();
    let driver = [info.driver.as_str(), info.driver_info.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    eprintln!(
        "adapter: {} ({:?}, {:?}; {driver}), subgroups used: {}",
        info.name,
        info.backend,
        info.device_type,
        gpu.uses_subgroups(),
    );
    let copy = CopyKernel::new(gpu.device());
    for (rows, classes) in SHAPES {
        let data = ShapeData::new(&gpu, rows, classes);
        bench_shape(c, &gpu, &copy, &data);
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = loss_kernels
}
criterion_main!(benches);
