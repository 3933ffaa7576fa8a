//! Throughput of the GPU loss kernels themselves, each checked against the f64 CPU twin
//! first, beside the fastest copy and read kernels on the same adapter.
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
//! - The yardsticks, moving the logits' bytes (in binding-sized chunks). Copies
//!   (`benches/copy.wgsl`; read + written, 8 bytes per element): `copy_vec4` (one `vec4` per
//!   invocation), `copy_block4` and `copy_block8` (a contiguous block of 4 or 8 `vec4`s per
//!   invocation, neighbouring invocations on neighbouring `vec4`s), `copy_grid_stride` (a
//!   fixed grid looping over the array), and `copy_buffer_to_buffer` (the driver's copy,
//!   shown beside the kernels but not a yardstick: an op cannot use it). Reads
//!   (`benches/read.wgsl`; 4 bytes per element): `read_block8` and `read_grid_stride`, the
//!   same layouts adding up the words they read into one `u32` per invocation.
//! - `slice_cross_entropy_with_grad`: the slice API end to end, `Gpu::cross_entropy_with_grad`
//!   on the host logits and targets (upload, kernel, read back into `Vec`s, wall time);
//!   bytes as `cross_entropy_with_grad`'s. Its result is checked as the kernel's.
//! - `cpu_cross_entropy_with_grad`: `wgpu_loss::cpu::cross_entropy_with_grad` (f64
//!   internally, one thread) on the same logits, for the shapes up to 8.2 M elements; bytes
//!   counted as for the GPU op.
//!
//! **Every kernel's output is checked once before it is timed**, on outputs cleared to zero
//! first, and a mismatch aborts the bench, so a kernel that skips work cannot post a number.
//! Up to 8.2 M elements (`CPU_MAX_ELEMENTS`) log-softmax and the gradient are compared
//! with the CPU twin on every row; beyond, on rows 0, the middle one and the last, each run
//! through the twin alone (per-row reduction with `grad_output` 1 / rows: the mean's
//! gradient). The mean loss (forward, and forward+gradient) is compared with the twin's
//! per-row losses over the whole batch, in blocks of rows, summed in f64 and divided by the
//! rows. Tolerance: `1e-4·|cpu| + 1e-6·max|cpu|` per value (the precision tests live in
//! `tests/`). Copies must reproduce the logits' bits exactly (including
//! `copy_buffer_to_buffer`); reads must give the exact wrapping `u32` sum of the logits' words.
//!
//! After criterion's runs, a summary (stderr, Markdown): per op and shape the median of
//! `SUMMARY_REPS` submissions, in GPU time from timestamps written around the op in the same
//! encoder where the device has `TIMESTAMP_QUERY_INSIDE_ENCODERS` (else wall time), its GB/s,
//! and the ratio to the fastest yardstick of the shape measured the same way. The
//! submissions are taken in rounds that each time every op and yardstick of the shape once,
//! in turn, so that a slow spell of a shared machine falls on all of them alike. The fastest
//! copy kernel for ops that read and write `rows × classes`, the fastest read kernel for
//! the forward (which reads the logits once and writes almost nothing) is the yardstick. A
//! second table gives the slice API end to end beside its kernel, a third every yardstick's GB/s
//! per shape.
//!
//! Criterion reports `Throughput::Bytes` per iteration (printed in GiB/s). Under `--test`
//! (`cargo bench -- --test`, `cargo test --benches`) every benchmark runs once, checks
//! included. `WGPU_LOSS_BENCH_SUMMARY_ONLY=1` skips criterion: the checks run, then only the
//! adapter and the summary are printed (the device check's mode).
//!
//! ```text
//! XDG_RUNTIME_DIR=/tmp WGPU_BACKEND=vulkan cargo bench --bench cross_entropy
//! WGPU_LOSS_BENCH_SHAPES=8192x1000 cargo bench --bench cross_entropy   # one shape
//! WGPU_LOSS_BENCH_SUMMARY_ONLY=1 cargo bench --bench cross_entropy     # the summary alone
//! ```

use std::ops::Range;
use std::time::{Duration, Instant};

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use wgpu::util::DeviceExt;
use wgpu_loss::{CrossEntropyOptions, Gpu, LossBuffers, Reduction, Workspace, cpu};

