//! What the encode API needs between recordings: the caller-held [`Workspace`], the
//! validation that turns a caller's `BufferSlice` into a binding, and the recording of
//! dispatches into the caller's encoder.

use super::{BATCH_STATE_BYTES, Gpu, Kernel, Layout, LossParams, PARTIAL_BYTES};
use crate::error::{Error, Result};
use crate::options::Precision;

const F32: u64 = 4;

/// `Err(InvalidTarget)` when the batch state (read back as four 32-bit words) names a row.
pub(crate) fn status_to_result(state: &[f32], classes: usize) -> Result<()> {
    let key = state[1].to_bits();
    if key == 0 {
        return Ok(());
    }
    Err(Error::InvalidTarget { row: (u32::MAX - key) as usize, value: i64::from(state[2].to_bits() as i32), classes })
}
/// Bind groups a workspace keeps for reuse beyond those of its last recording.
const BIND_GROUP_CACHE: usize = 8;
/// Stride of the parameter slots in the params buffer (WebGPU's largest uniform-offset
/// alignment, so any device accepts it).
const PARAMS_SLOT: u64 = 256;

/// Scratch for recording ops with the encode API: the parameter block, partial sums and
/// cached bind groups of one op recording.
///
/// Hold one per op you record and reuse it every step: when an op is recorded again on the
/// same buffers with the same shape, nothing is created or written — the bind group and the
/// parameters are reused. Parameters are written with `queue.write_buffer`, which takes
/// effect at the next `queue.submit`, so one workspace serves one recording per submission:
/// use separate workspaces for ops recorded into the same encoder.
///
/// ```
/// let gpu = wgpu_loss::Gpu::new().unwrap();
/// let mut ws = wgpu_loss::Workspace::new(&gpu);
/// ```
#[derive(Debug)]
pub struct Workspace {
    /// One parameter slot per dispatch group (the batch, then each row chunk; then the
    /// linear products), `PARAMS_SLOT` bytes each.
    params: wgpu::Buffer,
    /// The slots' bytes as last written.
    written: Vec<u8>,
    /// The batch state of the last class-index op: mean's divisor and the first
    /// out-of-range target (`BatchState` in shaders/shared/class_index.wgsl).
    batch: wgpu::Buffer,
    /// Where [`Workspace::check_targets`] reads the batch state back.
    status_staging: Option<wgpu::Buffer>,
    /// Per-row losses when the caller does not want them (sum, mean, gradient only).
    row_losses: wgpu::Buffer,
    /// Class weights from word 0, then the extra outputs of cross-entropy.
    aux: wgpu::Buffer,
    /// The weights now at the start of `aux`.
    aux_weight: Vec<f32>,
    /// Bound to read-write slots an op leaves unused.
    spare_grad: wgpu::Buffer,
    spare_loss: wgpu::Buffer,
    /// The fused linear + cross-entropy op's logits of one row chunk (then their gradient).
    logits: Option<wgpu::Buffer>,
    bind_groups: Vec<(BindKey, wgpu::BindGroup)>,
}

type BindKey = (Layout, Vec<(u32, wgpu::Buffer, u64, u64)>);

fn params_buffer(device: &wgpu::Device, slots: usize) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("wgpu-loss params"),
        size: slots.max(1) as u64 * PARAMS_SLOT,
        usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

fn storage_buffer(device: &wgpu::Device, label: &str, bytes: u64, extra: wgpu::BufferUsages) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes.max(16).next_multiple_of(16),
        usage: wgpu::BufferUsages::STORAGE | extra,
        mapped_at_creation: false,
    })
}

impl Workspace {
    /// Creates an empty workspace on `gpu`'s device; it grows on first use.
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let ws = wgpu_loss::Workspace::new(&gpu);
    /// ```
    pub fn new(gpu: &Gpu) -> Self {
        let device = gpu.device();
        let none = wgpu::BufferUsages::empty();
        Self {
            params: params_buffer(device, 1),
            written: Vec::new(),
            batch: storage_buffer(
                device,
                "wgpu-loss batch state",
                BATCH_STATE_BYTES + PARTIAL_BYTES,
                wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            ),
            status_staging: None,
            row_losses: storage_buffer(device, "wgpu-loss row losses", 16, none),
            aux: storage_buffer(
                device,
                "wgpu-loss aux",
                16,
                wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC,
            ),
            aux_weight: Vec::new(),
            spare_grad: storage_buffer(device, "wgpu-loss spare", 16, none),
            spare_loss: storage_buffer(device, "wgpu-loss spare", 16, none),
            logits: None,
            bind_groups: Vec::new(),
        }
    }

