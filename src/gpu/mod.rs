//! The host core: adapter and device, the pipeline cache, argument binding, dispatch and
//! readback. Every op in [`crate::ops`] records through this and none re-implements it.

mod kernels;
mod params;
mod readback;
mod shaders;
mod slice;
mod workspace;

use std::sync::Mutex;
use std::time::Duration;

pub(crate) use kernels::{Kernel, Layout, SOLO_CLASSES, SOLO_ROWS_PER_WORKGROUP};
pub(crate) use params::*;
pub use workspace::Workspace;
pub(crate) use workspace::{Binding, Dispatch, status_to_result};

use crate::error::{Error, Result};
use kernels::{Kernels, MAX_RESIDENT_SLOTS, RowShape};
use shaders::RowReduce;
use slice::SliceScratch;

/// How a [`Gpu`] is set up. Build it from `Default` and change fields.
///
/// ```
/// let mut opts = wgpu_loss::GpuOptions::default();
/// opts.subgroups = false; // force the workgroup-memory fallback
/// assert!(opts.readback_timeout.as_secs() > 0);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct GpuOptions {
    /// Use subgroup operations where the device has `SUBGROUP` and a fixed subgroup size
    /// (default `true`). `false` forces the workgroup-memory path on every device.
    pub subgroups: bool,
    /// How long a slice-API call waits for its results before returning
    /// [`Error::Readback`] (default 120 s). Native only: in a browser the device is polled
    /// by the browser and awaiting a readback never blocks. On GL, wgpu runs a submission's
    /// commands inside `queue.submit`, so the timeout bounds only the wait after that.
    pub readback_timeout: Duration,
    /// Caps the bytes of one `rows × classes` storage binding below the device's
    /// `max_storage_buffer_binding_size` (default `None`: the device's limit). Larger
    /// batches are recorded as row chunks either way; a cap bounds each dispatch's range.
    pub max_binding_size: Option<u64>,
    /// Rows of more than twice this many classes are split into segments of this many
    /// classes, one workgroup each, whose log-sum-exp partials are merged exactly (default
    /// `None`: by adapter — 16384 on GPUs, where a row's segments spread it over the
    /// device, and 65536 on CPU adapters, where each workgroup is a task on one core and
    /// fewer, longer ones cost less while they still fill the cores). Results do not depend
    /// on it beyond f32 rounding.
    pub segment_classes: Option<u32>,
    /// Invocations per row in the row-wise kernels (default `None`: chosen from the
    /// adapter — one subgroup on CPU adapters, 256 on GPUs). Rounded down to a power of two
    /// within the device's limits and, with subgroups, to at least one subgroup.
    pub row_workgroup_size: Option<u32>,
    /// Hold each row in registers when it fits (default `true`): log-softmax, softmax and
    /// plain cross-entropy then read the row once and write it once. Rows fit when their
    /// classes are a multiple of 4 at 16-byte-aligned offsets, more than 32 and at most
    /// 128 × the invocations per row. `false` takes the two-read kernels everywhere.
    pub resident_rows: bool,
    /// The most bytes of scratch the fused linear + cross-entropy op allocates beyond its
    /// inputs and outputs (default 64 MiB). It computes the logits of a tenth of the
    /// tokens at a time (under a sixteenth of the logits and their gradient), fewer where
    /// that would not fit this budget, in chunks of a multiple of 16 tokens. Results do not
    /// depend on it.
    pub linear_scratch_bytes: u64,
    /// How the fused linear op's products are tiled (default `None`: by adapter). `true`:
    /// the GPU form — 256 invocations per 64 × 64 tile of the product, 4 × 4 values each,
    /// both operands passing through workgroup memory 16 values of k at a time. `false`:
    /// the CPU-adapter form — 64 invocations per tile, 8 × 8 values each, the operands
    /// read straight from their buffers (on a CPU, workgroup memory is ordinary memory and
    /// a barrier switches coroutines). The adapter's default: `false` on CPU adapters,
    /// `true` elsewhere. Results are the same bit for bit but the sign of a zero.
    pub linear_staged: Option<bool>,
    /// Whether the slice API's buffers are mapped by the host (default `None`: by
    /// adapter). Mapped, an upload is one copy from your slice into the buffer the kernel
    /// reads, and a result one copy from the buffer the kernel wrote into the returned
    /// `Vec`, with no staging buffers between; it needs the device's
    /// `MAPPABLE_PRIMARY_BUFFERS` (native; [`Gpu::new`] asks for it on such adapters) and
    /// pays only where the GPU shares memory with the host. The adapter's default: `true`
    /// on CPU adapters and integrated GPUs, `false` elsewhere; `true` without the feature
    /// takes the staged path. Results are the same bit for bit.
    pub mapped_slices: Option<bool>,
}