/// Rows × classes; each has a multiple of 4 elements (the yardsticks move `vec4`s).
const SHAPES: [(usize, usize); 5] = [(65_536, 10), (8_192, 1_000), (2_048, 32_000), (128, 128_256), (16, 1_000_000)];
/// The CPU twin is benchmarked, and checks every row, on shapes up to this many elements;
/// it also bounds the blocks of rows the mean loss is checked in.
const CPU_MAX_ELEMENTS: usize = 8_200_000;
/// Submissions per op in the summary table (the median is reported).
const SUMMARY_REPS: usize = 7;
/// Invocations per workgroup of the yardstick kernels.
const YARDSTICK_WORKGROUP: u64 = 256;
/// Workgroups of a grid-stride yardstick at most (enough to fill a large GPU)...
const GRID_WORKGROUPS: u64 = 1024;
/// ... and `vec4`s per invocation at least, so a read kernel writes at most 4 bytes per 128 read.
const GRID_MIN_VEC4S: u64 = 8;
const F32: u64 = 4;
const VEC4: u64 = 4 * F32;

#[path = "shared/split_mix.rs"]
mod split_mix;
use split_mix::SplitMix64;

/// One shape's data, on the host (for the CPU twin and the checks) and in device buffers.
/// Outputs can be cleared (`COPY_DST`) and read back (`COPY_SRC`) by the checks.
struct ShapeData {
    rows: usize,
    classes: usize,
    logits: Vec<f32>,
    targets: Vec<i32>,
    /// Also `copy_buffer_to_buffer`'s source.
    logits_buf: wgpu::Buffer,
    targets_buf: wgpu::Buffer,
    /// `rows × classes`: log-softmax's output and the copies' destination.
    output_buf: wgpu::Buffer,
    /// `rows × classes`: the cross-entropy gradient.
    grad_buf: wgpu::Buffer,
    /// The mean loss (one value).
    loss_buf: wgpu::Buffer,
}

/// Usage of the buffers the ops and yardsticks write: checks clear them and read them back.
const OUTPUT_USAGE: wgpu::BufferUsages =
    wgpu::BufferUsages::STORAGE.union(wgpu::BufferUsages::COPY_SRC).union(wgpu::BufferUsages::COPY_DST);

impl ShapeData {
    fn new(gpu: &Gpu, rows: usize, classes: usize) -> Self {
        let mut rng = SplitMix64((rows * classes) as u64);
        let logits: Vec<f32> = (0..rows * classes).map(|_| rng.uniform(-10.0, 10.0)).collect();
        let targets: Vec<i32> = (0..rows).map(|_| rng.class(classes)).collect();
        let device = gpu.device();
        let init = |label, contents: &[u8]| {
            device.create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some(label),
                contents,
                usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            })
        };
        let empty = |label, bytes| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size: bytes,
                usage: OUTPUT_USAGE,
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

    /// Criterion's id of the shape.
    fn id(&self) -> String {
        format!("{}x{}", self.rows, self.classes)
    }

    /// Bytes of the `rows × classes` matrix, read or written once.
    fn matrix_bytes(&self) -> u64 {
        self.logits.len() as u64 * F32
    }

    /// Byte ranges of `rows`' elements in a `rows × classes` buffer.
    fn row_bytes(&self, rows: &Range<usize>) -> Range<u64> {
        let row = (self.classes as u64) * F32;
        rows.start as u64 * row..rows.end as u64 * row
    }
}

/// What an op or yardstick moves, and so which yardstick it is compared with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Traffic {
    /// Reads and writes `rows × classes`: compared with the fastest copy kernel.
    ReadWrite,
    /// Reads `rows × classes` and writes next to nothing: compared with the fastest read kernel.
    Read,
}

/// How a yardstick kernel spreads the `vec4`s over its invocations.
#[derive(Clone, Copy)]
enum Spread {
    /// `copy_block` / `read_block` with `BLOCK` = this many `vec4`s per invocation.
    Block(u32),
    /// `copy_grid_stride` / `read_grid_stride`.
    GridStride,
}

/// A yardstick compute kernel of `benches/copy.wgsl` or `benches/read.wgsl`, built once on
/// the crate's device.
struct Yardstick {
    name: &'static str,
    traffic: Traffic,
    spread: Spread,
    pipeline: wgpu::ComputePipeline,
}

/// A yardstick bound to one shape's buffers: one dispatch per binding-sized chunk.
struct BoundYardstick {
    dispatches: Vec<Dispatch>,
    /// What the kernel writes: the copy's destination or the read's partial sums.
    dst: wgpu::Buffer,
}

struct Dispatch {
    bind_group: wgpu::BindGroup,
    workgroups: (u32, u32),
}