    /// Makes sure the batch state holds `partials` row partials (split or sharded rows).
    pub(crate) fn reserve_partials(&mut self, gpu: &Gpu, partials: u64) {
        let bytes = BATCH_STATE_BYTES + partials * PARTIAL_BYTES;
        if self.batch.size() < bytes {
            let usage = wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
            self.batch = storage_buffer(gpu.device(), "wgpu-loss batch state", bytes.next_power_of_two(), usage);
            self.bind_groups.clear();
        }
    }

    /// Writes row partials (eight words each) at the start of the batch state's partials.
    pub(crate) fn write_partials(&self, gpu: &Gpu, words: &[f32]) {
        gpu.queue().write_buffer(&self.batch, BATCH_STATE_BYTES, bytemuck::cast_slice(words));
    }

    /// Makes sure the scratch holds `rows` per-row losses, the auxiliary buffer holds the
    /// weights (uploaded unless they are already there) and `extra_words` more words after
    /// them, and returns where those extra words start.
    pub(crate) fn prepare(&mut self, gpu: &Gpu, rows: u64, weight: Option<&[f32]>, extra_words: u64) -> u32 {
        if self.row_losses.size() < rows * F32 {
            let bytes = (rows * F32).next_power_of_two();
            self.row_losses = storage_buffer(gpu.device(), "wgpu-loss row losses", bytes, wgpu::BufferUsages::empty());
            self.bind_groups.clear();
        }
        let weight_words = weight.map_or(0, |w| w.len() as u64);
        let needed = (weight_words.max(self.aux_weight.len() as u64) + extra_words) * F32;
        if self.aux.size() < needed {
            let usage = wgpu::BufferUsages::COPY_DST | wgpu::BufferUsages::COPY_SRC;
            self.aux = storage_buffer(gpu.device(), "wgpu-loss aux", needed.next_power_of_two(), usage);
            self.aux_weight.clear();
            self.bind_groups.clear();
        }
        if let Some(w) = weight.filter(|w| *w != self.aux_weight.as_slice()) {
            gpu.queue().write_buffer(&self.aux, 0, bytemuck::cast_slice(w));
            self.aux_weight = w.to_vec();
        }
        self.aux_weight.len() as u32
    }

    /// The auxiliary buffer (weights, then extra outputs), bound at slot 3.
    pub(crate) fn aux(&self) -> Binding {
        Binding::whole(&self.aux)
    }

    /// The auxiliary buffer itself, for copying extra outputs out of it.
    pub(crate) fn aux_buffer(&self) -> &wgpu::Buffer {
        &self.aux
    }

    /// Writes one parameter slot per dispatch group, unless the slots already hold exactly
    /// these values (a training loop recording the same op writes nothing).
    pub(crate) fn set_params(&mut self, gpu: &Gpu, params: &[LossParams]) {
        let slots: Vec<&[u8]> = params.iter().map(bytemuck::bytes_of).collect();
        self.set_param_slots(gpu, &slots);
    }

    /// [`Workspace::set_params`] for slots of any parameter block (the class-index ops'
    /// and the linear products' in one op): each slot's bytes at the start of its slot.
    pub(crate) fn set_param_slots(&mut self, gpu: &Gpu, slots: &[&[u8]]) {
        let mut bytes = vec![0u8; slots.len() * PARAMS_SLOT as usize];
        for (slot, p) in bytes.chunks_mut(PARAMS_SLOT as usize).zip(slots) {
            slot[..p.len()].copy_from_slice(p);
        }
        if self.written == bytes {
            return;
        }
        if self.params.size() < bytes.len() as u64 {
            self.params = params_buffer(gpu.device(), slots.len());
            self.bind_groups.clear();
        }
        gpu.queue().write_buffer(&self.params, 0, &bytes);
        self.written = bytes;
    }

    /// The binding of parameter slot `slot` (binding 0 of every layout) holding a
    /// [`LossParams`].
    pub(crate) fn params(&self, slot: usize) -> Binding {
        self.param_slot(slot, std::mem::size_of::<LossParams>() as u64)
    }