impl Default for GpuOptions {
    fn default() -> Self {
        Self {
            subgroups: true,
            readback_timeout: Duration::from_secs(120),
            max_binding_size: None,
            segment_classes: None,
            row_workgroup_size: None,
            resident_rows: true,
            linear_scratch_bytes: 64 << 20,
            linear_staged: None,
            mapped_slices: None,
        }
    }
}

/// A device, its queue and everything built on it once: pipelines, layouts, and a pool of
/// scratch buffers for the slice API. `Send + Sync` on native targets: share one between
/// threads (on wasm32, wgpu's types are single-threaded).
///
/// ```
/// # fn main() -> Result<(), wgpu_loss::Error> {
/// let gpu = wgpu_loss::Gpu::new()?;
/// let p = gpu.softmax(&[0.0, 0.0, 0.0, 0.0], 1, 4)?;
/// assert_eq!(p, vec![0.25; 4]);
/// println!("ran on {}", gpu.adapter_info().name);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Gpu {
    device: wgpu::Device,
    queue: wgpu::Queue,
    info: wgpu::AdapterInfo,
    row: RowShape,
    kernels: Kernels,
    /// Bound where an op has no buffer for a read-only slot (no weight, scalar grad_output).
    placeholder: wgpu::Buffer,
    #[cfg_attr(target_arch = "wasm32", allow(dead_code))]
    readback_timeout: Duration,
    max_binding_size: u64,
    segment_classes: u32,
    resident_rows: bool,
    linear_scratch_bytes: u64,
    linear_staged: bool,
    mapped_slices: bool,
    slice_pool: Mutex<Vec<SliceScratch>>,
    /// [`Gpu::read_buffer`]'s staging buffer, kept between calls.
    readback_staging: Mutex<Option<wgpu::Buffer>>,
}

/// The optional features the kernels use when the adapter has them.
const WANTED_FEATURES: wgpu::Features = wgpu::Features::SUBGROUP
    .union(wgpu::Features::SHADER_F16)
    .union(wgpu::Features::TIMESTAMP_QUERY)
    .union(wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS);

impl Gpu {
    /// Picks an adapter (honouring `WGPU_BACKEND`, `WGPU_ADAPTER_NAME` and
    /// `WGPU_POWER_PREF`) and creates a device with the adapter's own limits. Blocking;
    /// native only (see [`Gpu::new_async`]).
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().expect("a GPU adapter (or Mesa's lavapipe/llvmpipe)");
    /// ```
    #[cfg(not(target_arch = "wasm32"))]
    pub fn new() -> Result<Self> {
        pollster::block_on(Self::new_async())
    }

    /// [`Gpu::new`] with options. Blocking; native only.
    ///
    /// ```
    /// let mut opts = wgpu_loss::GpuOptions::default();
    /// opts.subgroups = false;
    /// let gpu = wgpu_loss::Gpu::with_options(opts).unwrap();
    /// assert!(!gpu.uses_subgroups());
    /// ```
    #[cfg(not(target_arch = "wasm32"))]
    pub fn with_options(options: GpuOptions) -> Result<Self> {
        pollster::block_on(Self::with_options_async(options))
    }

    /// The async form of [`Gpu::new`], for the web and async apps.
    ///
    /// ```
    /// let gpu = pollster::block_on(wgpu_loss::Gpu::new_async()).unwrap();
    /// ```
    pub async fn new_async() -> Result<Self> {
        Self::with_options_async(GpuOptions::default()).await
    }

