//! Reading a buffer back: `map_async` fills a one-shot channel; natively the device is
//! polled (with the caller's timeout) so an awaited readback can never hang.

use super::Gpu;
use crate::error::{Error, Result};

impl Gpu {
    /// Maps `staging[..bytes]` after `submission` and copies it out as f32 values.
    pub(crate) async fn read_back(
        &self,
        staging: &wgpu::Buffer,
        bytes: u64,
        submission: wgpu::SubmissionIndex,
    ) -> Result<Vec<f32>> {
        let slice = staging.slice(..bytes);
        let (sender, receiver) = futures_intrusive::channel::shared::oneshot_channel();
        slice.map_async(wgpu::MapMode::Read, move |result| {
            sender.send(result).ok();
        });
        #[cfg(not(target_arch = "wasm32"))]
        self.device()
            .poll(wgpu::PollType::Wait {
                submission_index: Some(submission),
                timeout: Some(self.readback_timeout),
            })
            .map_err(|e| Error::Readback(format!("{e} (timeout {:?})", self.readback_timeout)))?;
        #[cfg(target_arch = "wasm32")]
        let _ = submission;
        receiver
            .receive()
            .await
            .ok_or_else(|| Error::Readback("the map callback was dropped".into()))?
            .map_err(|e| Error::Readback(e.to_string()))?;
        let values = {
            let view = slice.get_mapped_range().map_err(|e| Error::Readback(e.to_string()))?;
            bytemuck::cast_slice::<u8, f32>(&view).to_vec()
        };
        staging.unmap();
        Ok(values)
    }
}
