//! The slice API's plumbing: upload, record through the encode API, copy out, read back.
//! Buffers come from a pool of per-call scratch sets and grow by powers of two, so a
//! steady stream of calls allocates nothing; concurrent calls each take their own set.

use super::{Gpu, Workspace};
use crate::error::{Error, Result};

/// Where results are placed in the staging buffer (copy and map alignment).
const STAGING_ALIGN: u64 = 256;

/// One call's buffers, kept in the [`Gpu`]'s pool between calls.
#[derive(Debug)]
pub(crate) struct SliceScratch {
    workspace: Workspace,
    inputs: Vec<wgpu::Buffer>,
    outputs: Vec<wgpu::Buffer>,
    staging: Option<wgpu::Buffer>,
}

/// A buffer of at least `bytes` (rounded up to a power of two), reusing `slot`'s if big enough.
fn ensure(
    device: &wgpu::Device, slot: &mut Option<wgpu::Buffer>, bytes: u64, usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    match slot {
        Some(b) if b.size() >= bytes => b.clone(),
        _ => {
            let buffer = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgpu-loss slice scratch"),
                size: bytes.max(256).next_power_of_two(),
                usage,
                mapped_at_creation: false,
            });
            *slot = Some(buffer.clone());
            buffer
        }
    }
}

fn ensure_nth(
    device: &wgpu::Device, list: &mut Vec<wgpu::Buffer>, n: usize, bytes: u64, usage: wgpu::BufferUsages,
) -> wgpu::Buffer {
    let mut slot = list.get(n).cloned();
    let buffer = ensure(device, &mut slot, bytes, usage);
    if n < list.len() {
        list[n] = buffer.clone();
    } else {
        list.push(buffer.clone());
    }
    buffer
}

/// Where a call's results are read from: each output from its own buffer where the
/// buffers are mapped, else from the staging buffer; the batch state always from the
/// staging buffer. Parts of the staging buffer lie at copy- and map-aligned offsets.
struct Placement {
    /// Bytes of each output, then of the batch state (if any).
    bytes: Vec<u64>,
    /// Where each lies in the staging buffer (`None`: read in place).
    at: Vec<Option<u64>>,
    /// Bytes of the staging buffer used.
    total: u64,
}

impl Placement {
    fn new(output_lens: &[usize], batch_bytes: u64, mapped: bool) -> Self {
        let status = (batch_bytes > 0).then_some(batch_bytes);
        let bytes: Vec<u64> = output_lens.iter().map(|&n| n as u64 * 4).chain(status).collect();
        let mut total = 0u64;
        let at = (0..bytes.len())
            .map(|i| {
                let staged = !mapped || i == output_lens.len();
                staged.then(|| {
                    let here = total.next_multiple_of(STAGING_ALIGN);
                    total = here + bytes[i];
                    here
                })
            })
            .collect();
        Self { bytes, at, total }
    }
}

impl SliceScratch {
    fn new(gpu: &Gpu) -> Self {
        Self { workspace: Workspace::new(gpu), inputs: Vec::new(), outputs: Vec::new(), staging: None }
    }

    /// Buffers holding `inputs`: written in place through mapped memory where the `Gpu`
    /// maps its slice buffers (one copy), else through the queue (a copy into wgpu's
    /// staging, then one into the buffer).
    async fn upload(&mut self, gpu: &Gpu, inputs: &[&[u8]]) -> Result<Vec<wgpu::Buffer>> {
        let mapped = gpu.maps_slice_buffers();
        let access = if mapped { wgpu::BufferUsages::MAP_WRITE } else { wgpu::BufferUsages::COPY_DST };
        let usage = wgpu::BufferUsages::STORAGE | access;
        let buffers: Vec<wgpu::Buffer> = (inputs.iter().enumerate())
            .map(|(i, data)| ensure_nth(gpu.device(), &mut self.inputs, i, data.len() as u64, usage))
            .collect();
        if !mapped {
            (buffers.iter().zip(inputs)).for_each(|(buffer, data)| gpu.queue().write_buffer(buffer, 0, data));
            return Ok(buffers);
        }
        let filled: Vec<_> = (buffers.iter().zip(inputs)).filter(|(_, data)| !data.is_empty()).collect();
        let slices: Vec<_> = filled.iter().map(|(buffer, data)| buffer.slice(..data.len() as u64)).collect();
        gpu.map_all(&slices, wgpu::MapMode::Write, None).await?;
        for (slice, (_, data)) in slices.iter().zip(&filled) {
            let mut view = slice.get_mapped_range_mut().map_err(|e| Error::Device(e.to_string()))?;
            view.copy_from_slice(data);
        }
        filled.iter().for_each(|(buffer, _)| buffer.unmap());
        Ok(buffers)
    }