    /// The binding of parameter slot `slot` holding a block of `bytes` bytes.
    pub(crate) fn param_slot(&self, slot: usize, bytes: u64) -> Binding {
        Binding { buffer: self.params.clone(), offset: slot as u64 * PARAMS_SLOT, size: bytes, element_offset: 0 }
    }

    pub(crate) fn batch(&self) -> Binding {
        Binding::whole(&self.batch)
    }

    /// Records the reset of the batch state (no divisor, no bad target) into `encoder`.
    pub(crate) fn clear_batch(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.clear_buffer(&self.batch, 0, Some(BATCH_STATE_BYTES));
    }

    /// The batch state of the last NLL / cross-entropy op recorded with this workspace:
    /// 16 bytes, `[total_weight: f32, bad_row_key: u32, bad_value: i32, 0]`, where
    /// `bad_row_key` is `0xffff_ffff - row` of the first row whose target was out of range
    /// (0 if none). Copy it wherever suits you, or use [`Workspace::check_targets`].
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let ws = wgpu_loss::Workspace::new(&gpu);
    /// assert!(ws.status_buffer().usage().contains(wgpu::BufferUsages::COPY_SRC));
    /// ```
    pub fn status_buffer(&self) -> &wgpu::Buffer {
        &self.batch
    }

    /// Turns the batch state copied out of [`Workspace::status_buffer`] and read back as four
    /// words into a result: [`Error::InvalidTarget`] with the first out-of-range row and its
    /// value (against `classes` classes), or `Ok`. For callers who copy the status into a
    /// buffer of their own and read it back with their own work.
    ///
    /// ```
    /// use wgpu_loss::{Error, Workspace};
    /// assert!(Workspace::status_result([0; 4], 3).is_ok());
    /// let bad = [0, u32::MAX - 5, 7, 0]; // row 5 had target 7
    /// assert!(matches!(Workspace::status_result(bad, 3), Err(Error::InvalidTarget { row: 5, value: 7, .. })));
    /// ```
    pub fn status_result(state: [u32; 4], classes: usize) -> Result<()> {
        status_to_result(&state.map(f32::from_bits), classes)
    }

    /// Reads the status of the last NLL / cross-entropy op recorded with this workspace
    /// (after it was submitted) and returns [`Error::InvalidTarget`] with the first
    /// out-of-range row and its value, if any. This submits one small copy and waits for
    /// it; call it when convenient (every few steps, or at the end of an epoch).
    /// Blocking; native only.
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let mut ws = wgpu_loss::Workspace::new(&gpu);
    /// assert!(ws.check_targets(&gpu).is_ok()); // nothing recorded yet
    /// ```
    #[cfg(not(target_arch = "wasm32"))]
    pub fn check_targets(&mut self, gpu: &Gpu) -> Result<()> {
        pollster::block_on(self.check_targets_async(gpu))
    }

