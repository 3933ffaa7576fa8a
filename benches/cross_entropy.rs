//! Throughput of the GPU loss kernels themselves, beside a plain copy kernel on the same
//! adapter and the f64 CPU twin.
//!
//! For each shape (rows × classes: 65536×10, 8192×1000, 2048×32000, 128×128256 and
//! 16×1,000,000; the larger batches exceed the 128 MiB storage binding of Mesa's software
//! adapters and run in row chunks or split rows) the data is put in device buffers once:
//! random logits in [-10, 10], random valid class-index targets. A timed iteration records
//! one op into a new encoder with a reused [`Workspace`], submits it and waits for that
//! submission; uploads, readbacks and buffer creation are never timed. Groups, each with
//! one benchmark per shape (`log_softmax/8192x1000`, ...):
//!
//! - `log_softmax`: `encode_log_softmax`; bytes = logits read + output written (8 per element).
//! - `cross_entropy`: `encode_cross_entropy`, loss only, mean; bytes = logits read (4 per
//!   element). The targets (4 bytes per row) and the one-value loss are not counted.
//! - `cross_entropy_with_grad`: the same with the gradient; bytes = logits read + gradient
//!   written (8 per element).
//! - `copy`: `benches/copy.wgsl`, one `vec4<f32>` per invocation, moving the same bytes as
//!   the logits (read + written, 8 per element; in binding-sized chunks): the most a compute
//!   kernel that touches each element once gets from this adapter, so op GB/s ÷ copy GB/s
//!   says how close an op comes.
//! - `cpu_cross_entropy_with_grad`: `wgpu_loss::cpu::cross_entropy_with_grad` (f64
//!   internally, one thread) on the same logits, for the shapes up to 8 M elements; bytes
//!   counted as for the GPU op.
//!
//! After criterion's runs, a summary table is printed (stderr): per op and shape, the median
//! of `SUMMARY_REPS` submissions in wall time and, where the device has
//! `TIMESTAMP_QUERY_INSIDE_ENCODERS`, in GPU time from timestamps written around the op in
//! the same encoder; GB/s for both and the ratio to the copy kernel measured the same way.
//!
//! Criterion reports `Throughput::Bytes` per iteration (printed in GiB/s). Under `--test`
//! (`cargo bench -- --test`, `cargo test --benches`) every benchmark runs once.
//!
//! ```text
//! XDG_RUNTIME_DIR=/tmp WGPU_BACKEND=vulkan cargo bench --bench cross_entropy
//! WGPU_LOSS_BENCH_SHAPES=8192x1000 cargo bench --bench cross_entropy   # one shape
//! ```

use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use wgpu::util::DeviceExt;
use wgpu_loss::{CrossEntropyOptions, Gpu, LossBuffers, Workspace, cpu};

/// Rows × classes; each has a multiple of 4 elements (the copy kernel moves `vec4`s).
const SHAPES: [(usize, usize); 5] = [
    (65_536, 10),
    (8_192, 1_000),
    (2_048, 32_000),
    (128, 128_256),
    (16, 1_000_000),
];
/// The CPU twin runs on shapes up to this many elements.
const CPU_MAX_ELEMENTS: usize = 8_200_000;
/// Submissions per op in the summary table (the median is reported).
const SUMMARY_REPS: usize = 7;
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

    /// Binds `src` → `dst` once, in chunks of at most one storage binding, as the loss
    /// ops' workspaces cache their bind groups.
    fn bind(&self, device: &wgpu::Device, src: &wgpu::Buffer, dst: &wgpu::Buffer) -> Vec<CopyBinding> {
        assert_eq!(src.size(), dst.size(), "the copy moves whole buffers");
        assert!(src.size().is_multiple_of(4 * F32), "the copy moves whole vec4s");
        let limits = device.limits();
        let chunk = limits.max_storage_buffer_binding_size / 256 * 256;
        (0..src.size().div_ceil(chunk))
            .map(|k| {
                let offset = k * chunk;
                let size = wgpu::BufferSize::new(chunk.min(src.size() - offset));
                let entry = |binding, buffer| wgpu::BindGroupEntry {
                    binding,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding { buffer, offset, size }),
                };
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some("bench copy"),
                    layout: &self.pipeline.get_bind_group_layout(0),
                    entries: &[entry(0, src), entry(1, dst)],
                });
                let bytes = size.map_or(0, |s| s.get());
                CopyBinding {
                    bind_group,
                    workgroups: (bytes / (4 * F32)).div_ceil(COPY_WORKGROUP),
                }
            })
            .collect()
    }

    /// Records the copy, folding workgroups over the per-dimension limit into y.
    fn record(&self, device: &wgpu::Device, encoder: &mut wgpu::CommandEncoder, chunks: &[CopyBinding]) {
        let max = u64::from(device.limits().max_compute_workgroups_per_dimension);
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor {
            label: Some("bench copy"),
            timestamp_writes: None,
        });
        pass.set_pipeline(&self.pipeline);
        for b in chunks {
            let x = b.workgroups.clamp(1, max);
            let y = b.workgroups.div_ceil(x);
            assert!(y <= max, "{} workgroups do not fit in x and y", b.workgroups);
            pass.set_bind_group(0, &b.bind_group, &[]);
            pass.dispatch_workgroups(x as u32, y as u32, 1);
        }
    }
}