impl Yardstick {
    /// The copy and read kernels, in the order the summary lists them.
    fn all(device: &wgpu::Device) -> Vec<Self> {
        let module = |label, source: &'static str| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(source.into()),
            })
        };
        let copy = module("bench copy", include_str!("copy.wgsl"));
        let read = module("bench read", include_str!("read.wgsl"));
        [
            ("copy_vec4", Traffic::ReadWrite, Spread::Block(1)),
            ("copy_block4", Traffic::ReadWrite, Spread::Block(4)),
            ("copy_block8", Traffic::ReadWrite, Spread::Block(8)),
            ("copy_grid_stride", Traffic::ReadWrite, Spread::GridStride),
            ("read_block8", Traffic::Read, Spread::Block(8)),
            ("read_grid_stride", Traffic::Read, Spread::GridStride),
        ]
        .into_iter()
        .map(|(name, traffic, spread)| {
            let (module, entry_point) = match (traffic, spread) {
                (Traffic::ReadWrite, Spread::Block(_)) => (&copy, "copy_block"),
                (Traffic::ReadWrite, Spread::GridStride) => (&copy, "copy_grid_stride"),
                (Traffic::Read, Spread::Block(_)) => (&read, "read_block"),
                (Traffic::Read, Spread::GridStride) => (&read, "read_grid_stride"),
            };
            let block = match spread {
                Spread::Block(b) => &[("BLOCK", f64::from(b))][..],
                Spread::GridStride => &[],
            };
            let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                label: Some(name),
                layout: None,
                module,
                entry_point: Some(entry_point),
                compilation_options: wgpu::PipelineCompilationOptions { constants: block, ..Default::default() },
                cache: None,
            });
            Self { name, traffic, spread, pipeline }
        })
        .collect()
    }

    /// Workgroups (x, y) over `vec4s`, folding those over the per-dimension limit into y.
    fn workgroups(&self, device: &wgpu::Device, vec4s: u64) -> (u32, u32) {
        let groups = match self.spread {
            Spread::Block(block) => vec4s.div_ceil(u64::from(block) * YARDSTICK_WORKGROUP),
            Spread::GridStride => vec4s.div_ceil(GRID_MIN_VEC4S * YARDSTICK_WORKGROUP).min(GRID_WORKGROUPS),
        };
        let max = u64::from(device.limits().max_compute_workgroups_per_dimension);
        let x = groups.clamp(1, max);
        let y = groups.div_ceil(x);
        assert!(y <= max, "{groups} workgroups do not fit in x and y");
        (x as u32, y as u32)
    }

    /// Binds `src` once, in chunks of at most one storage binding, as the loss ops'
    /// workspaces cache their bind groups. A copy writes `copy_dst` (the size of `src`); a
    /// read writes a new buffer of partial sums, one `u32` per invocation of each chunk.
    fn bind(&self, device: &wgpu::Device, src: &wgpu::Buffer, copy_dst: &wgpu::Buffer) -> BoundYardstick {
        assert!(src.size().is_multiple_of(VEC4), "the yardsticks move whole vec4s");
        let binding = device.limits().max_storage_buffer_binding_size / 256 * 256;
        let chunks: Vec<(Range<u64>, (u32, u32))> = (0..src.size().div_ceil(binding))
            .map(|k| {
                let bytes = k * binding..src.size().min((k + 1) * binding);
                let workgroups = self.workgroups(device, (bytes.end - bytes.start) / VEC4);
                (bytes, workgroups)
            })
            .collect();
        // The partial sums of each chunk follow the previous chunk's (whole workgroups of
        // u32s, so every offset is a multiple of 1024 bytes).
        let partials = |(x, y): (u32, u32)| u64::from(x) * u64::from(y) * YARDSTICK_WORKGROUP * F32;
        let dst = match self.traffic {
            Traffic::ReadWrite => {
                assert_eq!(src.size(), copy_dst.size(), "a copy moves whole buffers");
                copy_dst.clone()
            }
            Traffic::Read => device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("bench read partials"),
                size: chunks.iter().map(|&(_, w)| partials(w)).sum(),
                usage: OUTPUT_USAGE,
                mapped_at_creation: false,
            }),
        };
        let mut dst_offset = 0;
        let dispatches = chunks
            .into_iter()
            .map(|(bytes, workgroups)| {
                let dst_bytes = match self.traffic {
                    Traffic::ReadWrite => bytes.clone(),
                    Traffic::Read => dst_offset..dst_offset + partials(workgroups),
                };
                dst_offset = dst_bytes.end;
                let entry = |binding, buffer, bytes: Range<u64>| wgpu::BindGroupEntry {
                    binding,
                    resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                        buffer,
                        offset: bytes.start,
                        size: wgpu::BufferSize::new(bytes.end - bytes.start),
                    }),
                };
                let bind_group = device.create_bind_group(&wgpu::BindGroupDescriptor {
                    label: Some(self.name),
                    layout: &self.pipeline.get_bind_group_layout(0),
                    entries: &[entry(0, src, bytes), entry(1, &dst, dst_bytes)],
                });
                Dispatch { bind_group, workgroups }
            })
            .collect();
        BoundYardstick { dispatches, dst }
    }

    fn record(&self, encoder: &mut wgpu::CommandEncoder, bound: &BoundYardstick) {
        let mut pass =
            encoder.begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some(self.name), timestamp_writes: None });
        pass.set_pipeline(&self.pipeline);
        for d in &bound.dispatches {
            pass.set_bind_group(0, &d.bind_group, &[]);
            pass.dispatch_workgroups(d.workgroups.0, d.workgroups.1, 1);
        }
    }
}

