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
    device: &wgpu::Device,
    slot: &mut Option<wgpu::Buffer>,
    bytes: u64,
    usage: wgpu::BufferUsages,
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
    device: &wgpu::Device,
    list: &mut Vec<wgpu::Buffer>,
    n: usize,
    bytes: u64,
    usage: wgpu::BufferUsages,
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

impl Gpu {
    /// Uploads `inputs`, lets `record` encode the op on them with output buffers of
    /// `output_lens` f32 values, then reads every output back, followed (when
    /// `batch_bytes > 0`) by that many bytes of the workspace's batch state (status, then
    /// partials) as a last output. Validation and
    /// out-of-memory errors of everything submitted here come back as `Err`.
    pub(crate) async fn run_slice(
        &self,
        inputs: &[&[u8]],
        output_lens: &[usize],
        batch_bytes: u64,
        record: impl FnOnce(
            &mut wgpu::CommandEncoder,
            &mut Workspace,
            &[wgpu::BufferSlice<'_>],
            &[wgpu::BufferSlice<'_>],
        ) -> Result<()>,
    ) -> Result<Vec<Vec<f32>>> {
        let device = self.device();
        // Buffers the device cannot create are refused before anything is allocated.
        let max_buffer = device.limits().max_buffer_size;
        let largest = inputs
            .iter()
            .map(|d| d.len() as u64)
            .chain(output_lens.iter().map(|&n| n as u64 * 4))
            .max();
        if let Some(bytes) = largest.filter(|&b| b > max_buffer) {
            return Err(Error::TooLarge {
                argument: "batch",
                bytes,
                limit: max_buffer,
            });
        }
        let mut scratch = self
            .slice_pool
            .lock()
            .map_err(|_| Error::Device("the scratch pool's lock was poisoned".into()))?
            .pop()
            .unwrap_or_else(|| SliceScratch {
                workspace: Workspace::new(self),
                inputs: Vec::new(),
                outputs: Vec::new(),
                staging: None,
            });
        let validation = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let oom = device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);

        let input_buffers: Vec<wgpu::Buffer> = inputs
            .iter()
            .enumerate()
            .map(|(i, data)| {
                let buffer = ensure_nth(
                    device,
                    &mut scratch.inputs,
                    i,
                    data.len() as u64,
                    wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST,
                );
                self.queue().write_buffer(&buffer, 0, data);
                buffer
            })
            .collect();
        let output_buffers: Vec<wgpu::Buffer> = output_lens
            .iter()
            .enumerate()
            .map(|(i, &n)| {
                let usage = wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST;
                ensure_nth(device, &mut scratch.outputs, i, n as u64 * 4, usage)
            })
            .collect();
        // Everything read back, in order: the outputs, then the batch state.
        let status_bytes = (batch_bytes > 0).then_some(batch_bytes);
        let output_bytes: Vec<u64> = output_lens.iter().map(|&n| n as u64 * 4).chain(status_bytes).collect();
        let placements: Vec<u64> = output_bytes
            .iter()
            .scan(0u64, |at, &bytes| {
                let here = *at;
                *at += bytes.next_multiple_of(STAGING_ALIGN);
                Some(here)
            })
            .collect();
        let staging_bytes = placements.last().copied().unwrap_or(0) + output_bytes.last().copied().unwrap_or(0);
        let staging = ensure(
            device,
            &mut scratch.staging,
            staging_bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        );

        let mut encoder = device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
            label: Some("wgpu-loss slice call"),
        });
        let input_slices: Vec<_> = input_buffers
            .iter()
            .zip(inputs)
            .map(|(b, data)| b.slice(..(data.len() as u64).max(4)))
            .collect();
        let output_slices: Vec<_> = output_buffers
            .iter()
            .zip(&output_bytes)
            .map(|(b, &bytes)| b.slice(..bytes.max(4)))
            .collect();
        record(&mut encoder, &mut scratch.workspace, &input_slices, &output_slices)?;
        let sources = output_buffers
            .iter()
            .chain((batch_bytes > 0).then(|| scratch.workspace.status_buffer()));
        for ((buffer, &bytes), &at) in sources.zip(&output_bytes).zip(&placements) {
            encoder.copy_buffer_to_buffer(buffer, 0, &staging, at, bytes);
        }
        let submission = self.queue().submit([encoder.finish()]);
        if let Some(e) = oom.pop().await.or(validation.pop().await) {
            return Err(Error::Device(e.to_string()));
        }

        let all = self.read_back(&staging, staging_bytes, submission).await?;
        let outputs = output_bytes
            .iter()
            .zip(&placements)
            .map(|(&bytes, &at)| all[(at / 4) as usize..][..(bytes / 4) as usize].to_vec())
            .collect();
        if let Ok(mut pool) = self.slice_pool.lock() {
            pool.push(scratch);
        }
        Ok(outputs)
    }
}
