//! Cross-entropy from raw logits with class-index targets (shaders/cross_entropy/).

use super::slice::{Outputs, SliceInput, SliceTargets, Wanted, class_index_slice, index_slice};
use super::{ClassIndexOp, LossBuffers, Problem, encode};
use crate::error::Result;
use crate::gpu::{Gpu, Workspace};
use crate::options::{ClassTargets, CrossEntropyOptions, CrossEntropyOutputs, Extras, HalfLogits};

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
        &self, encoder: &mut wgpu::CommandEncoder, workspace: &mut Workspace, buffers: &LossBuffers<'_>, rows: usize,
        classes: usize, opts: &CrossEntropyOptions,
    ) -> Result<()> {
        encode(self, encoder, workspace, &Problem::new(ClassIndexOp::CrossEntropy, rows, classes, opts)?, buffers)
    }

    /// Records cross-entropy against probability targets (`torch.nn.functional.cross_entropy`
    /// with a float `target` of the input's shape) into the caller's encoder: the loss, its
    /// gradient, or both, as [`Gpu::encode_cross_entropy`]. `buffers.targets` holds the
    /// `rows × classes` target probabilities (`f32`, laid out as the logits); `ignore_index`
    /// is unused and `Reduction::Mean` divides by the row count, as PyTorch. Rows need not
    /// sum to 1 (PyTorch does not check either); a non-finite target makes its row NaN.
    ///
    /// ```
    /// use wgpu::util::DeviceExt;
    /// use wgpu_loss::{CrossEntropyOptions, Gpu, LossBuffers, Workspace};
    /// let gpu = Gpu::new().unwrap();
    /// let (d, usage) = (gpu.device(), wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC);
    /// let init = |bytes: &[u8]| d.create_buffer_init(&wgpu::util::BufferInitDescriptor { label: None, contents: bytes, usage });
    /// let logits = init(bytemuck::cast_slice(&[2.0f32, 0.0, 0.0]));
    /// let probs = init(bytemuck::cast_slice(&[0.5f32, 0.5, 0.0]));
    /// let loss = init(&[0; 4]);
    /// let mut ws = Workspace::new(&gpu);
    /// let mut encoder = d.create_command_encoder(&Default::default());
    /// let buffers = LossBuffers::new(probs.slice(..)).input(logits.slice(..)).loss(loss.slice(..));
    /// gpu.encode_cross_entropy_probs(&mut encoder, &mut ws, &buffers, 1, 3, &CrossEntropyOptions::default()).unwrap();
    /// gpu.queue().submit([encoder.finish()]);
    /// ```
    pub fn encode_cross_entropy_probs(
        &self, encoder: &mut wgpu::CommandEncoder, workspace: &mut Workspace, buffers: &LossBuffers<'_>, rows: usize,
        classes: usize, opts: &CrossEntropyOptions,
    ) -> Result<()> {
        encode(self, encoder, workspace, &Problem::new(ClassIndexOp::CrossEntropyProbs, rows, classes, opts)?, buffers)
    }
}