/// Runs `iters` iterations of: record into a new encoder, submit, wait for that submission.
fn time_submissions(gpu: &Gpu, iters: u64, record: Record<'_>) -> Duration {
    let start = Instant::now();
    for _ in 0..iters {
        let mut encoder = gpu.device().create_command_encoder(&wgpu::CommandEncoderDescriptor::default());
        record(&mut encoder);
        let submission = gpu.queue().submit([encoder.finish()]);
        wait(gpu, Some(submission));
    }
    start.elapsed()
}

/// Waits for `submission` (all work when `None`).
fn wait(gpu: &Gpu, submission: Option<wgpu::SubmissionIndex>) {
    gpu.device()
        .poll(wgpu::PollType::Wait { submission_index: submission, timeout: None })
        .expect("the device finishes the submission");
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
    bench(c, group, &data.id(), bytes, |iters| time_submissions(gpu, iters, &mut *record));
}

/// Runs `record` once, on `outputs` cleared to zero first (so nothing left by an earlier
/// kernel can pass for its result), and returns the `reads` (buffer, byte range) afterwards,
/// one after the other.
fn run_and_read<T: bytemuck::Pod>(
    gpu: &Gpu, outputs: &[&wgpu::Buffer], record: Record<'_>, reads: &[(&wgpu::Buffer, Range<u64>)],
) -> Vec<T> {
    let mut encoder = gpu.device().create_command_encoder(&Default::default());
    for buffer in outputs {
        encoder.clear_buffer(buffer, 0, None);
    }
    record(&mut encoder);
    gpu.queue().submit([encoder.finish()]);
    reads
        .iter()
        .flat_map(|(buffer, bytes)| gpu.read_buffer::<T>(buffer.slice(bytes.clone())).expect("the check reads back"))
        .collect()
}

/// Aborts the bench unless every `got[i]` is within `1e-4·|want[i]| + 1e-6·max|want|` of
/// `want[i]` (a NaN never is): a kernel whose output is wrong posts no number.
fn check_close(what: &str, got: &[f32], want: &[f32]) {
    assert_eq!(got.len(), want.len(), "{what}: as many values read back as checked");
    let floor = 1e-6 * want.iter().fold(0f32, |m, w| m.max(w.abs()));
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let tolerance = 1e-4 * w.abs() + floor;
        let close = (g - w).abs() <= tolerance; // false for a NaN
        if !close {
            panic!(
                "bench check failed, {what}: value {i} is {g:e} on the GPU, {w:e} from the CPU twin \
                 (|difference| {:e} > tolerance {tolerance:e}); not timing a kernel that gets it wrong",
                (g - w).abs()
            );
        }
    }
}

/// What the CPU twin says about one shape, for the values the checks read back.
struct Reference {
    /// The rows whose log-softmax and gradient are checked: all of them, or rows 0, the
    /// middle one and the last (each its own range).
    rows: Vec<Range<usize>>,
    /// `cpu::log_softmax` of `rows`, one range after the other.
    log_softmax: Vec<f32>,
    /// The mean's gradient (`cpu::cross_entropy_with_grad`) of `rows`, likewise.
    grad: Vec<f32>,
    /// The mean loss over every row.
    mean_loss: f32,
}