    /// The async form of [`Workspace::check_targets`].
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let mut ws = wgpu_loss::Workspace::new(&gpu);
    /// assert!(pollster::block_on(ws.check_targets_async(&gpu)).is_ok());
    /// ```
    pub async fn check_targets_async(&mut self, gpu: &Gpu) -> Result<()> {
        let staging = self
            .status_staging
            .get_or_insert_with(|| {
                gpu.device().create_buffer(&wgpu::BufferDescriptor {
                    label: Some("wgpu-loss status readback"),
                    size: BATCH_STATE_BYTES,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .clone();
        let mut encoder = gpu.device().create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(&self.batch, 0, &staging, 0, BATCH_STATE_BYTES);
        let submission = gpu.queue().submit([encoder.finish()]);
        let state: Vec<f32> = gpu.read_range(&staging, BATCH_STATE_BYTES, submission).await?;
        let first = self.written.get(..std::mem::size_of::<LossParams>());
        let classes = first.map_or(0, |p| bytemuck::pod_read_unaligned::<LossParams>(p).classes as usize);
        status_to_result(&state, classes)
    }

    pub(crate) fn row_losses(&self) -> Binding {
        Binding::whole(&self.row_losses)
    }

    pub(crate) fn spare_grad(&self) -> Binding {
        Binding::whole(&self.spare_grad)
    }

    /// A buffer of at least `bytes` for a row chunk's logits, kept for the next call (grown
    /// to exactly what is asked, so the op's scratch stays within its budget).
    pub(crate) fn logits_scratch(&mut self, gpu: &Gpu, bytes: u64) -> wgpu::Buffer {
        match &self.logits {
            Some(b) if b.size() >= bytes => b.clone(),
            _ => {
                let buffer = storage_buffer(gpu.device(), "wgpu-loss logits", bytes, wgpu::BufferUsages::empty());
                self.bind_groups.clear();
                self.logits = Some(buffer.clone());
                buffer
            }
        }
    }

    /// Bytes of every buffer this workspace holds (what an op recorded with it allocated
    /// beyond its inputs and outputs).
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let ws = wgpu_loss::Workspace::new(&gpu);
    /// assert!(ws.allocated_bytes() < 4096);
    /// ```
    pub fn allocated_bytes(&self) -> u64 {
        [&self.params, &self.batch, &self.row_losses, &self.aux, &self.spare_grad, &self.spare_loss]
            .into_iter()
            .chain(&self.logits)
            .map(wgpu::Buffer::size)
            .sum()
    }

    pub(crate) fn spare_loss(&self) -> Binding {
        Binding::whole(&self.spare_loss)
    }

    /// The bind group for these bindings (binding 0 is a [`Workspace::params`] slot),
    /// reused when the same buffers were bound before. `Err` when one buffer would be
    /// bound both read-only and writable (see [`check_exclusive`]).
    pub(crate) fn bind_group(
        &mut self, gpu: &Gpu, layout: Layout, entries: &[(u32, Binding)],
    ) -> Result<wgpu::BindGroup> {
        check_exclusive(layout, entries)?;
        let key: BindKey =
            (layout, entries.iter().map(|(slot, b)| (*slot, b.buffer.clone(), b.offset, b.size)).collect());
        if let Some((_, group)) = self.bind_groups.iter().find(|(k, _)| *k == key) {
            return Ok(group.clone());
        }
        let wgpu_entries: Vec<_> = key
            .1
            .iter()
            .map(|(slot, buffer, offset, size)| wgpu::BindGroupEntry {
                binding: *slot,
                resource: wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                    buffer,
                    offset: *offset,
                    size: wgpu::BufferSize::new(*size),
                }),
            })
            .collect();
        let group = gpu.device().create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("wgpu-loss bind group"),
            layout: gpu.kernels().layout(layout),
            entries: &wgpu_entries,
        });
        if self.bind_groups.len() >= BIND_GROUP_CACHE + self.written.len() / PARAMS_SLOT as usize {
            self.bind_groups.remove(0);
        }
        self.bind_groups.push((key, group.clone()));
        Ok(group)
    }
}

/// WebGPU forbids binding one buffer read-only and writable in the same dispatch, even at
/// disjoint ranges (the device would raise a validation error at submission): `Err` naming
/// the writable argument before anything is recorded.
fn check_exclusive(layout: Layout, entries: &[(u32, Binding)]) -> Result<()> {
    let read_only = |binding: u32| layout.storage_bindings().iter().any(|&(b, read_only)| b == binding && read_only);
    for (written, w) in entries.iter().filter(|(b, _)| *b != 0 && !read_only(*b)) {
        if let Some((read, _)) = entries.iter().find(|(b, r)| *b != 0 && read_only(*b) && r.buffer == w.buffer) {
            return Err(Error::InvalidArgument {
                argument: layout.argument(*written),
                message: format!(
                    "its buffer also holds `{}`, which the op reads: WebGPU cannot bind one buffer \
                     read-only and writable in one dispatch, even at disjoint ranges; put the \
                     outputs in another buffer",
                    layout.argument(*read)
                ),
            });
        }
    }
    Ok(())
}

/// A caller's buffer range, checked and ready to bind: bound from the offset rounded down
/// to the device's storage alignment, with the remainder passed to the shader in elements.
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    buffer: wgpu::Buffer,
    offset: u64,
    size: u64,
    /// Where the data starts inside the binding, in 4-byte elements.
    pub(crate) element_offset: u32,
}

impl Binding {
    /// The device's placeholder, for read-only slots an op leaves unused.
    pub(crate) fn placeholder(gpu: &Gpu) -> Self {
        Self::whole(gpu.placeholder())
    }

    fn whole(buffer: &wgpu::Buffer) -> Self {
        Self { buffer: buffer.clone(), offset: 0, size: buffer.size(), element_offset: 0 }
    }