    /// Buffers for outputs of `output_lens` f32 values (readable in place where the `Gpu`
    /// maps its slice buffers).
    fn outputs(&mut self, gpu: &Gpu, output_lens: &[usize]) -> Vec<wgpu::Buffer> {
        let mut usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
        if gpu.maps_slice_buffers() {
            usage |= wgpu::BufferUsages::MAP_READ;
        }
        output_lens
            .iter()
            .enumerate()
            .map(|(i, &n)| ensure_nth(gpu.device(), &mut self.outputs, i, n as u64 * 4, usage))
            .collect()
    }
}

impl Gpu {
    /// Refuses buffers the device cannot create before anything is allocated.
    fn check_buffer_sizes(&self, inputs: &[&[u8]], output_lens: &[usize]) -> Result<()> {
        let max_buffer = self.device().limits().max_buffer_size;
        let largest = inputs.iter().map(|d| d.len() as u64).chain(output_lens.iter().map(|&n| n as u64 * 4)).max();
        match largest.filter(|&b| b > max_buffer) {
            Some(bytes) => Err(Error::TooLarge { argument: "batch", bytes, limit: max_buffer }),
            None => Ok(()),
        }
    }

    /// Uploads `inputs`, lets `record` encode the op on them with output buffers of
    /// `output_lens` f32 values, then reads every output back, followed (when
    /// `batch_bytes > 0`) by that many bytes of the workspace's batch state (status, then
    /// partials) as a last output. Validation and out-of-memory errors of everything
    /// submitted here come back as `Err`.
    pub(crate) async fn run_slice(
        &self, inputs: &[&[u8]], output_lens: &[usize], batch_bytes: u64,
        record: impl FnOnce(
            &mut wgpu::CommandEncoder,
            &mut Workspace,
            &[wgpu::BufferSlice<'_>],
            &[wgpu::BufferSlice<'_>],
        ) -> Result<()>,
    ) -> Result<Vec<Vec<f32>>> {
        self.check_buffer_sizes(inputs, output_lens)?;
        let device = self.device();
        let mut scratch = self
            .slice_pool
            .lock()
            .map_err(|_| Error::Device("the scratch pool's lock was poisoned".into()))?
            .pop()
            .unwrap_or_else(|| SliceScratch::new(self));
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let input_buffers = scratch.upload(self, inputs).await?;
        let output_buffers = scratch.outputs(self, output_lens);
        let placement = Placement::new(output_lens, batch_bytes, self.maps_slice_buffers());
        let staging_usage = wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST;
        let staging = ensure(device, &mut scratch.staging, placement.total, staging_usage);
        let mut encoder =
            device.create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("wgpu-loss slice call") });
        let input_slices: Vec<_> =
            (input_buffers.iter().zip(inputs)).map(|(b, data)| b.slice(..(data.len() as u64).max(4))).collect();
        let output_slices: Vec<_> =
            (output_buffers.iter().zip(&placement.bytes)).map(|(b, &bytes)| b.slice(..bytes.max(4))).collect();
        record(&mut encoder, &mut scratch.workspace, &input_slices, &output_slices)?;
        let sources: Vec<&wgpu::Buffer> =
            output_buffers.iter().chain((batch_bytes > 0).then(|| scratch.workspace.status_buffer())).collect();
        let mut parts = Vec::new();
        for ((source, &bytes), &at) in sources.iter().zip(&placement.bytes).zip(&placement.at) {
            match at {
                Some(at) => {
                    encoder.copy_buffer_to_buffer(source, 0, &staging, at, bytes);
                    parts.push((&staging, at..at + bytes));
                }
                None => parts.push((*source, 0..bytes)),
            }
        }
        let submission = self.queue().submit([encoder.finish()]);
        if let Some(e) = oom.pop().await.or(validation.pop().await) {
            return Err(Error::Device(e.to_string()));
        }
        let outputs = self.read_parts(&parts, submission).await?;
        if let Ok(mut pool) = self.slice_pool.lock() {
            pool.push(scratch);
        }
        Ok(outputs)
    }
}
