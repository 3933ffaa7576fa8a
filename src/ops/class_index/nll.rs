//! Negative log-likelihood from log-probabilities (shaders/nll/nll.wgsl).

use super::slice::{SliceInput, Wanted, index_slice};
use super::{ClassIndexOp, LossBuffers, Problem, encode};
use crate::error::Result;
use crate::gpu::{Gpu, Workspace};
use crate::options::ClassTargets;
use crate::options::CrossEntropyOptions;

impl Gpu {
    /// Records `torch.nn.functional.nll_loss` (loss, gradient with respect to the
    /// log-probabilities, or both) into the caller's encoder. `buffers.input` holds the
    /// `rows × classes` log-probabilities (not read when only the gradient is wanted).
    /// `label_smoothing` is ignored. Out-of-range targets give that row NaN.
    ///
    /// ```
    /// use wgpu::util::DeviceExt;
    /// use wgpu_loss::{CrossEntropyOptions, Gpu, LossBuffers, Workspace};
    /// let gpu = Gpu::new().unwrap();
    /// let (d, usage) = (gpu.device(), wgpu::BufferUsages::STORAGE);
    /// let init = |bytes: &[u8]| d.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytes, usage });
    /// let log_probs = init(bytemuck::cast_slice(&[-0.5f32, -1.5]));
    /// let targets = init(bytemuck::cast_slice(&[1i32]));
    /// let loss = init(&[0; 4]);
    /// let mut ws = Workspace::new(&gpu);
    /// let mut encoder = d.create_command_encoder(&Default::default());
    /// let buffers = LossBuffers::new(targets.slice(..)).input(log_probs.slice(..)).loss(loss.slice(..));
    /// gpu.encode_nll_loss(&mut encoder, &mut ws, &buffers, 1, 2, &CrossEntropyOptions::default()).unwrap();
    /// gpu.queue().submit([encoder.finish()]);
    /// ```
    pub fn encode_nll_loss(
        &self, encoder: &mut wgpu::CommandEncoder, workspace: &mut Workspace, buffers: &LossBuffers<'_>, rows: usize,
        classes: usize, opts: &CrossEntropyOptions,
    ) -> Result<()> {
        encode(self, encoder, workspace, &Problem::new(ClassIndexOp::Nll, rows, classes, opts)?, buffers)
    }
}

slice_api! {
    /// NLL loss of `rows × classes` log-probabilities: `loss[r] = -w[t_r]·log_probs[r, t_r]`,
    /// reduced as `opts.reduction` says. Blocking; native only.
    ///
    /// ```
    /// use wgpu_loss::{CrossEntropyOptions, Gpu};
    /// let gpu = Gpu::new().unwrap();
    /// let loss = gpu.nll_loss(&[-0.5, -1.5], &[1], 1, 2, &CrossEntropyOptions::default()).unwrap();
    /// assert_eq!(loss, vec![1.5]);
    /// ```
    pub fn nll_loss;
    /// The async form of [`Gpu::nll_loss`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let loss = pollster::block_on(gpu.nll_loss_async(&[-0.5, -1.5], &[1], 1, 2, &opts)).unwrap();
    /// ```
    pub async fn nll_loss_async(
        &self, log_probs: &[f32], targets: &(impl ClassTargets + ?Sized), rows: usize, classes: usize,
        opts: &CrossEntropyOptions,
    ) -> Result<Vec<f32>> {
        let input = SliceInput::f32("log_probs", log_probs);
        Ok(index_slice(self, ClassIndexOp::Nll, input, targets, (rows, classes, opts), None, Wanted::LOSS).await?.loss)
    }

    /// The gradient of the NLL loss with respect to the log-probabilities
    /// (`rows × classes`: `-w[t_r]·g_r` at the target, 0 elsewhere). Blocking; native only.
    ///
    /// ```
    /// use wgpu_loss::{CrossEntropyOptions, Gpu};
    /// let gpu = Gpu::new().unwrap();
    /// let g = gpu.nll_loss_grad(&[1], 1, 2, &CrossEntropyOptions::default(), &[1.0]).unwrap();
    /// assert_eq!(g, vec![0.0, -1.0]);
    /// ```
    pub fn nll_loss_grad;
    /// The async form of [`Gpu::nll_loss_grad`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let g = pollster::block_on(gpu.nll_loss_grad_async(&[1], 1, 2, &opts, &[1.0])).unwrap();
    /// ```
    pub async fn nll_loss_grad_async(
        &self, targets: &(impl ClassTargets + ?Sized), rows: usize, classes: usize, opts: &CrossEntropyOptions,
        grad_output: &[f32],
    ) -> Result<Vec<f32>> {
        // The gradient reads no log-probabilities: only their count is checked.
        let input = SliceInput::absent("log_probs", opts.loss_rows(rows).saturating_mul(classes));
        let out = index_slice(self, ClassIndexOp::Nll, input, targets, (rows, classes, opts), Some(grad_output), Wanted::GRAD);
        Ok(out.await?.grad)
    }
}