    /// The async form of [`Gpu::with_options`].
    ///
    /// ```
    /// let gpu = pollster::block_on(wgpu_loss::Gpu::with_options_async(Default::default()));
    /// assert!(gpu.is_ok());
    /// ```
    pub async fn with_options_async(options: GpuOptions) -> Result<Self> {
        let instance = wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env());
        let adapter = pick_adapter(&instance).await?;
        let mut wanted = WANTED_FEATURES;
        if wants_mapped_slices(&adapter.get_info(), &options) {
            wanted |= wgpu::Features::MAPPABLE_PRIMARY_BUFFERS;
        }
        let (device, queue) = adapter
            .request_device(&wgpu::DeviceDescriptor {
                label: Some("wgpu-loss"),
                required_features: adapter.features() & wanted,
                required_limits: adapter.limits(),
                ..Default::default()
            })
            .await
            .map_err(|e| Error::RequestDevice(e.to_string()))?;
        Ok(Self::from_device_with_options(device, queue, options))
    }

    /// Embeds the library in an app that already has a device: it then works within
    /// `device.limits()` and `device.features()` and never creates a device of its own.
    ///
    /// ```
    /// # let own = wgpu_loss::Gpu::new().unwrap();
    /// # let (device, queue) = (own.device().clone(), own.queue().clone());
    /// let gpu = wgpu_loss::Gpu::from_device(device, queue);
    /// assert_eq!(gpu.log_softmax(&[1.0], 1, 1).unwrap(), vec![0.0]);
    /// ```
    pub fn from_device(device: wgpu::Device, queue: wgpu::Queue) -> Self {
        Self::from_device_with_options(device, queue, GpuOptions::default())
    }

    /// [`Gpu::from_device`] with options.
    ///
    /// ```
    /// # let own = wgpu_loss::Gpu::new().unwrap();
    /// # let (device, queue) = (own.device().clone(), own.queue().clone());
    /// let gpu = wgpu_loss::Gpu::from_device_with_options(device, queue, Default::default());
    /// ```
    pub fn from_device_with_options(device: wgpu::Device, queue: wgpu::Queue, options: GpuOptions) -> Self {
        let info = device.adapter_info();
        let row = choose_row_shape(&device, &info, &options);
        let linear_staged = options.linear_staged.unwrap_or(info.device_type != wgpu::DeviceType::Cpu);
        let mapped_slices = wants_mapped_slices(&info, &options)
            && device.features().contains(wgpu::Features::MAPPABLE_PRIMARY_BUFFERS);
        let segment_classes = options.segment_classes.unwrap_or(default_segment_classes(&info)).max(1);
        let kernels = Kernels::new(&device, row);
        let placeholder = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("wgpu-loss placeholder"),
            size: 16,
            usage: wgpu::BufferUsages::STORAGE,
            mapped_at_creation: false,
        });
        Self {
            device,
            queue,
            info,
            row,
            kernels,
            placeholder,
            readback_timeout: options.readback_timeout,
            max_binding_size: options.max_binding_size.unwrap_or(u64::MAX),
            segment_classes,
            resident_rows: options.resident_rows,
            linear_scratch_bytes: options.linear_scratch_bytes,
            linear_staged,
            mapped_slices,
            slice_pool: Mutex::new(Vec::new()),
            readback_staging: Mutex::new(None),
        }
    }

    /// What the device runs on (name, backend, driver).
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// println!("{} via {:?}", gpu.adapter_info().name, gpu.adapter_info().backend);
    /// ```
    pub fn adapter_info(&self) -> &wgpu::AdapterInfo {
        &self.info
    }

    /// The device the kernels run on (to create buffers for the encode API).
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// assert!(gpu.device().limits().max_storage_buffer_binding_size > 0);
    /// ```
    pub fn device(&self) -> &wgpu::Device {
        &self.device
    }

    /// The queue work is submitted to.
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// gpu.queue().submit([]);
    /// ```
    pub fn queue(&self) -> &wgpu::Queue {
        &self.queue
    }

    /// Whether the row-wise kernels use subgroup operations on this device.
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// println!("subgroups: {}", gpu.uses_subgroups());
    /// ```
    pub fn uses_subgroups(&self) -> bool {
        self.row.reduce == RowReduce::Subgroup
    }

    /// Invocations per row in the row-wise kernels on this device: what
    /// [`GpuOptions::row_workgroup_size`] asked for, rounded as it documents, or the
    /// adapter's default (one subgroup on CPU adapters, 256 on GPUs).
    ///
    /// ```
    /// let mut opts = wgpu_loss::GpuOptions::default();
    /// opts.subgroups = false;
    /// opts.row_workgroup_size = Some(64);
    /// let gpu = wgpu_loss::Gpu::with_options(opts).unwrap();
    /// assert_eq!(gpu.row_workgroup_size(), 64);
    /// ```
    pub fn row_workgroup_size(&self) -> u32 {
        self.row.workgroup_size
    }

    /// Whether the fused linear op's products stage their operands through workgroup
    /// memory on this device (the GPU form; see [`GpuOptions::linear_staged`]).
    ///
    /// ```
    /// let mut opts = wgpu_loss::GpuOptions::default();
    /// opts.linear_staged = Some(false);
    /// let gpu = wgpu_loss::Gpu::with_options(opts).unwrap();
    /// assert!(!gpu.stages_linear_tiles());
    /// ```
    pub fn stages_linear_tiles(&self) -> bool {
        self.linear_staged
    }

    /// Whether the slice API reads and writes its buffers through mapped memory on this
    /// device (see [`GpuOptions::mapped_slices`]).
    ///
    /// ```
    /// let mut opts = wgpu_loss::GpuOptions::default();
    /// opts.mapped_slices = Some(false);
    /// let gpu = wgpu_loss::Gpu::with_options(opts).unwrap();
    /// assert!(!gpu.maps_slice_buffers());
    /// ```
    pub fn maps_slice_buffers(&self) -> bool {
        self.mapped_slices
    }

    /// The kernels this `Gpu` has recorded so far (slice and encode API alike), sorted: each
    /// named by its WGSL entry point, the quads per invocation in brackets for kernels that
    /// hold rows in registers, `+log_space`, `+backward` or `+in_place` for each override
    /// constant its pipeline sets, the precision of the logits it reads, and, for row-wise
    /// kernels, whether it reduces a row with `subgroup` operations or through `workgroup`
    /// memory. Tells which path a call took; the tests use it to prove every kernel ran.
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// gpu.log_softmax(&[1.0, 2.0, 3.0], 1, 3).unwrap();
    /// let ran = gpu.recorded_kernels();
    /// assert!(ran.iter().any(|k| k.starts_with("softmax_forward_short[1]+log_space f32")), "{ran:?}");
    /// ```
    pub fn recorded_kernels(&self) -> Vec<String> {
        self.kernels.recorded_names()
    }

    /// Every kernel this `Gpu` can record on its device, named as in
    /// [`Gpu::recorded_kernels`] (f16 variants only where the device has `SHADER_F16`).
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let all = gpu.recordable_kernels();
    /// assert!(gpu.recorded_kernels().iter().all(|k| all.contains(k)));
    /// ```
    pub fn recordable_kernels(&self) -> Vec<String> {
        self.kernels.recordable_names()
    }

    pub(crate) fn kernels(&self) -> &Kernels {
        &self.kernels
    }

    /// `(segment length, segments per row)` for rows of `classes`: one segment unless the
    /// rows are longer than twice [`GpuOptions::segment_classes`].
    pub(crate) fn row_segments(&self, classes: usize) -> (u32, u32) {
        let seg = self.segment_classes as usize;
        if classes <= 2 * seg { (classes as u32, 1) } else { (seg as u32, classes.div_ceil(seg) as u32) }
    }

    /// The quads per invocation a resident kernel needs for whole rows of `classes` (a
    /// power of two), or `None` where rows are not held on-chip: resident rows turned off,
    /// short rows (one invocation each), classes not a multiple of 4, or more than
    /// [`MAX_RESIDENT_SLOTS`] quads per invocation. The caller checks the offsets.
    pub(crate) fn resident_slots(&self, classes: usize) -> Option<u32> {
        if !self.resident_rows || classes <= SOLO_CLASSES || !classes.is_multiple_of(4) {
            return None;
        }
        let per_slot = 4 * self.row.workgroup_size as usize;
        let slots = classes.div_ceil(per_slot).next_power_of_two();
        (slots <= MAX_RESIDENT_SLOTS as usize).then_some(slots as u32)
    }

    /// The quads one invocation holds for a short row of `classes` (≤ 32: one invocation
    /// per row), or `None` for longer rows or with resident rows turned off.
    pub(crate) fn short_slots(&self, classes: usize) -> Option<u32> {
        (self.resident_rows && classes <= SOLO_CLASSES).then(|| classes.div_ceil(4) as u32)
    }

    /// How many short rows of `classes` one invocation of the packed kernels takes (the
    /// fewest whose classes fill whole quads: 1 for a multiple of 4, 2 for other even
    /// lengths), or `None` for odd lengths and where short rows are not held in registers
    /// (see [`Gpu::short_slots`]).
    pub(crate) fn packed_rows(&self, classes: usize) -> Option<u64> {
        let pack = if classes.is_multiple_of(4) { 1 } else { 2 };
        self.short_slots(classes).filter(|_| classes.is_multiple_of(2)).map(|_| pack)
    }

    /// The most bytes one row chunk of a `rows × classes` matrix may bind.
    pub(crate) fn max_binding_size(&self) -> u64 {
        self.max_binding_size.min(self.device.limits().max_storage_buffer_binding_size)
    }

    /// [`GpuOptions::linear_scratch_bytes`].
    pub(crate) fn linear_scratch_bytes(&self) -> u64 {
        self.linear_scratch_bytes
    }

    /// The slot count of the linear products' form on this device.
    pub(crate) fn linear_slots(&self) -> u32 {
        if self.linear_staged { LINEAR_SLOTS_STAGED } else { LINEAR_SLOTS_DIRECT }
    }

    pub(crate) fn placeholder(&self) -> &wgpu::Buffer {
        &self.placeholder
    }
}

