//! The caller's buffers for the encode API of the fused linear + cross-entropy op.

use crate::options::{Precision, WeightLayout};

/// The caller's buffers for [`Gpu::encode_linear_cross_entropy`](crate::Gpu::encode_linear_cross_entropy).
///
/// Starts from the hidden states (`tokens × hidden_size`), the output layer's weight
/// (`vocab × hidden_size`, or `hidden_size × vocab` with [`WeightLayout::HiddenByVocab`])
/// and the targets (`tokens` `i32` class indices); ask for the loss, any of the gradients
/// and the extras. `hidden`, `weight` and `bias` are f32 unless [`LinearBuffers::precision`]
/// says otherwise; the gradients are f32 always. Every buffer needs `STORAGE` usage and a
/// 4-byte-aligned offset; the gradients may not share a buffer with `hidden`, `weight` or
/// `bias`.
///
/// ```
/// # let gpu = wgpu_loss::Gpu::new().unwrap();
/// let buf = |bytes: u64| gpu.device().create_buffer(&wgpu::BufferDescriptor {
///     label: None, size: bytes, usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
/// let (h, w, t, loss) = (buf(16), buf(32), buf(8), buf(4));
/// let buffers = wgpu_loss::LinearBuffers::new(h.slice(..), w.slice(..), t.slice(..)).loss(loss.slice(..));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct LinearBuffers<'a> {
    pub(crate) hidden: wgpu::BufferSlice<'a>,
    pub(crate) weight: wgpu::BufferSlice<'a>,
    pub(crate) targets: wgpu::BufferSlice<'a>,
    pub(crate) bias: Option<wgpu::BufferSlice<'a>>,
    pub(crate) loss: Option<wgpu::BufferSlice<'a>>,
    pub(crate) grad_output: Option<wgpu::BufferSlice<'a>>,
    pub(crate) grad_hidden: Option<wgpu::BufferSlice<'a>>,
    pub(crate) grad_weight: Option<wgpu::BufferSlice<'a>>,
    pub(crate) grad_bias: Option<wgpu::BufferSlice<'a>>,
    pub(crate) lse: Option<wgpu::BufferSlice<'a>>,
    pub(crate) argmax: Option<wgpu::BufferSlice<'a>>,
    pub(crate) accuracy: Option<wgpu::BufferSlice<'a>>,
    pub(crate) layout: WeightLayout,
    pub(crate) precision: Precision,
    pub(crate) accumulate: bool,
}

