//! The caller's buffers for the encode API of the class-index ops.

use crate::options::Precision;

/// The caller's buffers for recording an NLL or cross-entropy op with the encode API.
///
/// `targets` holds one `i32` class index per row. Ask for the loss, the gradient, or both:
/// `loss` receives `rows` values for [`Reduction::None`](crate::Reduction::None) and one value otherwise; `grad`
/// receives `rows × classes` values; `grad_output` (one value per row for `None`, else
/// one) is the upstream gradient, 1.0 when absent. Every buffer needs `STORAGE` usage
/// and a 4-byte-aligned offset.
///
/// ```
/// # let gpu = wgpu_loss::Gpu::new().unwrap();
/// use wgpu::util::DeviceExt;
/// let d = gpu.device();
/// let storage = wgpu::BufferUsages::STORAGE;
/// let logits = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
///     label: None, contents: bytemuck::cast_slice(&[1.0f32, 2.0, 3.0]), usage: storage });
/// let targets = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
///     label: None, contents: bytemuck::cast_slice(&[2i32]), usage: storage });
/// let loss = d.create_buffer(&wgpu::BufferDescriptor {
///     label: None, size: 4, usage: storage | wgpu::BufferUsages::COPY_SRC, mapped_at_creation: false });
/// let buffers = wgpu_loss::LossBuffers::new(targets.slice(..))
///     .input(logits.slice(..))
///     .loss(loss.slice(..));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LossBuffers<'a> {
    pub(crate) input: Option<wgpu::BufferSlice<'a>>,
    pub(crate) targets: wgpu::BufferSlice<'a>,
    pub(crate) loss: Option<wgpu::BufferSlice<'a>>,
    pub(crate) grad: Option<wgpu::BufferSlice<'a>>,
    pub(crate) grad_output: Option<wgpu::BufferSlice<'a>>,
    pub(crate) in_place: bool,
    pub(crate) lse: Option<wgpu::BufferSlice<'a>>,
    pub(crate) argmax: Option<wgpu::BufferSlice<'a>>,
    pub(crate) accuracy: Option<wgpu::BufferSlice<'a>>,
    pub(crate) precision: Precision,
}

impl<'a> LossBuffers<'a> {
    /// Starts from the targets (`rows` `i32` class indices).
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let t = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 4,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LossBuffers::new(t.slice(..));
    /// ```
    pub fn new(targets: wgpu::BufferSlice<'a>) -> Self {
        Self {
            input: None,
            targets,
            loss: None,
            grad: None,
            grad_output: None,
            in_place: false,
            lse: None,
            argmax: None,
            accuracy: None,
            precision: Precision::F32,
        }
    }

    /// The `rows × classes` input: logits for cross-entropy, log-probabilities for NLL.
    /// (NLL's gradient alone does not read it.)
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LossBuffers::new(b.slice(..4)).input(b.slice(4..));
    /// ```
    pub fn input(mut self, input: wgpu::BufferSlice<'a>) -> Self {
        self.input = Some(input);
        self
    }

    /// Where the loss goes (`rows` values for `Reduction::None`, else one).
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LossBuffers::new(b.slice(..4)).loss(b.slice(4..8));
    /// ```
    pub fn loss(mut self, loss: wgpu::BufferSlice<'a>) -> Self {
        self.loss = Some(loss);
        self
    }

    /// Where the gradient with respect to the input goes (`rows × classes` values).
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LossBuffers::new(b.slice(..4)).grad(b.slice(4..));
    /// ```
    pub fn grad(mut self, grad: wgpu::BufferSlice<'a>) -> Self {
        self.grad = Some(grad);
        self
    }

    /// Writes the cross-entropy gradient over the logits (`input`), saving a second
    /// `rows × classes` buffer: afterwards the logits are gone. The loss is still computed
    /// from the logits before they are overwritten. Cross-entropy only.
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LossBuffers::new(b.slice(..4)).input(b.slice(4..)).grad_in_place();
    /// ```
    pub fn grad_in_place(mut self) -> Self {
        self.in_place = true;
        self
    }

    /// The upstream gradient (`rows` values for `Reduction::None`, else one); 1.0 without it.
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LossBuffers::new(b.slice(..4)).grad_output(b.slice(4..8));
    /// ```
    pub fn grad_output(mut self, grad_output: wgpu::BufferSlice<'a>) -> Self {
        self.grad_output = Some(grad_output);
        self
    }

    /// Where each row's log-sum-exp of the (soft-capped) logits goes (`rows` `f32`s, as
    /// `torch.logsumexp`; cross-entropy only). The buffer needs `COPY_DST` usage: the kernel
    /// writes it to the workspace and a copy recorded after it moves it here.
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LossBuffers::new(b.slice(..4)).lse(b.slice(4..8));
    /// ```
    pub fn lse(mut self, lse: wgpu::BufferSlice<'a>) -> Self {
        self.lse = Some(lse);
        self
    }

    /// Where each row's argmax over the raw logits goes (`rows` `i32`s, the first class
    /// holding the largest logit, a NaN counting as largest, as `torch.argmax`;
    /// cross-entropy only). Needs `COPY_DST` usage, as [`LossBuffers::lse`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LossBuffers::new(b.slice(..4)).argmax(b.slice(4..8));
    /// ```
    pub fn argmax(mut self, argmax: wgpu::BufferSlice<'a>) -> Self {
        self.argmax = Some(argmax);
        self
    }

    /// Where the batch accuracy goes (one `f32`: the share of rows with a valid,
    /// non-ignored target whose argmax is that target; NaN when there is none, 0 under
    /// `EmptyPolicy::Zero`). Class-index cross-entropy only; needs `COPY_DST` usage.
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LossBuffers::new(b.slice(..4)).accuracy(b.slice(4..8));
    /// ```
    pub fn accuracy(mut self, accuracy: wgpu::BufferSlice<'a>) -> Self {
        self.accuracy = Some(accuracy);
        self
    }

    /// The element type of `input` (and, for [`Precision::F16`], of `grad`): f16 or bf16
    /// logits, widened to f32 in the shader. Cross-entropy only; not with
    /// [`LossBuffers::grad_in_place`]. `F16` needs the adapter's `SHADER_F16`.
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LossBuffers::new(b.slice(..4)).input(b.slice(4..)).precision(wgpu_loss::Precision::Bf16);
    /// ```
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }
}