impl Reference {
    fn new(data: &ShapeData) -> Self {
        let (rows, classes) = (data.rows, data.classes);
        let checked = if data.logits.len() <= CPU_MAX_ELEMENTS {
            std::iter::once(0..rows).collect()
        } else {
            let mut picks = vec![0, rows / 2, rows - 1];
            picks.dedup();
            picks.into_iter().map(|r| r..r + 1).collect()
        };
        // Per-row losses; the mean divides by the rows (every target is a valid class with
        // weight 1), so its gradient is the per-row one with grad_output 1 / rows.
        let mut per_row = CrossEntropyOptions::default();
        per_row.reduction = Reduction::None;
        let logits = |r: &Range<usize>| &data.logits[r.start * classes..r.end * classes];
        let (mut log_softmax, mut grad) = (Vec::new(), Vec::new());
        for r in &checked {
            log_softmax.extend(cpu::log_softmax(logits(r), r.len(), classes).expect("valid arguments"));
            let mean_grad = vec![1.0 / rows as f32; r.len()];
            let (_, g) = cpu::cross_entropy_with_grad(
                logits(r),
                &data.targets[r.clone()],
                r.len(),
                classes,
                &per_row,
                &mean_grad,
            )
            .expect("valid arguments");
            grad.extend(g);
        }
        // The mean over every row, in blocks of rows that keep the twin's f64 copies small.
        let block = (CPU_MAX_ELEMENTS / classes).max(1);
        let sum: f64 = (0..rows)
            .step_by(block)
            .map(|start| {
                let r = start..(start + block).min(rows);
                let losses = cpu::cross_entropy(logits(&r), &data.targets[r.clone()], r.len(), classes, &per_row)
                    .expect("valid arguments");
                losses.into_iter().map(f64::from).sum::<f64>()
            })
            .sum();
        Self { rows: checked, log_softmax, grad, mean_loss: (sum / rows as f64) as f32 }
    }

    /// The rows checked, in words, for the summary.
    fn describe(&self, rows: usize) -> String {
        if self.rows.iter().map(Range::len).sum::<usize>() == rows {
            "every row".to_string()
        } else {
            let picked: Vec<String> = self.rows.iter().map(|r| r.start.to_string()).collect();
            format!("rows {} (mean loss: every row)", picked.join(", "))
        }
    }
}

/// GPU time from timestamps written into the encoder around an op's commands.
struct Timer {
    queries: wgpu::QuerySet,
    resolve: wgpu::Buffer,
}

impl Timer {
    /// `None` where the device cannot write timestamps inside an encoder.
    fn new(gpu: &Gpu) -> Option<Self> {
        let device = gpu.device();
        if !device.features().contains(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS) {
            return None;
        }
        Some(Self {
            queries: device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("bench timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolve: device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("bench timestamps"),
                size: 16,
                usage: wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC,
                mapped_at_creation: false,
            }),
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
    }
    let start = Instant::now();
    let submission = gpu.queue().submit([encoder.finish()]);
    wait(gpu, Some(submission));
    let wall = start.elapsed();
    let gpu_time = timer.map(|t| {
        let ticks = gpu.read_buffer::<u64>(t.resolve.slice(..)).expect("timestamps read back");
        let ns = ticks[1].saturating_sub(ticks[0]) as f64 * f64::from(gpu.queue().get_timestamp_period());
        Duration::from_nanos(ns as u64)
    });
    (wall, gpu_time)
}

/// What a summary line is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Role {
    /// A loss op, compared with the fastest yardstick of its traffic.
    Op(Traffic),
    /// A yardstick kernel.
    Yardstick(Traffic),
    /// Shown beside the yardsticks, never one (`copy_buffer_to_buffer`).
    Beside,
}

/// One line of the summary: medians of wall and GPU time.
struct Summary {
    name: &'static str,
    role: Role,
    bytes: u64,
    wall: Duration,
    gpu: Option<Duration>,
}

impl Summary {
    /// GPU time where the device has timestamps, else wall time.
    fn time(&self) -> Duration {
        self.gpu.unwrap_or(self.wall)
    }

    fn gbps(&self) -> f64 {
        self.bytes as f64 / self.time().as_secs_f64() / 1e9
    }
}

/// One shape's summary lines and what its checks covered.
struct ShapeSummary {
    shape: String,
    checked: String,
    lines: Vec<Summary>,
    /// The slice API's `cross_entropy_with_grad` end to end: median wall time.
    slice: Duration,
}

impl ShapeSummary {
    /// The fastest yardstick kernel of `traffic`.
    fn best(&self, traffic: Traffic) -> &Summary {
        self.lines
            .iter()
            .filter(|l| l.role == Role::Yardstick(traffic))
            .max_by(|a, b| a.gbps().total_cmp(&b.gbps()))
            .expect("every shape has a yardstick of each traffic")
    }
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// An op or yardstick of one shape, already checked, as the summary times it.
struct Entry<'a> {
    name: &'static str,
    role: Role,
    bytes: u64,
    /// Records it into an encoder (with its own reused workspace or bind groups).
    record: Box<dyn FnMut(&mut wgpu::CommandEncoder) + 'a>,
}

