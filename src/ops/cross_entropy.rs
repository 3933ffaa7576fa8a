//! Cross-entropy from raw logits with class-index targets (shaders/cross_entropy.wgsl).

use super::class_index::{ClassIndexOp, LossBuffers, Wanted, class_index_slice, encode_class_index};
use crate::error::Result;
use crate::gpu::{Gpu, Workspace};
use crate::options::ClassTargets;
use crate::options::CrossEntropyOptions;

impl Gpu {
    /// Records cross-entropy (`torch.nn.functional.cross_entropy` with class indices) into
    /// the caller's encoder: the loss, its gradient with respect to the logits, or both in
    /// one kernel that reads the logits once for the loss. Nothing is submitted or read back.
    ///
    /// `buffers.input` holds the `rows × classes` logits. Arguments are checked before
    /// anything is recorded; targets live on the device, so an out-of-range target (not in
    /// `[0, classes)` and not `ignore_index`) is not an `Err` here but gives that row NaN
    /// loss and gradient.
    ///
    /// ```
    /// use wgpu::util::DeviceExt;
    /// use wgpu_loss::{CrossEntropyOptions, Gpu, LossBuffers, Workspace};
    /// let gpu = Gpu::new().unwrap();
    /// let (d, usage) = (gpu.device(), wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    /// let init = |bytes: &[u8]| d.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytes, usage });
    /// let logits = init(bytemuck::cast_slice(&[2.0f32, 0.0, 0.0, 0.0, 3.0, 0.0]));
    /// let targets = init(bytemuck::cast_slice(&[0i32, 1]));
    /// let loss = init(&[0; 4]);
    /// let grad = init(&[0; 24]);
    /// let mut ws = Workspace::new(&gpu);
    /// let mut encoder = d.create_command_encoder(&Default::default());
    /// let buffers = LossBuffers::new(targets.slice(..)).input(logits.slice(..)).loss(loss.slice(..)).grad(grad.slice(..));
    /// gpu.encode_cross_entropy(&mut encoder, &mut ws, &buffers, 2, 3, &CrossEntropyOptions::default()).unwrap();
    /// gpu.queue().submit([encoder.finish()]);
    /// ```
    pub fn encode_cross_entropy(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        workspace: &mut Workspace,
        buffers: &LossBuffers<'_>,
        rows: usize,
        classes: usize,
        opts: &CrossEntropyOptions,
    ) -> Result<()> {
        encode_class_index(
            self,
            encoder,
            workspace,
            ClassIndexOp::CrossEntropy,
            buffers,
            rows,
            classes,
            opts,
        )
    }

    /// Cross-entropy of `rows × classes` logits against class-index `targets`: `rows`
    /// values for `Reduction::None`, else one. Blocking; native only.
    ///
    /// ```
    /// use wgpu_loss::{CrossEntropyOptions, Gpu};
    /// let gpu = Gpu::new().unwrap();
    /// let loss = gpu.cross_entropy(&[0.0, 0.0], &[1], 1, 2, &CrossEntropyOptions::default()).unwrap();
    /// assert!((loss[0] - 2f32.ln()).abs() < 1e-6);
    /// ```
    #[cfg(not(target_arch = "wasm32"))]
    pub fn cross_entropy(
        &self,
        logits: &[f32],
        targets: &(impl ClassTargets + ?Sized),
        rows: usize,
        classes: usize,
        opts: &CrossEntropyOptions,
    ) -> Result<Vec<f32>> {
        pollster::block_on(self.cross_entropy_async(logits, targets, rows, classes, opts))
    }

    /// The async form of [`Gpu::cross_entropy`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let loss = pollster::block_on(gpu.cross_entropy_async(&[0.0, 0.0], &[0], 1, 2, &opts)).unwrap();
    /// ```
    pub async fn cross_entropy_async(
        &self,
        logits: &[f32],
        targets: &(impl ClassTargets + ?Sized),
        rows: usize,
        classes: usize,
        opts: &CrossEntropyOptions,
    ) -> Result<Vec<f32>> {
        let targets = &*targets.to_i32(classes)?;
        let wanted = Wanted {
            loss: true,
            grad: false,
        };
        let (loss, _) = class_index_slice(
            self,
            ClassIndexOp::CrossEntropy,
            ("logits", Some(logits)),
            targets,
            rows,
            classes,
            opts,
            None,
            wanted,
        )
        .await?;
        Ok(loss)
    }