/// Setters of optional buffers, each with its doc comment.
macro_rules! optional_buffers {
    ($($(#[doc = $doc:expr])* $name:ident;)*) => {
        impl<'a> LinearBuffers<'a> {$(
            $(#[doc = $doc])*
            pub fn $name(mut self, $name: wgpu::BufferSlice<'a>) -> Self {
                self.$name = Some($name);
                self
            }
        )*}
    };
}

impl<'a> LinearBuffers<'a> {
    /// Starts from the hidden states, the weight and the targets.
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 64,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LinearBuffers::new(b.slice(..16), b.slice(16..48), b.slice(48..));
    /// ```
    pub fn new(hidden: wgpu::BufferSlice<'a>, weight: wgpu::BufferSlice<'a>, targets: wgpu::BufferSlice<'a>) -> Self {
        Self {
            hidden,
            weight,
            targets,
            bias: None,
            loss: None,
            grad_output: None,
            grad_hidden: None,
            grad_weight: None,
            grad_bias: None,
            lse: None,
            argmax: None,
            accuracy: None,
            layout: WeightLayout::VocabByHidden,
            precision: Precision::F32,
            accumulate: false,
        }
    }

    /// How `weight` is laid out (default [`WeightLayout::VocabByHidden`], as
    /// `torch.nn.Linear.weight`); `grad_weight` is laid out the same way.
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 64,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// use wgpu_loss::{LinearBuffers, WeightLayout};
    /// let buffers = LinearBuffers::new(b.slice(..16), b.slice(16..48), b.slice(48..))
    ///     .weight_layout(WeightLayout::HiddenByVocab); // burn's Linear
    /// ```
    pub fn weight_layout(mut self, layout: WeightLayout) -> Self {
        self.layout = layout;
        self
    }

    /// The element type of `hidden`, `weight` and `bias`: f32 (the default), f16 or bf16
    /// (any adapter: the products widen them to f32 from their bits and sum in f32).
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 64,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LinearBuffers::new(b.slice(..16), b.slice(16..48), b.slice(48..))
    ///     .precision(wgpu_loss::Precision::Bf16);
    /// ```
    pub fn precision(mut self, precision: Precision) -> Self {
        self.precision = precision;
        self
    }

    /// Adds the weight and bias gradients into `grad_weight` and `grad_bias` instead of
    /// overwriting them, for gradient accumulation over micro-batches.
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 64,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LinearBuffers::new(b.slice(..16), b.slice(16..48), b.slice(48..)).accumulate();
    /// ```
    pub fn accumulate(mut self) -> Self {
        self.accumulate = true;
        self
    }

    /// Whether any gradient is asked for.
    pub(crate) fn wants_grads(&self) -> bool {
        self.grad_hidden.is_some() || self.grad_weight.is_some() || self.grad_bias.is_some()
    }
}

optional_buffers! {
    /// The bias (`vocab` values, in the precision of `weight`).
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 64,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LinearBuffers::new(b.slice(..16), b.slice(16..32), b.slice(32..40)).bias(b.slice(40..48));
    /// ```
    bias;
    /// Where the loss goes (`tokens` values for `Reduction::None`, else one).
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 64,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LinearBuffers::new(b.slice(..16), b.slice(16..32), b.slice(32..40)).loss(b.slice(40..44));
    /// ```
    loss;
    /// The upstream gradient of the loss (`tokens` values for `Reduction::None`, else
    /// one); 1.0 without it.
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 64,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LinearBuffers::new(b.slice(..16), b.slice(16..32), b.slice(32..40)).grad_output(b.slice(40..44));
    /// ```
    grad_output;
    /// Where `∂L/∂h` goes (`tokens × hidden_size` f32).
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 64,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// # let g = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LinearBuffers::new(b.slice(..16), b.slice(16..32), b.slice(32..40)).grad_hidden(g.slice(..));
    /// ```
    grad_hidden;
    /// Where `∂L/∂W` goes (f32, laid out as the weight); see [`LinearBuffers::accumulate`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 64,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// # let g = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LinearBuffers::new(b.slice(..16), b.slice(16..32), b.slice(32..40)).grad_weight(g.slice(..));
    /// ```
    grad_weight;
    /// Where `∂L/∂b` goes (`vocab` f32; needs a bias); see [`LinearBuffers::accumulate`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 64,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// # let g = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LinearBuffers::new(b.slice(..16), b.slice(16..32), b.slice(32..40))
    ///     .bias(b.slice(40..48)).grad_bias(g.slice(..8));
    /// ```
    grad_bias;
    /// Where each token's log-sum-exp of the (soft-capped) logits goes (`tokens` f32;
    /// needs `COPY_DST` usage, as [`LossBuffers::lse`](crate::LossBuffers::lse)).
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 64,
    /// #     usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LinearBuffers::new(b.slice(..16), b.slice(16..32), b.slice(32..40)).lse(b.slice(40..48));
    /// ```
    lse;
    /// Where each token's argmax over the logits goes (`tokens` `i32`; needs `COPY_DST`).
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 64,
    /// #     usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LinearBuffers::new(b.slice(..16), b.slice(16..32), b.slice(32..40)).argmax(b.slice(40..48));
    /// ```
    argmax;
    /// Where the batch accuracy goes (one f32, as [`LossBuffers::accuracy`](crate::LossBuffers::accuracy);
    /// needs `COPY_DST`).
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 64,
    /// #     usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_DST, mapped_at_creation: false });
    /// let buffers = wgpu_loss::LinearBuffers::new(b.slice(..16), b.slice(16..32), b.slice(32..40)).accuracy(b.slice(40..44));
    /// ```
    accuracy;
}