/// The summary's lines for `entries`: a warm-up round (pipelines, bind groups, parameters),
/// then `reps` rounds that each time every entry once, in turn, so that a slow spell of a
/// shared machine falls on an op and its yardstick alike; the median of each entry's rounds.
fn summarise(gpu: &Gpu, timer: Option<&Timer>, reps: usize, entries: &mut [Entry<'_>]) -> Vec<Summary> {
    let mut times = vec![Vec::new(); entries.len()];
    for round in 0..=reps {
        for (entry, times) in entries.iter_mut().zip(&mut times) {
            let time = time_once(gpu, timer, &mut *entry.record);
            if round > 0 {
                times.push(time);
            }
        }
    }
    entries
        .iter()
        .zip(times)
        .map(|(entry, times)| {
            let (walls, gpus): (Vec<_>, Vec<_>) = times.into_iter().unzip();
            Summary {
                name: entry.name,
                role: entry.role,
                bytes: entry.bytes,
                wall: median(walls),
                gpu: gpus.into_iter().collect::<Option<Vec<_>>>().map(median),
            }
        })
        .collect()
}

/// Three significant digits, in the unit that suits.
fn format_time(t: Duration) -> String {
    let (value, unit) = match t.as_secs_f64() {
        s if s >= 1.0 => (s, "s"),
        s if s >= 1e-3 => (s * 1e3, "ms"),
        s => (s * 1e6, "µs"),
    };
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$} {unit}")
}

fn print_summary(shapes: &[ShapeSummary], reps: usize) {
    let Some(first) = shapes.first() else {
        return;
    };
    let timed = first.lines.iter().all(|l| l.gpu.is_some());
    let time = if timed { "GPU time" } else { "Wall time" };
    eprintln!();
    eprintln!(
        "{time} ({}), median of {reps} submission{}; ratio = op GB/s ÷ the fastest yardstick's GB/s \
         on the same shape in the same run (copy kernels for ops that read and write rows × classes, \
         read kernels for the forward). Every output was checked before timing: the ops against the \
         CPU twin, the copies and reads against the logits.",
        if timed { "timestamps" } else { "no timestamps on this device" },
        if reps == 1 { "" } else { "s" },
    );
    eprintln!();
    eprintln!("| Op | Shape | {time} | GB/s | Yardstick | Its GB/s | Ratio | Wall |");
    eprintln!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for s in shapes {
        for line in &s.lines {
            let Role::Op(traffic) = line.role else {
                continue;
            };
            let best = s.best(traffic);
            eprintln!(
                "| {} | {} | {} | {:.2} | {} | {:.2} | {:.2} | {} |",
                line.name,
                s.shape,
                format_time(line.time()),
                line.gbps(),
                best.name,
                best.gbps(),
                line.gbps() / best.gbps(),
                format_time(line.wall),
            );
        }
    }
    // The slice API end to end beside its kernel: what a caller with host data sees.
    eprintln!();
    eprintln!(
        "The slice API end to end (`gpu.cross_entropy_with_grad` on host slices: upload, kernel, \
         read back into `Vec`s; wall time, median of {reps}), GB/s of logits in plus gradient out, \
         beside the kernel's own wall time above."
    );
    eprintln!();
    eprintln!("| Shape | Slice call | GB/s | Kernel (wall) | Slice ÷ kernel |");
    eprintln!("| --- | --- | --- | --- | --- |");
    for s in shapes {
        let kernel = s.lines.iter().find(|l| l.name == "cross_entropy_with_grad").expect("the op is timed");
        let gbps = kernel.bytes as f64 / s.slice.as_secs_f64() / 1e9;
        let ratio = s.slice.as_secs_f64() / kernel.wall.as_secs_f64();
        eprintln!("| {} | {} | {gbps:.2} | {} | {ratio:.2} |", s.shape, format_time(s.slice), format_time(kernel.wall));
    }
    // Every yardstick (and what is shown beside them): GB/s and time, the fastest of each
    // traffic in bold.
    let others: Vec<&Summary> = first.lines.iter().filter(|l| !matches!(l.role, Role::Op(_))).collect();
    eprintln!();
    eprint!("| Shape |");
    for l in &others {
        eprint!(" {} |", l.name);
    }
    eprintln!(" Ops checked against the CPU twin on |");
    eprintln!("|{}", " --- |".repeat(others.len() + 2));
    for s in shapes {
        eprint!("| {} |", s.shape);
        for line in s.lines.iter().filter(|l| !matches!(l.role, Role::Op(_))) {
            let cell = format!("{:.2} GB/s, {}", line.gbps(), format_time(line.time()));
            let fastest = matches!(line.role, Role::Yardstick(t) if std::ptr::eq(s.best(t), line));
            if fastest {
                eprint!(" **{cell}** |");
            } else {
                eprint!(" {cell} |");
            }
        }
        eprintln!(" {} |", s.checked);
    }
}

