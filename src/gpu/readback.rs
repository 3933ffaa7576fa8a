//! Mapping buffers: `map_async` fills a one-shot channel per buffer; natively the device is
//! polled (with the caller's timeout) so an awaited map can never hang. Reads copy each
//! result once, from the mapped range into its `Vec`.

use std::ops::Range;

use super::Gpu;
use crate::error::{Error, Result};

/// Copies below this many bytes are made by the calling thread alone.
const PARALLEL_COPY_BYTES: usize = 4 << 20;

/// `dst.copy_from_slice(src)`, split over the host's cores for large copies (natively):
/// into memory just allocated, as a returned `Vec` is, the copy's cost is mostly the
/// kernel's page faults, which cores take in parallel.
fn copy_bytes(dst: &mut [u8], src: &[u8]) {
    #[cfg(not(target_arch = "wasm32"))]
    if src.len() >= PARALLEL_COPY_BYTES {
        let threads = std::thread::available_parallelism().map_or(1, usize::from);
        let chunk = src.len().div_ceil(threads).next_multiple_of(4096);
        std::thread::scope(|scope| {
            for (d, s) in dst.chunks_mut(chunk).zip(src.chunks(chunk)) {
                scope.spawn(move || d.copy_from_slice(s));
            }
        });
        return;
    }
    dst.copy_from_slice(src);
}