    /// Checks that `slice` holds `elements` 4-byte values at a 4-byte-aligned offset and
    /// has `STORAGE` usage.
    pub(crate) fn check(argument: &'static str, slice: &wgpu::BufferSlice<'_>, elements: u64) -> Result<()> {
        Self::check_sized(argument, slice, elements, F32)
    }

    /// [`Binding::check`] for elements of `bytes` bytes (2 for half-precision logits).
    pub(crate) fn check_sized(
        argument: &'static str, slice: &wgpu::BufferSlice<'_>, elements: u64, bytes: u64,
    ) -> Result<()> {
        let usage = slice.buffer().usage();
        if !usage.contains(wgpu::BufferUsages::STORAGE) {
            return Err(Error::InvalidArgument {
                argument,
                message: format!("the buffer needs STORAGE usage, it has {usage:?}"),
            });
        }
        if slice.offset() % F32 != 0 {
            return Err(Error::InvalidArgument {
                argument,
                message: format!("offset {} is not a multiple of 4 bytes", slice.offset()),
            });
        }
        if slice.size() < elements * bytes {
            return Err(Error::LengthMismatch {
                argument,
                expected: elements as usize,
                actual: (slice.size() / bytes) as usize,
            });
        }
        Ok(())
    }

    /// Binds `elements` values from element `first` of a [`Binding::check`]ed `slice`
    /// (offsets in 64 bits, so ranges past 4 GiB into a buffer work where the device has them).
    pub(crate) fn range(
        gpu: &Gpu, argument: &'static str, slice: &wgpu::BufferSlice<'_>, first: u64, elements: u64,
    ) -> Result<Self> {
        Self::range_sized(gpu, argument, slice, first, elements, F32)
    }

    /// [`Binding::range`] for elements of `bytes` bytes: half-precision elements are
    /// bound as whole 4-byte words (the range rounded out, within the buffer).
    pub(crate) fn range_sized(
        gpu: &Gpu, argument: &'static str, slice: &wgpu::BufferSlice<'_>, first: u64, elements: u64, bytes: u64,
    ) -> Result<Self> {
        let limits = gpu.device().limits();
        let start = slice.offset() + first * bytes;
        let align = u64::from(limits.min_storage_buffer_offset_alignment);
        let offset = start - start % align;
        let size = (start - offset + elements * bytes).next_multiple_of(F32).min(slice.buffer().size() - offset);
        let limit = limits.max_storage_buffer_binding_size;
        if size > limit {
            return Err(Error::TooLarge { argument, bytes: size, limit });
        }
        Ok(Self { buffer: slice.buffer().clone(), offset, size, element_offset: ((start - offset) / bytes) as u32 })
    }
}

/// Splits `rows` rows of `row_bytes` into runs `(first row, rows)` whose binding fits
/// `max_binding` bytes from any offset rounded down to `align`. All in 64 bits.
pub(crate) fn plan_row_chunks(rows: u64, row_bytes: u64, align: u64, max_binding: u64) -> Result<Vec<(u64, u64)>> {
    let per_chunk = max_binding.saturating_sub(align - F32) / row_bytes;
    if per_chunk == 0 {
        return Err(Error::TooLarge { argument: "classes", bytes: row_bytes + align - F32, limit: max_binding });
    }
    Ok((0..rows.div_ceil(per_chunk)).map(|k| (k * per_chunk, per_chunk.min(rows - k * per_chunk))).collect())
}

impl Gpu {
    /// The chunks `(first row, rows)` of a `rows × row_len` f32 matrix on this device (one
    /// chunk when the whole batch fits one storage binding). Every chunk holds whole groups
    /// of `group` rows (the positions of one (N, C, d…) sample; the elements of a pos_weight
    /// period), the last one clipped to `rows`.
    pub(crate) fn row_chunks(&self, rows: u64, row_len: u64, group: u64) -> Result<Vec<(u64, u64)>> {
        let align = u64::from(self.device().limits().min_storage_buffer_offset_alignment);
        let group_bytes = group.saturating_mul(row_len).saturating_mul(F32);
        let groups = plan_row_chunks(rows.div_ceil(group), group_bytes, align, self.max_binding_size())?;
        Ok(groups.into_iter().map(|(first, n)| (first * group, (n * group).min(rows - first * group))).collect())
    }