struct CopyBinding {
    bind_group: wgpu::BindGroup,
    workgroups: u64,
}

/// Runs `iters` iterations of: record into a new encoder, submit, wait for that submission.
fn time_submissions(gpu: &Gpu, iters: u64, record: Record<'_>) -> Duration {
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

/// How a benchmark records its op into an encoder.
type Record<'a> = &'a mut dyn FnMut(&mut wgpu::CommandEncoder);

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
fn bench_gpu(c: &mut Criterion, gpu: &Gpu, group: &str, data: &ShapeData, bytes: u64, record: Record<'_>) {
    bench(c, group, &data.id(), bytes, |iters| {
        time_submissions(gpu, iters, &mut *record)
    });
}

/// GPU time from timestamps written into the encoder around an op's commands.
struct Timer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
    readback: wgpu::Buffer,
}

impl Timer {
    /// `None` where the device cannot write timestamps inside an encoder.
    fn new(gpu: &Gpu) -> Option<Self> {
        let device = gpu.device();
        if !device
            .features()
            .contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS)
        {
            return None;
        }
        let buffer = |usage| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("bench timestamps"),
                size: 16,
                usage,
                mapped_at_creation: false,
            })
        };
        Some(Self {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("bench timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolve: buffer(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
            readback: buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
        })
    }
}

/// Wall time and (with a [`Timer`]) GPU time of one submission of `record`.
fn time_once(gpu: &Gpu, timer: Option<&Timer>, record: Record<'_>) -> (Duration, Option<Duration>) {
    let device = gpu.device();
    let mut encoder = device.create_command_encoder(&Default::default());
    if let Some(t) = timer {
        encoder.write_timestamp(&t.queries, 0);
    }
    record(&mut encoder);
    if let Some(t) = timer {
        encoder.write_timestamp(&t.queries, 1);
        encoder.resolve_query_set(&t.queries, 0..2, &t.resolve, 0);
        encoder.copy_buffer_to_buffer(&t.resolve, 0, &t.readback, 0, 16);
    }
    let start = Instant::now();
    let submission = gpu.queue().submit([encoder.finish()]);
    device
        .poll(wgpu::PollType::Wait {
            submission_index: Some(submission),
            timeout: None,
        })
        .expect("the device finishes the submission");
    let wall = start.elapsed();
    let gpu_time = timer.map(|t| {
        let slice = t.readback.slice(..);
        slice.map_async(wgpu::MapMode::Read, |r| r.expect("timestamps map"));
        device
            .poll(wgpu::PollType::Wait {
                submission_index: None,
                timeout: None,
            })
            .expect("the map finishes");
        let ticks: [u64; 2] = {
            let view = slice.get_mapped_range().expect("mapped");
            bytemuck::pod_read_unaligned(&view[..16])
        };
        t.readback.unmap();
        let ns = ticks[1].saturating_sub(ticks[0]) as f64 * f64::from(gpu.queue().get_timestamp_period());
        Duration::from_nanos(ns as u64)
    });
    (wall, gpu_time)
}