impl Gpu {
    /// Maps `slices` (at most one per buffer) in `mode`, after `submission` where given
    /// (natively the device is polled, with the caller's timeout, so this never hangs).
    pub(crate) async fn map_all(
        &self, slices: &[wgpu::BufferSlice<'_>], mode: wgpu::MapMode, submission: Option<wgpu::SubmissionIndex>,
    ) -> Result<()> {
        let receivers: Vec<_> = slices
            .iter()
            .map(|slice| {
                let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
                slice.map_async(mode, move |result| {
                    sender.send(result).ok();
                });
                receiver
            })
            .collect();
        #[cfg(not(target_arch = "wasm32"))]
        self.device()
            .poll(wgpu::PollType::Wait { submission_index: submission, timeout: Some(self.readback_timeout) })
            .map_err(|e| Error::Readback(format!("{e} (timeout {:?})", self.readback_timeout)))?;
        #[cfg(target_arch = "wasm32")]
        let _ = submission;
        for receiver in receivers {
            receiver
                .receive()
                .await
                .ok_or_else(|| Error::Readback("the map callback was dropped".into()))?
                .map_err(|e| Error::Readback(e.to_string()))?;
        }
        Ok(())
    }

    /// Reads `parts` (a `MAP_READ` buffer and a byte range of whole `T`s each, not
    /// overlapping) after `submission`, each into its own `Vec` with one copy: each buffer
    /// is mapped once, over the span of its parts, and unmapped after.
    pub(crate) async fn read_parts<T: bytemuck::Pod>(
        &self, parts: &[(&wgpu::Buffer, Range<u64>)], submission: wgpu::SubmissionIndex,
    ) -> Result<Vec<Vec<T>>> {
        let mut spans: Vec<(&wgpu::Buffer, u64)> = Vec::new();
        for (buffer, range) in parts.iter().filter(|(_, range)| !range.is_empty()) {
            match spans.iter_mut().find(|(b, _)| b == buffer) {
                Some((_, end)) => *end = (*end).max(range.end),
                None => spans.push((buffer, range.end)),
            }
        }
        let slices: Vec<_> = spans.iter().map(|(buffer, end)| buffer.slice(..*end)).collect();
        self.map_all(&slices, wgpu::MapMode::Read, Some(submission)).await?;
        let values = parts
            .iter()
            .map(|(buffer, range)| {
                if range.is_empty() {
                    return Ok(Vec::new());
                }
                let view =
                    buffer.slice(range.clone()).get_mapped_range().map_err(|e| Error::Readback(e.to_string()))?;
                let mut values = vec![T::zeroed(); view.len() / std::mem::size_of::<T>()];
                copy_bytes(bytemuck::cast_slice_mut(&mut values), &view);
                Ok(values)
            })
            .collect();
        spans.iter().for_each(|(buffer, _)| buffer.unmap());
        values
    }

    /// `buffer[..bytes]` (a `MAP_READ` buffer) after `submission`, as [`Gpu::read_parts`].
    pub(crate) async fn read_range<T: bytemuck::Pod>(
        &self, buffer: &wgpu::Buffer, bytes: u64, submission: wgpu::SubmissionIndex,
    ) -> Result<Vec<T>> {
        Ok(self.read_parts(&[(buffer, 0..bytes)], submission).await?.pop().unwrap_or_default())
    }

    /// The `Gpu`'s staging buffer for [`Gpu::read_buffer`], at least `bytes` long (grown by
    /// powers of two and kept; a concurrent read takes a buffer of its own).
    fn readback_staging(&self, bytes: u64) -> wgpu::Buffer {
        let kept = self.readback_staging.lock().ok().and_then(|mut kept| kept.take());
        kept.filter(|b| b.size() >= bytes).unwrap_or_else(|| {
            self.device().create_buffer(&wgpu::BufferDescriptor {
                label: Some("wgpu-loss read_buffer staging"),
                size: bytes.max(256).next_power_of_two(),
                usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })
    }
}

slice_api! {
    /// Reads `source` back as `T` values (after everything already submitted), through a
    /// staging buffer the `Gpu` keeps. `source` needs `COPY_SRC` usage, and a size and an
    /// offset that are multiples of 4 bytes and of `T`'s size. For results of the encode
    /// API, once per step or epoch. Blocking (with [`GpuOptions::readback_timeout`](crate::GpuOptions::readback_timeout));
    /// native only.
    ///
    /// ```
    /// use wgpu::util::DeviceExt;
    /// let gpu = wgpu_loss::Gpu::new()?;
    /// let buffer = gpu.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
    ///     label: None,
    ///     contents: bytemuck::cast_slice(&[1.0f32, 2.0, 3.0]),
    ///     usage: wgpu::BufferUsages::COPY_SRC,
    /// });
    /// assert_eq!(gpu.read_buffer::<f32>(buffer.slice(4..))?, vec![2.0, 3.0]);
    /// # Ok::<(), wgpu_loss::Error>(())
    /// ```
    pub fn read_buffer;
    /// The async form of [`Gpu::read_buffer`] (in a browser, the one there is).
    ///
    /// ```
    /// # use wgpu::util::DeviceExt;
    /// # let gpu = wgpu_loss::Gpu::new()?;
    /// let buffer = gpu.device().create_buffer_init(&wgpu::util::BufferInitDescriptor {
    ///     label: None,
    ///     contents: bytemuck::cast_slice(&[7i32, 8]),
    ///     usage: wgpu::BufferUsages::COPY_SRC,
    /// });
    /// assert_eq!(pollster::block_on(gpu.read_buffer_async::<i32>(buffer.slice(..)))?, vec![7, 8]);
    /// # Ok::<(), wgpu_loss::Error>(())
    /// ```
    pub async fn read_buffer_async<T: bytemuck::Pod>(&self, source: wgpu::BufferSlice<'_>) -> Result<Vec<T>> {
        let bytes = source.size();
        let unit = std::mem::size_of::<T>().max(1) as u64;
        if bytes % 4 != 0 || bytes % unit != 0 || source.offset() % 4 != 0 {
            return Err(Error::InvalidArgument {
                argument: "source",
                message: format!(
                    "{bytes} bytes at offset {}: size and offset must be multiples of 4 and of {unit}",
                    source.offset()
                ),
            });
        }
        let usage = source.buffer().usage();
        if !usage.contains(wgpu::BufferUsages::COPY_SRC) {
            return Err(Error::InvalidArgument {
                argument: "source",
                message: format!("the buffer needs COPY_SRC usage, it has {usage:?}"),
            });
        }
        let staging = self.readback_staging(bytes);
        let mut encoder = self.device().create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(source.buffer(), source.offset(), &staging, 0, bytes);
        let submission = self.queue().submit([encoder.finish()]);
        let values = self.read_range(&staging, bytes, submission).await?;
        if let Ok(mut kept) = self.readback_staging.lock() {
            *kept = Some(staging);
        }
        Ok(values)
    }
}