slice_api! {
    /// Cross-entropy of `rows × classes` logits against class-index `targets`: `rows`
    /// values for `Reduction::None`, else one. Blocking; native only.
    ///
    /// ```
    /// use wgpu_loss::{CrossEntropyOptions, Gpu};
    /// let gpu = Gpu::new().unwrap();
    /// let loss = gpu.cross_entropy(&[0.0, 0.0], &[1], 1, 2, &CrossEntropyOptions::default()).unwrap();
    /// assert!((loss[0] - 2f32.ln()).abs() < 1e-6);
    /// ```
    pub fn cross_entropy;
    /// The async form of [`Gpu::cross_entropy`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let loss = pollster::block_on(gpu.cross_entropy_async(&[0.0, 0.0], &[0], 1, 2, &opts)).unwrap();
    /// ```
    pub async fn cross_entropy_async(
        &self, logits: &[f32], targets: &(impl ClassTargets + ?Sized), rows: usize, classes: usize,
        opts: &CrossEntropyOptions,
    ) -> Result<Vec<f32>> {
        let out = index_slice(self, ClassIndexOp::CrossEntropy, SliceInput::f32("logits", logits), targets, (rows, classes, opts), None, Wanted::LOSS);
        Ok(out.await?.loss)
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
    pub fn cross_entropy_grad;
    /// The async form of [`Gpu::cross_entropy_grad`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let g = pollster::block_on(gpu.cross_entropy_grad_async(&[0.0, 0.0], &[1], 1, 2, &opts, &[1.0])).unwrap();
    /// ```
    pub async fn cross_entropy_grad_async(
        &self, logits: &[f32], targets: &(impl ClassTargets + ?Sized), rows: usize, classes: usize,
        opts: &CrossEntropyOptions, grad_output: &[f32],
    ) -> Result<Vec<f32>> {
        let out = index_slice(self, ClassIndexOp::CrossEntropy, SliceInput::f32("logits", logits), targets, (rows, classes, opts), Some(grad_output), Wanted::GRAD);
        Ok(out.await?.grad)
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
    pub fn cross_entropy_with_grad;
    /// The async form of [`Gpu::cross_entropy_with_grad`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let (l, g) = pollster::block_on(gpu.cross_entropy_with_grad_async(&[0.0, 0.0], &[1], 1, 2, &opts, &[1.0])).unwrap();
    /// ```
    pub async fn cross_entropy_with_grad_async(
        &self, logits: &[f32], targets: &(impl ClassTargets + ?Sized), rows: usize, classes: usize,
        opts: &CrossEntropyOptions, grad_output: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let out = index_slice(self, ClassIndexOp::CrossEntropy, SliceInput::f32("logits", logits), targets, (rows, classes, opts), Some(grad_output), Wanted::BOTH);
        let out = out.await?;
        Ok((out.loss, out.grad))
    }

    /// Cross-entropy of `rows × classes` logits against `rows × classes` probability
    /// targets: `rows` values for `Reduction::None`, else one (mean divides by `rows`, not
    /// by any weight, as PyTorch). Blocking; native only.
    ///
    /// ```
    /// use wgpu_loss::{CrossEntropyOptions, Gpu};
    /// let gpu = Gpu::new().unwrap();
    /// let loss = gpu.cross_entropy_probs(&[0.0, 0.0], &[0.25, 0.75], 1, 2, &CrossEntropyOptions::default()).unwrap();
    /// assert!((loss[0] - 2f32.ln()).abs() < 1e-6);
    /// ```
    pub fn cross_entropy_probs;
    /// The async form of [`Gpu::cross_entropy_probs`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let loss = pollster::block_on(gpu.cross_entropy_probs_async(&[0.0, 0.0], &[1.0, 0.0], 1, 2, &opts)).unwrap();
    /// ```
    pub async fn cross_entropy_probs_async(
        &self, logits: &[f32], targets: &[f32], rows: usize, classes: usize, opts: &CrossEntropyOptions,
    ) -> Result<Vec<f32>> {
        Ok(probs_slice(self, logits, targets, (rows, classes, opts), None, Wanted::LOSS).await?.loss)
    }

    /// The gradient of [`Gpu::cross_entropy_probs`] with respect to the logits
    /// (`g·(softmax·Σ_c w[c]·y'[c] - w·y')`). Blocking; native only.
    ///
    /// ```
    /// use wgpu_loss::{CrossEntropyOptions, Gpu, Reduction};
    /// let gpu = Gpu::new().unwrap();
    /// let mut opts = CrossEntropyOptions::default();
    /// opts.reduction = Reduction::Sum;
    /// let g = gpu.cross_entropy_probs_grad(&[0.0, 0.0], &[0.25, 0.75], 1, 2, &opts, &[1.0]).unwrap();
    /// assert_eq!(g, vec![0.25, -0.25]);
    /// ```
    pub fn cross_entropy_probs_grad;
    /// The async form of [`Gpu::cross_entropy_probs_grad`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let g = pollster::block_on(gpu.cross_entropy_probs_grad_async(&[0.0, 0.0], &[0.0, 1.0], 1, 2, &opts, &[1.0])).unwrap();
    /// ```
    pub async fn cross_entropy_probs_grad_async(
        &self, logits: &[f32], targets: &[f32], rows: usize, classes: usize, opts: &CrossEntropyOptions,
        grad_output: &[f32],
    ) -> Result<Vec<f32>> {
        let out = probs_slice(self, logits, targets, (rows, classes, opts), Some(grad_output), Wanted::GRAD);
        Ok(out.await?.grad)
    }

    /// Loss and gradient of [`Gpu::cross_entropy_probs`] from one fused kernel. Blocking;
    /// native only.
    ///
    /// ```
    /// use wgpu_loss::{CrossEntropyOptions, Gpu};
    /// let gpu = Gpu::new().unwrap();
    /// let opts = CrossEntropyOptions::default();
    /// let (loss, grad) = gpu.cross_entropy_probs_with_grad(&[0.0, 1.0], &[0.5, 0.5], 1, 2, &opts, &[1.0]).unwrap();
    /// assert_eq!(grad.len(), 2);
    /// ```
    pub fn cross_entropy_probs_with_grad;
    /// The async form of [`Gpu::cross_entropy_probs_with_grad`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let (l, g) = pollster::block_on(gpu.cross_entropy_probs_with_grad_async(&[0.0, 0.0], &[0.0, 1.0], 1, 2, &opts, &[1.0])).unwrap();
    /// ```
    pub async fn cross_entropy_probs_with_grad_async(
        &self, logits: &[f32], targets: &[f32], rows: usize, classes: usize, opts: &CrossEntropyOptions,
        grad_output: &[f32],
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        let out = probs_slice(self, logits, targets, (rows, classes, opts), Some(grad_output), Wanted::BOTH);
        let out = out.await?;
        Ok((out.loss, out.grad))
    }

    /// Cross-entropy with the fused kernel's extra outputs: the loss, the gradient when
    /// `grad_output` is given, and whichever of the per-row log-sum-exp, per-row argmax and
    /// batch accuracy `extras` asks for, all from one pass over the logits. Blocking; native
    /// only.
    ///
    /// ```
    /// use wgpu_loss::{CrossEntropyOptions, Extras, Gpu};
    /// let gpu = Gpu::new().unwrap();
    /// let mut opts = CrossEntropyOptions::default();
    /// opts.z_loss_scale = 1e-4;
    /// let out = gpu
    ///     .cross_entropy_with_extras(&[0.0, 3.0, 1.0, 0.0], &[1, 1], 2, 2, &opts, Extras::all(), None)
    ///     .unwrap();
    /// assert_eq!(out.argmax, vec![1, 0]);
    /// assert_eq!(out.accuracy, Some(0.5));
    /// assert!((out.lse[1] - (1f32.exp() + 1.0).ln()).abs() < 1e-6);
    /// ```
    pub fn cross_entropy_with_extras;
    /// The async form of [`Gpu::cross_entropy_with_extras`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let extras = wgpu_loss::Extras::all();
    /// let out = pollster::block_on(gpu.cross_entropy_with_extras_async(&[0.0, 1.0], &[1], 1, 2, &opts, extras, None)).unwrap();
    /// assert_eq!(out.accuracy, Some(1.0));
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub async fn cross_entropy_with_extras_async(
        &self, logits: &[f32], targets: &(impl ClassTargets + ?Sized), rows: usize, classes: usize,
        opts: &CrossEntropyOptions, extras: Extras, grad_output: Option<&[f32]>,
    ) -> Result<CrossEntropyOutputs> {
        let wanted = Wanted {
            loss: true,
            grad: grad_output.is_some(),
            lse: extras.lse,
            argmax: extras.argmax,
            accuracy: extras.accuracy,
        };
        let out = index_slice(self, ClassIndexOp::CrossEntropy, SliceInput::f32("logits", logits), targets, (rows, classes, opts), grad_output, wanted).await?;
        Ok(CrossEntropyOutputs {
            loss: out.loss,
            grad: out.grad,
            lse: out.lse,
            argmax: out.argmax.iter().map(|v| v.to_bits() as i32).collect(),
            accuracy: out.accuracy.first().copied(),
        })
    }

    /// Cross-entropy of `rows × classes` half-precision logits (`half::bf16` on any
    /// adapter, `half::f16` where the adapter has `SHADER_F16`) against class-index targets,
    /// computed in f32 from the exactly widened values: the same as
    /// [`Gpu::cross_entropy`] on those values. Blocking; native only.
    ///
    /// ```
    /// use half::bf16;
    /// use wgpu_loss::{CrossEntropyOptions, Gpu};
    /// let gpu = Gpu::new().unwrap();
    /// let logits = [bf16::from_f32(0.0), bf16::from_f32(0.0)];
    /// let loss = gpu.cross_entropy_half(&logits, &[1], 1, 2, &CrossEntropyOptions::default()).unwrap();
    /// assert!((loss[0] - 2f32.ln()).abs() < 1e-6);
    /// ```
    pub fn cross_entropy_half;
    /// The async form of [`Gpu::cross_entropy_half`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let logits = [half::bf16::ONE, half::bf16::ZERO];
    /// let loss = pollster::block_on(gpu.cross_entropy_half_async(&logits, &[0], 1, 2, &opts)).unwrap();
    /// ```
    pub async fn cross_entropy_half_async<H: HalfLogits>(
        &self, logits: &[H], targets: &(impl ClassTargets + ?Sized), rows: usize, classes: usize,
        opts: &CrossEntropyOptions,
    ) -> Result<Vec<f32>> {
        Ok(half_slice(self, logits, targets, (rows, classes, opts), None, Wanted::LOSS).await?.0)
    }

    /// Loss and gradient of [`Gpu::cross_entropy_half`] from the fused kernel; the gradient
    /// is `half::f16` for f16 logits (rounded to nearest, `±inf` beyond f16's range) and
    /// `f32` for bf16 logits. Blocking; native only.
    ///
    /// ```
    /// use half::bf16;
    /// use wgpu_loss::{CrossEntropyOptions, Gpu};
    /// let gpu = Gpu::new().unwrap();
    /// let logits = [bf16::from_f32(0.0), bf16::from_f32(0.0)];
    /// let (loss, grad) = gpu
    ///     .cross_entropy_with_grad_half(&logits, &[1], 1, 2, &CrossEntropyOptions::default(), &[1.0])
    ///     .unwrap();
    /// assert_eq!(grad, vec![0.5f32, -0.5]);
    /// ```
    pub fn cross_entropy_with_grad_half;
    /// The async form of [`Gpu::cross_entropy_with_grad_half`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let logits = [half::bf16::ONE, half::bf16::ZERO];
    /// let (l, g) = pollster::block_on(gpu.cross_entropy_with_grad_half_async(&logits, &[0], 1, 2, &opts, &[1.0])).unwrap();
    /// ```
    pub async fn cross_entropy_with_grad_half_async<H: HalfLogits>(
        &self, logits: &[H], targets: &(impl ClassTargets + ?Sized), rows: usize, classes: usize,
        opts: &CrossEntropyOptions, grad_output: &[f32],
    ) -> Result<(Vec<f32>, Vec<H::Grad>)> {
        half_slice(self, logits, targets, (rows, classes, opts), Some(grad_output), Wanted::BOTH).await
    }
}

/// The slice API of cross-entropy on half-precision logits: the gradient comes back as
/// words and is reinterpreted as `H::Grad`.
async fn half_slice<H: HalfLogits>(
    gpu: &Gpu, logits: &[H], targets: &(impl ClassTargets + ?Sized), shape: (usize, usize, &CrossEntropyOptions),
    grad_output: Option<&[f32]>, wanted: Wanted,
) -> Result<(Vec<f32>, Vec<H::Grad>)> {
    let input = SliceInput {
        name: "logits",
        bytes: Some(bytemuck::cast_slice(logits)),
        len: logits.len(),
        precision: H::PRECISION,
    };
    let out = index_slice(gpu, ClassIndexOp::CrossEntropy, input, targets, shape, grad_output, wanted).await?;
    let bytes: &[u8] = bytemuck::cast_slice(&out.grad);
    let n = if wanted.grad { logits.len() } else { 0 };
    let grad = bytemuck::pod_collect_to_vec(&bytes[..n * std::mem::size_of::<H::Grad>()]);
    Ok((out.loss, grad))
}

/// The slice API of cross-entropy with probability targets.
async fn probs_slice(
    gpu: &Gpu, logits: &[f32], targets: &[f32], (rows, classes, opts): (usize, usize, &CrossEntropyOptions),
    grad_output: Option<&[f32]>, wanted: Wanted,
) -> Result<Outputs> {
    let problem = Problem::new(ClassIndexOp::CrossEntropyProbs, rows, classes, opts)?;
    let (input, targets) = (SliceInput::f32("logits", logits), SliceTargets::Probs(targets));
    class_index_slice(gpu, &problem, input, targets, grad_output, wanted).await
}