/// The adapter `WGPU_ADAPTER_NAME` names (case-insensitive substring), else the one
/// `request_adapter` picks for `WGPU_POWER_PREF`. `WGPU_BACKEND` filters the instance.
async fn pick_adapter(instance: &wgpu::Instance) -> Result<wgpu::Adapter> {
    let wanted_name = std::env::var("WGPU_ADAPTER_NAME").ok().map(|n| n.to_lowercase());
    if let Some(name) = wanted_name.filter(|n| !n.is_empty()) {
        let adapters = instance.enumerate_adapters(wgpu::Backends::all()).await;
        let names: Vec<String> = adapters.iter().map(|a| a.get_info().name).collect();
        return adapters.into_iter().find(|a| a.get_info().name.to_lowercase().contains(&name)).ok_or_else(|| {
            Error::NoAdapter { detail: format!("WGPU_ADAPTER_NAME={name:?} matches none of {names:?}") }
        });
    }
    instance
        .request_adapter(&wgpu::RequestAdapterOptions {
            power_preference: wgpu::PowerPreference::from_env().unwrap_or_default(),
            ..Default::default()
        })
        .await
        .map_err(|e| Error::NoAdapter {
            detail: format!("{e}; WGPU_BACKEND={:?}", std::env::var("WGPU_BACKEND").unwrap_or_default()),
        })
}