/// One line of the summary: medians of wall and GPU time.
struct Summary {
    op: &'static str,
    shape: String,
    bytes: u64,
    wall: Duration,
    gpu: Option<Duration>,
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn summarise(
    gpu: &Gpu,
    timer: Option<&Timer>,
    reps: usize,
    op: &'static str,
    data: &ShapeData,
    bytes: u64,
    record: Record<'_>,
) -> Summary {
    time_once(gpu, timer, &mut *record); // warm-up: pipelines, bind groups, parameters
    let (walls, gpus): (Vec<_>, Vec<_>) = (0..reps).map(|_| time_once(gpu, timer, &mut *record)).unzip();
    Summary {
        op,
        shape: data.id(),
        bytes,
        wall: median(walls),
        gpu: gpus.into_iter().collect::<Option<Vec<_>>>().map(median),
    }
}

fn gbps(bytes: u64, t: Duration) -> f64 {
    bytes as f64 / t.as_secs_f64() / 1e9
}

fn print_summary(lines: &[Summary]) {
    eprintln!();
    eprintln!("| Op | Shape | Wall | GB/s | Copy GB/s | Ratio | GPU time | GB/s | Copy GB/s | Ratio |");
    eprintln!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for line in lines.iter().filter(|l| l.op != "copy") {
        let copy = lines
            .iter()
            .find(|c| c.op == "copy" && c.shape == line.shape)
            .expect("every shape has a copy line");
        let (wall, copy_wall) = (gbps(line.bytes, line.wall), gbps(copy.bytes, copy.wall));
        let timed = match (line.gpu, copy.gpu) {
            (Some(t), Some(c)) => {
                let (g, cg) = (gbps(line.bytes, t), gbps(copy.bytes, c));
                format!("{t:.2?} | {g:.2} | {cg:.2} | {:.2}", g / cg)
            }
            _ => "— | — | — | —".to_string(),
        };
        eprintln!(
            "| {} | {} | {:.2?} | {wall:.2} | {copy_wall:.2} | {:.2} | {timed} |",
            line.op,
            line.shape,
            line.wall,
            wall / copy_wall
        );
    }
}

fn bench_shape(
    c: &mut Criterion,
    gpu: &Gpu,
    timer: Option<&Timer>,
    copy: &CopyKernel,
    data: &ShapeData,
    summary: &mut Vec<Summary>,
) {
    let (rows, classes) = (data.rows, data.classes);
    let read = data.matrix_bytes();
    let opts = CrossEntropyOptions::default();
    let reps = if std::env::args().any(|a| a == "--test") {
        1
    } else {
        SUMMARY_REPS
    };
    // Criterion's benchmark, then the summary's medians, of one op.
    let mut measure = |op, bytes, record: Record<'_>| {
        bench_gpu(c, gpu, op, data, bytes, &mut *record);
        summary.push(summarise(gpu, timer, reps, op, data, bytes, record));
    };

    let mut ws = Workspace::new(gpu);
    let mut log_softmax = |encoder: &mut wgpu::CommandEncoder| {
        gpu.encode_log_softmax(
            encoder,
            &mut ws,
            data.logits_buf.slice(..),
            data.output_buf.slice(..),
            rows,
            classes,
        )
        .expect("log_softmax records");
    };
    measure("log_softmax", 2 * read, &mut log_softmax);

    let loss_only = LossBuffers::new(data.targets_buf.slice(..))
        .input(data.logits_buf.slice(..))
        .loss(data.loss_buf.slice(..));
    let with_grad = loss_only.grad(data.grad_buf.slice(..));
    for (group, buffers, bytes) in [
        ("cross_entropy", loss_only, read),
        ("cross_entropy_with_grad", with_grad, 2 * read),
    ] {
        let mut ws = Workspace::new(gpu);
        let mut record = |encoder: &mut wgpu::CommandEncoder| {
            gpu.encode_cross_entropy(encoder, &mut ws, &buffers, rows, classes, &opts)
                .expect("cross_entropy records");
        };
        measure(group, bytes, &mut record);
    }

    let binding = copy.bind(gpu.device(), &data.logits_buf, &data.output_buf);
    let mut record_copy = |encoder: &mut wgpu::CommandEncoder| copy.record(gpu.device(), encoder, &binding);
    measure("copy", 2 * read, &mut record_copy);

    if data.logits.len() <= CPU_MAX_ELEMENTS {
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
}

fn loss_kernels(c: &mut Criterion) {
    let gpu = Gpu::new().expect("a GPU adapter (or Mesa's lavapipe/llvmpipe)");
    let info = gpu.adapter_info();
    let driver = [info.driver.as_str(), info.driver_info.as_str()]
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(", ");
    let timer = Timer::new(&gpu);
    eprintln!(
        "adapter: {} ({:?}, {:?}; {driver}), subgroups used: {}, GPU timestamps: {}",
        info.name,
        info.backend,
        info.device_type,
        gpu.uses_subgroups(),
        timer.is_some(),
    );
    let copy = CopyKernel::new(gpu.device());
    let mut summary = Vec::new();
    // WGPU_LOSS_BENCH_SHAPES=8192x1000,65536x10 runs those shapes only.
    let only = std::env::var("WGPU_LOSS_BENCH_SHAPES").ok();
    for (rows, classes) in SHAPES {
        let id = format!("{rows}x{classes}");
        if only.as_ref().is_some_and(|o| !o.split(',').any(|s| s == id)) {
            continue;
        }
        let data = ShapeData::new(&gpu, rows, classes);
        bench_shape(c, &gpu, timer.as_ref(), &copy, &data, &mut summary);
    }
    print_summary(&summary);
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