    /// The chunks of a batch that the packed short-row kernels take `pack` rows at a time:
    /// whole packs (so each chunk starts on a 16-byte boundary if the first does), and the
    /// batch's rows past its last whole pack in a chunk of their own.
    pub(crate) fn packed_row_chunks(&self, rows: u64, row_len: u64, pack: u64) -> Result<Vec<(u64, u64)>> {
        let mut chunks = self.row_chunks(rows, row_len, pack)?;
        if let Some(&(first, n)) = chunks.last() {
            let tail = n % pack;
            if tail > 0 && n > tail {
                chunks.pop();
                chunks.extend([(first, n - tail), (first + n - tail, tail)]);
            }
        }
        Ok(chunks)
    }
}

/// One compute dispatch of an op: the kernel (unrolled for `slots` quads per invocation
/// where its family holds rows in registers, else 0), how many workgroups, and which of
/// the op's bind groups (the batch's, or a row chunk's).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Dispatch {
    pub kernel: Kernel,
    pub slots: u32,
    pub workgroups: u64,
    pub group: usize,
    /// The precision of the data the kernel reads (its variant is built for it).
    pub precision: Precision,
}

impl Dispatch {
    /// `workgroups` of `kernel` (not unrolled) with bind group `group`, on f32 data.
    pub(crate) fn new(kernel: Kernel, workgroups: u64, group: usize) -> Self {
        Self { kernel, slots: 0, workgroups, group, precision: Precision::F32 }
    }

    /// `workgroups` of `kernel` unrolled for `slots` quads, with bind group `group`.
    pub(crate) fn unrolled((kernel, slots): (Kernel, u32), workgroups: u64, group: usize) -> Self {
        Self { kernel, slots, workgroups, group, precision: Precision::F32 }
    }

    /// The same dispatch on `precision`'s data.
    pub(crate) fn on(self, precision: Precision) -> Self {
        Self { precision, ..self }
    }
}

impl Gpu {
    /// Checks that `workgroups` can be dispatched (folded into x and y).
    pub(crate) fn check_workgroups(&self, argument: &'static str, workgroups: u64) -> Result<()> {
        let max = u64::from(self.device().limits().max_compute_workgroups_per_dimension);
        if workgroups > max * max {
            return Err(Error::InvalidArgument {
                argument,
                message: format!("needs {workgroups} workgroups, more than the device's {max} × {max}"),
            });
        }
        Ok(())
    }

    /// Records `dispatches` in order into one compute pass on `encoder`, each with its bind
    /// group from `groups`. wgpu orders the dispatches' buffer accesses.
    pub(crate) fn record(
        &self, encoder: &mut wgpu::CommandEncoder, groups: &[wgpu::BindGroup], dispatches: &[Dispatch],
    ) {
        let max = u64::from(self.device().limits().max_compute_workgroups_per_dimension);
        let mut pass = encoder
            .begin_compute_pass(&wgpu::ComputePassDescriptor { label: Some("wgpu-loss"), timestamp_writes: None });
        for d in dispatches {
            let x = d.workgroups.clamp(1, max);
            let y = d.workgroups.div_ceil(x);
            pass.set_bind_group(0, &groups[d.group], &[]);
            pass.set_pipeline(&self.kernels().pipeline(d.kernel, d.slots, d.precision));
            pass.dispatch_workgroups(x as u32, y as u32, 1);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::plan_row_chunks;

    /// The chunk arithmetic is 64-bit: batches far past 2^32 elements split correctly.
    #[test]
    fn row_chunks_cover_huge_batches_exactly() {
        let (align, max) = (256, 128 << 20);
        for (rows, classes) in [(1u64, 1u64), (2048, 32000), (5_000_000, 1000), (3, 1_000_000), (1 << 33, 1)] {
            let row_bytes = classes * 4;
            let chunks = plan_row_chunks(rows, row_bytes, align, max).unwrap();
            let mut next = 0;
            for &(first, n) in &chunks {
                assert_eq!(first, next);
                assert!(n > 0 && n * row_bytes + align - 4 <= max, "{rows}x{classes}: chunk of {n} rows");
                next = first + n;
            }
            assert_eq!(next, rows, "{rows}x{classes}");
        }
        assert!(plan_row_chunks(1, 64 << 20, 256, 32 << 20).is_err(), "a row longer than a binding");
    }
}