/// Whether `options` ask for mapped slice buffers on this adapter: by default where the
/// GPU shares memory with the host.
fn wants_mapped_slices(info: &wgpu::AdapterInfo, options: &GpuOptions) -> bool {
    let unified = matches!(info.device_type, wgpu::DeviceType::Cpu | wgpu::DeviceType::IntegratedGpu);
    options.mapped_slices.unwrap_or(unified)
}

/// Classes per segment of a split row by default: long segments on CPU adapters, where
/// each workgroup is a task on one core (fewer tasks cost less and still fill the cores),
/// short ones on GPUs, where a row's segments spread it over the device.
fn default_segment_classes(info: &wgpu::AdapterInfo) -> u32 {
    if info.device_type == wgpu::DeviceType::Cpu { 65536 } else { 16384 }
}

/// Subgroup operations where the device has subgroups of one fixed size; otherwise a
/// workgroup-memory tree, small on CPU adapters (where each barrier switches threads) and
/// 256 wide on GPUs.
fn choose_row_shape(device: &wgpu::Device, info: &wgpu::AdapterInfo, options: &GpuOptions) -> RowShape {
    let limits = device.limits();
    let limit =
        prev_power_of_two(limits.max_compute_invocations_per_workgroup.min(limits.max_compute_workgroup_size_x));
    let cpu = info.device_type == wgpu::DeviceType::Cpu;
    let size = info.subgroup_min_size;
    let fixed_subgroup = size == info.subgroup_max_size && size.is_power_of_two() && (4..=256).contains(&size);
    if options.subgroups && device.features().contains(wgpu::Features::SUBGROUP) && fixed_subgroup && size <= limit {
        // CPU adapters: one subgroup per row (barriers switch threads there); GPUs: up to
        // 256 invocations per row, at most 64 subgroups.
        let preferred = options.row_workgroup_size.unwrap_or(if cpu { size } else { 256 });
        let workgroup_size = prev_power_of_two(preferred).min(limit).min(64 * size).max(size);
        return RowShape { reduce: RowReduce::Subgroup, workgroup_size, subgroup_size: size };
    }
    RowShape {
        reduce: RowReduce::Workgroup,
        workgroup_size: prev_power_of_two(options.row_workgroup_size.unwrap_or(if cpu { 8 } else { 256 })).min(limit),
        subgroup_size: 0,
    }
}

fn prev_power_of_two(n: u32) -> u32 {
    if n == 0 { 1 } else { 1 << (31 - n.leading_zeros()) }
}