    /// The gradient of cross-entropy with respect to the logits (`rows × classes`), given
    /// the upstream gradient (`rows` values for `Reduction::None`, else one). Blocking.
    ///
    /// ```
    /// use wgpu_loss::{CrossEntropyOptions, Gpu, Reduction};
    /// let gpu = Gpu::new().unwrap();
    /// let mut opts = CrossEntropyOptions::default();
    /// opts.reduction = Reduction::Sum;
    /// let g = gpu.cross_entropy_grad(&[0.0, 0.0], &[1], 1, 2, &opts, &[1.0]).unwrap();
    /// assert_eq!(g, vec![0.5, -0.5]); // softmax - onehot
    /// ```
    #[cfg(not(target_arch = "wasm32"))]
    pub fn cross_entropy_grad(
        &self,
        logits: &[f32],
        targets: &(impl ClassTargets + ?Sized),
        rows: usize,
        classes: usize,
        opts: &CrossEntropyOptions,
        grad_output: &[f32],
    ) -> Result<Vec<f32>> {
        pollster::block_on(self.cross_entropy_grad_async(logits, targets, rows, classes, opts, grad_output))
    }

    /// The async form of [`Gpu::cross_entropy_grad`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let g = pollster::block_on(gpu.cross_entropy_grad_async(&[0.0, 0.0], &[1], 1, 2, &opts, &[1.0])).unwrap();
    /// ```
    pub async fn cross_entropy_grad_async(
        &self,
        logits: &[f32],
        targets: &(impl ClassTargets + ?Sized),
        rows: usize,
        classes: usize,
        opts: &CrossEntropyOptions,
        grad_output: &[f32],
    ) -> Result<Vec<f32>> {
        let targets = &*targets.to_i32(classes)?;
        let wanted = Wanted {
            loss: false,
            grad: true,
        };
        let (_, grad) = class_index_slice(
            self,
            ClassIndexOp::CrossEntropy,
            ("logits", Some(logits)),
            targets,
            rows,
            classes,
            opts,
            Some(grad_output),
            wanted,
        )
        .await?;
        Ok(grad)
    }

    /// Loss and gradient together from one kernel that reads the logits once for both
    /// (plus once more to write the gradient), for training loops. Blocking; native only.
    ///
    /// ```
    /// use wgpu_loss::{CrossEntropyOptions, Gpu};
    /// let gpu = Gpu::new().unwrap();
    /// let (loss, grad) = gpu
    ///     .cross_entropy_with_grad(&[0.0, 0.0, 5.0, -5.0], &[1, 0], 2, 2, &CrossEntropyOptions::default(), &[1.0])
    ///     .unwrap();
    /// assert_eq!(grad.len(), 4);
    /// ```
    #[cfg(not(target_arch = "wasm32"))]
    pub fn cross_entropy_with_grad(
        &self,
        logits: &[f32],
        targets: &(impl ClassTargets + ?Sized),
        rows: usize,
        classes: usize,
        opts: &CrossEntropyOptions,
        grad_output: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        pollster::block_on(self.cross_entropy_with_grad_async(logits, targets, rows, classes, opts, grad_output))
    }

    /// The async form of [`Gpu::cross_entropy_with_grad`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let (l, g) = pollster::block_on(gpu.cross_entropy_with_grad_async(&[0.0, 0.0], &[1], 1, 2, &opts, &[1.0])).unwrap();
    /// ```
    pub async fn cross_entropy_with_grad_async(
        &self,
        logits: &[f32],
        targets: &(impl ClassTargets + ?Sized),
        rows: usize,
        classes: usize,
        opts: &CrossEntropyOptions,
        grad_output: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let targets = &*targets.to_i32(classes)?;
        let wanted = Wanted { loss: true, grad: true };
        class_index_slice(
            self,
            ClassIndexOp::CrossEntropy,
            ("logits", Some(logits)),
            targets,
            rows,
            classes,
            opts,
            Some(grad_output),
            wanted,
        )
        .await
    }
}