fn bench_shape(
    c: &mut Criterion, gpu: &Gpu, timer: Option<&Timer>, yardsticks: &[Yardstick], data: &ShapeData, run: &Run,
) -> ShapeSummary {
    let (rows, classes) = (data.rows, data.classes);
    let shape = format!("{rows}×{classes}");
    let read = data.matrix_bytes();
    let opts = CrossEntropyOptions::default();
    let reference = Reference::new(data);
    // Each op and yardstick, checked as it is added; criterion and the summary time them after.
    let mut entries = Vec::new();
    // The checked rows' bytes in a `rows × classes` output.
    let checked_rows = |buffer| -> Vec<(&wgpu::Buffer, Range<u64>)> {
        reference.rows.iter().map(|r| (buffer, data.row_bytes(r))).collect()
    };
    let what = |op: &str| format!("{op} {shape}");

    let mut ws = Workspace::new(gpu);
    let mut log_softmax = Box::new(move |encoder: &mut wgpu::CommandEncoder| {
        gpu.encode_log_softmax(encoder, &mut ws, data.logits_buf.slice(..), data.output_buf.slice(..), rows, classes)
            .expect("log_softmax records");
    });
    let got = run_and_read(gpu, &[&data.output_buf], &mut *log_softmax, &checked_rows(&data.output_buf));
    check_close(&what("log_softmax"), &got, &reference.log_softmax);
    entries.push(Entry {
        name: "log_softmax",
        role: Role::Op(Traffic::ReadWrite),
        bytes: 2 * read,
        record: log_softmax,
    });

    let loss_only =
        LossBuffers::new(data.targets_buf.slice(..)).input(data.logits_buf.slice(..)).loss(data.loss_buf.slice(..));
    let with_grad = loss_only.grad(data.grad_buf.slice(..));
    for (name, buffers, traffic) in
        [("cross_entropy", loss_only, Traffic::Read), ("cross_entropy_with_grad", with_grad, Traffic::ReadWrite)]
    {
        let mut ws = Workspace::new(gpu);
        let opts = &opts;
        let mut record = Box::new(move |encoder: &mut wgpu::CommandEncoder| {
            gpu.encode_cross_entropy(encoder, &mut ws, &buffers, rows, classes, opts).expect("cross_entropy records");
        });
        let mut reads = vec![(&data.loss_buf, 0..F32)];
        if traffic == Traffic::ReadWrite {
            reads.extend(checked_rows(&data.grad_buf));
        }
        let got: Vec<f32> = run_and_read(gpu, &[&data.loss_buf, &data.grad_buf], &mut *record, &reads);
        check_close(&format!("{} mean loss", what(name)), &got[..1], &[reference.mean_loss]);
        if traffic == Traffic::ReadWrite {
            check_close(&format!("{} gradient", what(name)), &got[1..], &reference.grad);
        }
        let bytes = match traffic {
            Traffic::ReadWrite => 2 * read,
            Traffic::Read => read,
        };
        entries.push(Entry { name, role: Role::Op(traffic), bytes, record });
    }

    for yardstick in yardsticks {
        let bound = yardstick.bind(gpu.device(), &data.logits_buf, &data.output_buf);
        let dst = bound.dst.clone();
        let mut record = Box::new(move |encoder: &mut wgpu::CommandEncoder| yardstick.record(encoder, &bound));
        let bytes = check_yardstick(gpu, data, yardstick.name, yardstick.traffic, &dst, &mut *record);
        entries.push(Entry { name: yardstick.name, role: Role::Yardstick(yardstick.traffic), bytes, record });
    }
    let mut buffer_copy = Box::new(move |encoder: &mut wgpu::CommandEncoder| {
        encoder.copy_buffer_to_buffer(&data.logits_buf, 0, &data.output_buf, 0, read);
    });
    let bytes =
        check_yardstick(gpu, data, "copy_buffer_to_buffer", Traffic::ReadWrite, &data.output_buf, &mut *buffer_copy);
    entries.push(Entry { name: "copy_buffer_to_buffer", role: Role::Beside, bytes, record: buffer_copy });

    if !run.summary_only {
        for entry in &mut entries {
            bench_gpu(c, gpu, entry.name, data, entry.bytes, &mut *entry.record);
        }
    }
    if !run.summary_only && data.logits.len() <= CPU_MAX_ELEMENTS {
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
    let lines = summarise(gpu, timer, run.reps, &mut entries);
    let slice = bench_slice(c, gpu, data, &reference, run);
    ShapeSummary { checked: reference.describe(rows), lines, shape, slice }
}

/// The slice API end to end: `Gpu::cross_entropy_with_grad` on the host logits, checked as
/// the kernel is, under criterion (unless summary only), then the median wall time of
/// `run.reps` calls after a warm-up call, as the kernels' rounds.
fn bench_slice(c: &mut Criterion, gpu: &Gpu, data: &ShapeData, reference: &Reference, run: &Run) -> Duration {
    let (rows, classes) = (data.rows, data.classes);
    let opts = CrossEntropyOptions::default();
    let call = || {
        gpu.cross_entropy_with_grad(&data.logits, &data.targets, rows, classes, &opts, &[1.0]).expect("the slice call")
    };
    let (loss, grad) = call();
    let what = format!("slice cross_entropy_with_grad {rows}×{classes}");
    check_close(&format!("{what} mean loss"), &loss, &[reference.mean_loss]);
    let checked: Vec<f32> =
        reference.rows.iter().flat_map(|r| grad[r.start * classes..r.end * classes].iter().copied()).collect();
    check_close(&format!("{what} gradient"), &checked, &reference.grad);
    let mut timed = |iters: u64| {
        let start = Instant::now();
        for _ in 0..iters {
            std::hint::black_box(call());
        }
        start.elapsed()
    };
    if !run.summary_only {
        bench(c, "slice_cross_entropy_with_grad", &data.id(), 2 * data.matrix_bytes(), &mut timed);
    }
    median((0..=run.reps).map(|_| timed(1)).skip(1).collect())
}

/// Runs a copy (into `dst`, which must then hold the logits' bits) or a read (into the
/// partial sums in `dst`, whose wrapping sum must be that of the logits' words) once and
/// aborts the bench unless it did its work; returns the bytes it moves.
fn check_yardstick(
    gpu: &Gpu, data: &ShapeData, name: &str, traffic: Traffic, dst: &wgpu::Buffer, record: Record<'_>,
) -> u64 {
    let words: Vec<u32> = run_and_read(gpu, &[dst], record, &[(dst, 0..dst.size())]);
    let source = data.logits.iter().map(|x| x.to_bits());
    let shape = data.id();
    match traffic {
        Traffic::ReadWrite => {
            if let Some(i) = source.zip(&words).position(|(s, &d)| s != d) {
                panic!(
                    "bench check failed, {name} {shape}: word {i} of the destination is {:#010x}, \
                     the source's is {:#010x}; not timing a copy that skips work",
                    words[i],
                    data.logits[i].to_bits()
                );
            }
            2 * data.matrix_bytes()
        }
        Traffic::Read => {
            let want = source.fold(0u32, u32::wrapping_add);
            let got = words.into_iter().fold(0u32, u32::wrapping_add);
            assert_eq!(
                got, want,
                "bench check failed, {name} {shape}: the partial sums add up to {got:#010x}, the \
                 logits' words to {want:#010x}; not timing a read that skips work"
            );
            data.matrix_bytes()
        }
    }
}

/// How this run was asked for.
struct Run {
    /// `WGPU_LOSS_BENCH_SUMMARY_ONLY` set (not `0`): checks and the summary, no criterion.
    summary_only: bool,
    /// Submissions per summary line: 1 under `--test`, else `SUMMARY_REPS`.
    reps: usize,
}

fn loss_kernels(c: &mut Criterion) {
    let run = Run {
        summary_only: std::env::var("WGPU_LOSS_BENCH_SUMMARY_ONLY").is_ok_and(|v| !v.is_empty() && v != "0"),
        reps: if std::env::args().any(|a| a == "--test") { 1 } else { SUMMARY_REPS },
    };
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
    let yardsticks = Yardstick::all(gpu.device());
    let mut summary = Vec::new();
    // WGPU_LOSS_BENCH_SHAPES=8192x1000,65536x10 runs those shapes only.
    let only = std::env::var("WGPU_LOSS_BENCH_SHAPES").ok();
    for (rows, classes) in SHAPES {
        let id = format!("{rows}x{classes}");
        if only.as_ref().is_some_and(|o| !o.split(',').any(|s| s == id)) {
            continue;
        }
        let data = ShapeData::new(&gpu, rows, classes);
        summary.push(bench_shape(c, &gpu, timer.as_ref(), &yardsticks, &data, &run));
    }
    print_summary(&summary, run.reps);
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
