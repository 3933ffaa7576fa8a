//! The elementwise losses (shaders/elementwise/elementwise.wgsl): MSE, L1, RMSE, smooth L1, Huber,
//! binary cross-entropy on probabilities and on logits, KL divergence.
//!
//! Every loss has the same seven methods on [`Gpu`]: `encode_<loss>` (record into the
//! caller's encoder), `<loss>`, `<loss>_grad` and `<loss>_with_grad` (slice API, blocking,
//! native only) and their `_async` forms. Their arguments are those of the CPU twins in
//! [`crate::cpu`]: `input` and `target` of `n` elements each, the loss's own arguments, and
//! for gradients `grad_output` (`n` values for reduction `none`, else one).

use super::class_index::Wanted;
use crate::error::{Error, Result};
use crate::gpu::{Binding, Dispatch, Gpu, Kernel, Layout, LossParams, Workspace};
use crate::gpu::{
    EW_BATCHMEAN, EW_LOG_TARGET, EW_POS_WEIGHT, EW_ROOT, EW_TILE, FLAG_GRAD_BUFFER, FLAG_MEAN, FLAG_SUM, FLAG_WEIGHT,
    LOSS_BCE, LOSS_BCE_WITH_LOGITS, LOSS_HUBER, LOSS_KL_DIV, LOSS_L1, LOSS_MSE, LOSS_SHIFT, LOSS_SMOOTH_L1,
};
use crate::options::{Combine, Elementwise, Pointwise};
use crate::{BceOptions, KlDivOptions, Reduction};

/// Elements per workgroup, and so per partial sum.
const TILE: u64 = EW_TILE as u64;

fn lcm(a: u64, b: u64) -> u64 {
    let gcd = |mut a: u64, mut b: u64| {
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    };
    a / gcd(a, b) * b
}

/// The caller's buffers for recording an elementwise loss with the encode API.
///
/// `input` and `target` hold `n` f32 values each. Ask for the loss, the gradient, or both:
/// `loss` receives `n` values for reduction `none` and one value otherwise; `grad` receives
/// `n` values; `grad_output` (`n` values for `none`, else one) is the upstream gradient,
/// 1.0 when absent. Every buffer needs `STORAGE` usage and a 4-byte-aligned offset.
///
/// ```
/// # let gpu = wgpu_loss::Gpu::new().unwrap();
/// use wgpu::util::DeviceExt;
/// let (d, usage) = (gpu.device(), wgpu::BufferUsages::STORAGE);
/// let init = |data: &[f32]| d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
///     label: None, contents: bytemuck::cast_slice(data), usage });
/// let (x, y, loss) = (init(&[1.0, 2.0]), init(&[0.0, 2.0]), init(&[0.0]));
/// let buffers = wgpu_loss::ElementwiseBuffers::new(x.slice(..), y.slice(..)).loss(loss.slice(..));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct ElementwiseBuffers<'a> {
    input: wgpu::BufferSlice<'a>,
    target: wgpu::BufferSlice<'a>,
    loss: Option<wgpu::BufferSlice<'a>>,
    grad: Option<wgpu::BufferSlice<'a>>,
    grad_output: Option<wgpu::BufferSlice<'a>>,
}

impl<'a> ElementwiseBuffers<'a> {
    /// Starts from the `n` inputs and the `n` targets.
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::ElementwiseBuffers::new(b.slice(..8), b.slice(8..));
    /// ```
    pub fn new(input: wgpu::BufferSlice<'a>, target: wgpu::BufferSlice<'a>) -> Self {
        Self { input, target, loss: None, grad: None, grad_output: None }
    }

    /// Where the loss goes (`n` values for reduction `none`, else one).
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::ElementwiseBuffers::new(b.slice(..4), b.slice(4..8)).loss(b.slice(8..12));
    /// ```
    pub fn loss(mut self, loss: wgpu::BufferSlice<'a>) -> Self {
        self.loss = Some(loss);
        self
    }

    /// Where the gradient with respect to the input goes (`n` values).
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::ElementwiseBuffers::new(b.slice(..4), b.slice(4..8)).grad(b.slice(8..12));
    /// ```
    pub fn grad(mut self, grad: wgpu::BufferSlice<'a>) -> Self {
        self.grad = Some(grad);
        self
    }

    /// The upstream gradient (`n` values for reduction `none`, else one); 1.0 without it.
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let b = gpu.device().create_buffer(&wgpu::BufferDescriptor { label: None, size: 16,
    /// #     usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let buffers = wgpu_loss::ElementwiseBuffers::new(b.slice(..4), b.slice(4..8)).grad_output(b.slice(8..12));
    /// ```
    pub fn grad_output(mut self, grad_output: wgpu::BufferSlice<'a>) -> Self {
        self.grad_output = Some(grad_output);
        self
    }
}

/// The loss bits and flags of `spec` (see shaders/elementwise/elementwise.wgsl).
fn flags_of(spec: &Elementwise) -> u32 {
    let loss = match spec.loss {
        Pointwise::Mse => LOSS_MSE,
        Pointwise::L1 => LOSS_L1,
        Pointwise::SmoothL1 { .. } => LOSS_SMOOTH_L1,
        Pointwise::Huber { .. } => LOSS_HUBER,
        Pointwise::Bce => LOSS_BCE,
        Pointwise::BceWithLogits => LOSS_BCE_WITH_LOGITS,
        Pointwise::KlDiv { .. } => LOSS_KL_DIV,
    };
    let mut flags = loss << LOSS_SHIFT;
    flags |= match spec.combine {
        Combine::None => 0,
        Combine::Sum => FLAG_SUM,
        Combine::Mean => FLAG_MEAN,
        Combine::BatchMean => FLAG_MEAN | EW_BATCHMEAN,
        Combine::RootMean => FLAG_MEAN | EW_ROOT,
    };
    if spec.weight.is_some() {
        flags |= FLAG_WEIGHT;
    }
    if spec.pos_weight.is_some() {
        flags |= EW_POS_WEIGHT;
    }
    if spec.loss == (Pointwise::KlDiv { log_target: true }) {
        flags |= EW_LOG_TARGET;
    }
    flags
}

/// Records an elementwise loss on the caller's buffers: `spec` and `n` checked, then the
/// buffers, then recorded ([`record_elementwise`]).
pub(crate) fn encode_elementwise(
    gpu: &Gpu, encoder: &mut wgpu::CommandEncoder, ws: &mut Workspace, buffers: &ElementwiseBuffers<'_>, n: usize,
    spec: &Elementwise,
) -> Result<()> {
    spec.check_shape(n)?;
    record_elementwise(gpu, encoder, ws, buffers, n, spec)
}

/// Each buffer holds what `n` elements of `spec` need, and something is asked for.
fn check_buffers(buffers: &ElementwiseBuffers<'_>, n: usize, spec: &Elementwise) -> Result<()> {
    if buffers.loss.is_none() && buffers.grad.is_none() {
        return Err(Error::InvalidArgument {
            argument: "buffers",
            message: "neither `loss` nor `grad` was given: nothing to compute".into(),
        });
    }
    let elements = n as u64;
    if u32::try_from(elements).is_err() {
        return Err(Error::InvalidArgument {
            argument: "n",
            message: format!("{n} elements: at most {} per call", u32::MAX),
        });
    }
    let output_len = spec.output_len(n) as u64;
    Binding::check("input", &buffers.input, elements)?;
    Binding::check("target", &buffers.target, elements)?;
    for (argument, slice, len) in [
        ("loss", &buffers.loss, output_len),
        ("grad", &buffers.grad, elements),
        ("grad_output", &buffers.grad_output, output_len),
    ] {
        if let Some(s) = slice {
            Binding::check(argument, s, len)?;
        }
    }
    Ok(())
}

/// Chunks of whole tiles (one partial sum each) that start on a multiple of pos_weight's
/// length (it broadcasts over element index mod that length), `(first, len)`.
fn chunks(gpu: &Gpu, n: usize, spec: &Elementwise) -> Result<Vec<(u64, u64)>> {
    let unit = lcm(TILE, spec.pos_weight_len() as u64);
    let chunks = gpu.row_chunks(n as u64, 1, unit).map_err(|e| match e {
        Error::TooLarge { bytes, limit, .. } => {
            Error::TooLarge { argument: if spec.pos_weight.is_some() { "pos_weight" } else { "n" }, bytes, limit }
        }
        other => other,
    })?;
    let largest = chunks.iter().map(|c| c.1).max().unwrap_or(0);
    gpu.check_workgroups("n", largest.div_ceil(TILE))?;
    Ok(chunks)
}

/// The weights as they travel in the workspace's aux buffer, one aligned segment per
/// chunk: pos_weight (broadcast), padded to the storage offset alignment, then the chunk's
/// per-element weights. Returns the words, each chunk's `(start, words)` and pos_weight's
/// padded length (none without weights).
fn weight_segments(gpu: &Gpu, spec: &Elementwise, chunks: &[(u64, u64)]) -> (Vec<f32>, Vec<(u64, u64)>, u64) {
    let align_words = u64::from(gpu.device().limits().min_storage_buffer_offset_alignment) / 4;
    let pos_words = spec.pos_weight.map_or(0, |p| (p.len() as u64).next_multiple_of(align_words));
    let mut weights: Vec<f32> = Vec::new();
    let mut segments = Vec::with_capacity(chunks.len());
    if spec.weight.is_some() || spec.pos_weight.is_some() {
        for &(first, len) in chunks {
            let start = weights.len() as u64;
            weights.extend(spec.pos_weight.unwrap_or_default());
            weights.resize((start + pos_words) as usize, 0.0);
            if let Some(w) = spec.weight {
                weights.extend(&w[first as usize..(first + len) as usize]);
            }
            let words = weights.len() as u64 - start;
            weights.resize(weights.len().next_multiple_of(align_words as usize), 0.0);
            segments.push((start, words));
        }
    }
    (weights, segments, pos_words)
}

/// The batch's parameters: every chunk's, before its own offsets.
fn batch_params(
    spec: &Elementwise, n: usize, grad_output: bool, pos_words: u64,
    (reduced_grad_output, loss_out): (&Option<Binding>, &Option<Binding>),
) -> LossParams {
    let offset = |b: &Option<Binding>| b.as_ref().map_or(0, |b| b.element_offset);
    let classes = match spec.batch_rows {
        Some(rows) => n / rows,
        None => spec.pos_weight_len(),
    };
    let parameter = match spec.loss {
        Pointwise::SmoothL1 { beta } => beta,
        Pointwise::Huber { delta } => delta,
        _ => 0.0,
    };
    LossParams {
        rows: n as u32,
        classes: classes as u32,
        flags: flags_of(spec) | if grad_output { FLAG_GRAD_BUFFER } else { 0 },
        label_smoothing: parameter,
        grad_scale: 1.0,
        grad_output_off: offset(reduced_grad_output),
        loss_out_off: offset(loss_out),
        class_offset: pos_words as u32,
        batch_len: n as u32,
        ..Default::default()
    }
}

/// The kernels of an elementwise op: per chunk, the loss and/or the gradient, and the
/// reduction of the partial sums; RMSE's gradient needs the reduced loss, so it comes
/// after the reduction.
fn dispatches(chunks: &[(u64, u64)], wants: (bool, bool), reduced: bool, root: bool) -> Vec<Dispatch> {
    let (wants_loss, wants_grad) = wants;
    let per_element =
        |kernel| chunks.iter().enumerate().map(move |(k, &(_, len))| Dispatch::new(kernel, len.div_ceil(TILE), k + 1));
    let reduce = Dispatch::new(Kernel::ElementwiseReduce, 1, 0);
    let mut dispatches = Vec::with_capacity(2 * chunks.len() + 1);
    if wants_grad && !root {
        dispatches.extend(per_element(if wants_loss {
            Kernel::ElementwiseForwardBackward
        } else {
            Kernel::ElementwiseBackward
        }));
        if wants_loss && reduced {
            dispatches.push(reduce);
        }
    } else {
        dispatches.extend(per_element(Kernel::ElementwiseForward));
        if reduced {
            dispatches.push(reduce);
        }
        if wants_grad {
            dispatches.extend(per_element(Kernel::ElementwiseBackward));
        }
    }
    dispatches
}

/// The parameters (slot 0 the batch's, then one per chunk) and the bindings of each chunk:
/// its ranges of the caller's buffers, its segment of the weights, and — when the loss is
/// `reduced_outputs`' (loss, grad_output) — the reduced outputs instead of per-element ones.
#[allow(clippy::type_complexity)]
fn bind_chunks(
    gpu: &Gpu, ws: &Workspace, buffers: &ElementwiseBuffers<'_>, chunks: &[(u64, u64)], segments: &[(u64, u64)],
    batch: &LossParams, reduced_outputs: Option<(Option<Binding>, Option<Binding>)>,
) -> Result<(Vec<LossParams>, Vec<[(u32, Binding); 8]>)> {
    let reduced = reduced_outputs.is_some();
    let offset = |b: &Option<Binding>| b.as_ref().map_or(0, |b| b.element_offset);
    let (placeholder, aux_slice) = (Binding::placeholder(gpu), ws.aux_buffer().clone());
    let mut params = vec![*batch];
    let mut entries_of = Vec::with_capacity(chunks.len() + 1);
    for (k, &(first, len)) in chunks.iter().enumerate() {
        let range = |argument, slice: &wgpu::BufferSlice<'_>| Binding::range(gpu, argument, slice, first, len);
        let (input, target) = (range("input", &buffers.input)?, range("target", &buffers.target)?);
        let grad = buffers.grad.map(|s| range("grad", &s)).transpose()?;
        let (row_loss, loss_out, grad_output) = match &reduced_outputs {
            Some((loss, grad_output)) => (None, loss.clone(), grad_output.clone()),
            None => (
                buffers.loss.map(|s| range("loss", &s)).transpose()?,
                None,
                buffers.grad_output.map(|s| range("grad_output", &s)).transpose()?,
            ),
        };
        let weights = match segments.get(k) {
            Some(&(start, words)) => Binding::range(gpu, "weight", &aux_slice.slice(..), start, words)?,
            None => ws.aux(),
        };
        params.push(LossParams {
            rows: len as u32,
            input_off: input.element_offset,
            target_off: target.element_offset,
            grad_off: offset(&grad),
            row_loss_off: if reduced { (first / TILE) as u32 } else { offset(&row_loss) },
            grad_output_off: offset(&grad_output),
            loss_out_off: offset(&loss_out),
            row_base: first as u32,
            ..*batch
        });
        entries_of.push([
            (1, input),
            (2, target),
            (3, weights),
            (4, grad_output.unwrap_or_else(|| placeholder.clone())),
            (5, ws.batch()),
            (6, row_loss.unwrap_or_else(|| ws.row_losses())),
            (7, grad.unwrap_or_else(|| ws.spare_grad())),
            (8, loss_out.unwrap_or_else(|| ws.spare_loss())),
        ]);
    }
    Ok((params, entries_of))
}

/// Records `n` checked elements of `spec` on `buffers`: the buffers checked, the chunks
/// and weights planned, one parameter slot and bind group per chunk (slot 0: the
/// reduction over the whole batch's partials), then the dispatches.
fn record_elementwise(
    gpu: &Gpu, encoder: &mut wgpu::CommandEncoder, ws: &mut Workspace, buffers: &ElementwiseBuffers<'_>, n: usize,
    spec: &Elementwise,
) -> Result<()> {
    check_buffers(buffers, n, spec)?;
    let chunks = chunks(gpu, n, spec)?;
    let (weights, segments, pos_words) = weight_segments(gpu, spec, &chunks);
    let reduced = spec.combine != Combine::None;
    let root = spec.combine == Combine::RootMean;
    let (wants_loss, wants_grad) = (buffers.loss.is_some(), buffers.grad.is_some());
    let partials = if reduced && (wants_loss || root) { (n as u64).div_ceil(TILE) } else { 0 };
    let has_weights = !segments.is_empty();
    ws.prepare(gpu, partials, has_weights.then_some(weights.as_slice()), 0);
    let whole = |argument, slice: &Option<wgpu::BufferSlice<'_>>| {
        slice.filter(|_| reduced).map(|s| Binding::range(gpu, argument, &s, 0, 1)).transpose()
    };
    let (loss_binding, reduced_grad_output) =
        (whole("loss", &buffers.loss)?, whole("grad_output", &buffers.grad_output)?);
    let batch = batch_params(spec, n, buffers.grad_output.is_some(), pos_words, (&reduced_grad_output, &loss_binding));
    let reduced_outputs = reduced.then_some((loss_binding, reduced_grad_output));
    let (params, entries_of) = bind_chunks(gpu, ws, buffers, &chunks, &segments, &batch, reduced_outputs)?;
    ws.set_params(gpu, &params);
    let groups: Vec<wgpu::BindGroup> = std::iter::once(&entries_of[0])
        .chain(&entries_of)
        .enumerate()
        .map(|(slot, entries)| {
            let mut all = vec![(0, ws.params(slot))];
            all.extend(entries.iter().cloned());
            ws.bind_group(gpu, Layout::ClassIndex, &all)
        })
        .collect::<Result<_>>()?;
    gpu.record(encoder, &groups, &dispatches(&chunks, (wants_loss, wants_grad), reduced, root));
    Ok(())
}

/// The slice API: checks every argument on the host (as the CPU twins do), uploads, records
/// with [`record_elementwise`] and reads back what is wanted.
async fn elementwise_slice(
    gpu: &Gpu, spec: &Elementwise<'_>, (input, target, n): (&[f32], &[f32], usize), grad_output: Option<&[f32]>,
    wanted: Wanted,
) -> Result<(Vec<f32>, Vec<f32>)> {
    spec.check(input, target, n, grad_output)?;
    let mut uploads: Vec<&[u8]> = vec![bytemuck::cast_slice(input), bytemuck::cast_slice(target)];
    uploads.extend(grad_output.map(bytemuck::cast_slice));
    let mut output_lens = Vec::new();
    if wanted.loss {
        output_lens.push(spec.output_len(n));
    }
    if wanted.grad {
        output_lens.push(n);
    }
    let mut outputs = gpu
        .run_slice(&uploads, &output_lens, 0, |encoder, ws, inputs, outputs| {
            let mut buffers = ElementwiseBuffers::new(inputs[0], inputs[1]);
            buffers.grad_output = inputs.get(2).copied();
            let mut outputs = outputs.iter().copied();
            buffers.loss = if wanted.loss { outputs.next() } else { None };
            buffers.grad = if wanted.grad { outputs.next() } else { None };
            record_elementwise(gpu, encoder, ws, &buffers, n, spec)
        })
        .await?
        .into_iter();
    let loss = if wanted.loss { outputs.next().unwrap_or_default() } else { Vec::new() };
    let grad = if wanted.grad { outputs.next().unwrap_or_default() } else { Vec::new() };
    Ok((loss, grad))
}

/// Defines the seven methods of each loss from the loss's own arguments and the
/// `Elementwise` they describe; `example` is those arguments in a call.
macro_rules! gpu_elementwise_ops {
    ($(
        $(#[doc = $doc:expr])*
        fn $loss:ident, $loss_async:ident, $grad:ident, $grad_async:ident, $with_grad:ident,
            $with_grad_async:ident, $encode:ident($($arg:ident: $ty:ty),*) = $spec:expr;
        example($example:literal);
    )*) => {
        impl Gpu {$(
            #[doc = concat!("Records [`Gpu::", stringify!($loss), "`] into the caller's encoder: the loss, its")]
            #[doc = "gradient with respect to the input, or both (one fused kernel), as [`ElementwiseBuffers`]"]
            #[doc = "says. Nothing is submitted or read back. Arguments are checked before anything is"]
            #[doc = "recorded; the values live on the device and are not checked (an out-of-domain value"]
            #[doc = "gives NaN)."]
            #[doc = ""]
            #[doc = "```"]
            #[doc = "use wgpu::util::DeviceExt;"]
            #[doc = "let gpu = wgpu_loss::Gpu::new()?;"]
            #[doc = "let (d, usage) = (gpu.device(), wgpu::BufferUsages::STORAGE);"]
            #[doc = "let init = |data: &[f32]| d.create_buffer_init(&wgpu::util::BufferInitDescriptor {"]
            #[doc = "    label: None, contents: bytemuck::cast_slice(data), usage });"]
            #[doc = "let (x, y) = (init(&[0.25, 0.75, 0.5]), init(&[0.0, 1.0, 0.5]));"]
            #[doc = "let (loss, grad) = (init(&[0.0]), init(&[0.0; 3]));"]
            #[doc = "let buffers = wgpu_loss::ElementwiseBuffers::new(x.slice(..), y.slice(..))"]
            #[doc = "    .loss(loss.slice(..))"]
            #[doc = "    .grad(grad.slice(..));"]
            #[doc = "let mut ws = wgpu_loss::Workspace::new(&gpu);"]
            #[doc = "let mut encoder = d.create_command_encoder(&Default::default());"]
            #[doc = concat!("gpu.", stringify!($encode), "(&mut encoder, &mut ws, &buffers, 3", $example, ")?;")]
            #[doc = "gpu.queue().submit([encoder.finish()]);"]
            #[doc = "# Ok::<(), wgpu_loss::Error>(())"]
            #[doc = "```"]
            pub fn $encode(
                &self,
                encoder: &mut wgpu::CommandEncoder,
                workspace: &mut Workspace,
                buffers: &ElementwiseBuffers<'_>,
                n: usize
                $(, $arg: $ty)*
            ) -> Result<()> {
                encode_elementwise(self, encoder, workspace, buffers, n, &$spec)
            }
        )*}

        slice_api! {$(
            $(#[doc = $doc])*
            #[doc = ""]
            #[doc = "```"]
            #[doc = "let gpu = wgpu_loss::Gpu::new()?;"]
            #[doc = "let (input, target) = ([0.25, 0.75, 0.5], [0.0, 1.0, 0.5]);"]
            #[doc = concat!("let loss = gpu.", stringify!($loss), "(&input, &target, 3", $example, ")?;")]
            #[doc = concat!("let want = wgpu_loss::cpu::", stringify!($loss), "(&input, &target, 3", $example, ")?;")]
            #[doc = "assert!((loss[0] - want[0]).abs() <= 1e-6 * want[0].abs().max(1.0));"]
            #[doc = "# Ok::<(), wgpu_loss::Error>(())"]
            #[doc = "```"]
            pub fn $loss;

            #[doc = concat!("The async form of [`Gpu::", stringify!($loss), "`].")]
            #[doc = ""]
            #[doc = "```"]
            #[doc = "let gpu = wgpu_loss::Gpu::new()?;"]
            #[doc = "let (input, target) = ([0.25, 0.75, 0.5], [0.0, 1.0, 0.5]);"]
            #[doc = concat!("let loss = pollster::block_on(gpu.", stringify!($loss_async), "(&input, &target, 3", $example, "))?;")]
            #[doc = "assert_eq!(loss.len(), 1);"]
            #[doc = "# Ok::<(), wgpu_loss::Error>(())"]
            #[doc = "```"]
            pub async fn $loss_async(&self, input: &[f32], target: &[f32], n: usize $(, $arg: $ty)*) -> Result<Vec<f32>> {
                let (loss, _) = elementwise_slice(self, &$spec, (input, target, n), None, Wanted::LOSS).await?;
                Ok(loss)
            }

            #[doc = concat!("The gradient of [`Gpu::", stringify!($loss), "`] with respect to `input` (`n` values), given")]
            #[doc = "`grad_output` (`n` values for reduction `none`, else one; a mean's divisor is applied"]
            #[doc = concat!("here), as [`cpu::", stringify!($grad), "`](crate::cpu::", stringify!($grad), "). Blocking; native only.")]
            #[doc = ""]
            #[doc = "```"]
            #[doc = "let gpu = wgpu_loss::Gpu::new()?;"]
            #[doc = "let (input, target) = ([0.25, 0.75, 0.5], [0.0, 1.0, 0.5]);"]
            #[doc = concat!("let grad = gpu.", stringify!($grad), "(&input, &target, 3", $example, ", &[1.0])?;")]
            #[doc = concat!("let want = wgpu_loss::cpu::", stringify!($grad), "(&input, &target, 3", $example, ", &[1.0])?;")]
            #[doc = "assert!(grad.iter().zip(&want).all(|(g, w)| (g - w).abs() <= 1e-6 * w.abs().max(1.0)));"]
            #[doc = "# Ok::<(), wgpu_loss::Error>(())"]
            #[doc = "```"]
            pub fn $grad;

            #[doc = concat!("The async form of [`Gpu::", stringify!($grad), "`].")]
            #[doc = ""]
            #[doc = "```"]
            #[doc = "let gpu = wgpu_loss::Gpu::new()?;"]
            #[doc = "let (input, target) = ([0.25, 0.75, 0.5], [0.0, 1.0, 0.5]);"]
            #[doc = concat!("let grad = pollster::block_on(gpu.", stringify!($grad_async), "(&input, &target, 3", $example, ", &[1.0]))?;")]
            #[doc = "assert_eq!(grad.len(), 3);"]
            #[doc = "# Ok::<(), wgpu_loss::Error>(())"]
            #[doc = "```"]
            pub async fn $grad_async(
                &self,
                input: &[f32],
                target: &[f32],
                n: usize
                $(, $arg: $ty)*,
                grad_output: &[f32],
            ) -> Result<Vec<f32>> {
                let (_, grad) = elementwise_slice(self, &$spec, (input, target, n), Some(grad_output), Wanted::GRAD).await?;
                Ok(grad)
            }

            #[doc = concat!("[`Gpu::", stringify!($loss), "`] and [`Gpu::", stringify!($grad), "`] together, from one kernel that")]
            #[doc = "reads the data once (RMSE: a second pass after the reduction). Blocking; native only."]
            #[doc = ""]
            #[doc = "```"]
            #[doc = "let gpu = wgpu_loss::Gpu::new()?;"]
            #[doc = "let (input, target) = ([0.25, 0.75, 0.5], [0.0, 1.0, 0.5]);"]
            #[doc = concat!("let (loss, grad) = gpu.", stringify!($with_grad), "(&input, &target, 3", $example, ", &[1.0])?;")]
            #[doc = "assert_eq!((loss.len(), grad.len()), (1, 3));"]
            #[doc = "# Ok::<(), wgpu_loss::Error>(())"]
            #[doc = "```"]
            pub fn $with_grad;

            #[doc = concat!("The async form of [`Gpu::", stringify!($with_grad), "`].")]
            #[doc = ""]
            #[doc = "```"]
            #[doc = "let gpu = wgpu_loss::Gpu::new()?;"]
            #[doc = "let (input, target) = ([0.25, 0.75, 0.5], [0.0, 1.0, 0.5]);"]
            #[doc = concat!("let (loss, grad) = pollster::block_on(gpu.", stringify!($with_grad_async), "(&input, &target, 3", $example, ", &[1.0]))?;")]
            #[doc = "assert_eq!((loss.len(), grad.len()), (1, 3));"]
            #[doc = "# Ok::<(), wgpu_loss::Error>(())"]
            #[doc = "```"]
            pub async fn $with_grad_async(
                &self,
                input: &[f32],
                target: &[f32],
                n: usize
                $(, $arg: $ty)*,
                grad_output: &[f32],
            ) -> Result<(Vec<f32>, Vec<f32>)> {
                elementwise_slice(self, &$spec, (input, target, n), Some(grad_output), Wanted::BOTH).await
            }
        )*}
    };
}

gpu_elementwise_ops! {
    /// Mean squared error (`torch.nn.functional.mse_loss`): `(x - y)²` per element, reduced
    /// as `reduction` says (`Mean` divides by `n`): `n` values for `None`, else one. The
    /// formulas are [`cpu::mse_loss`](crate::cpu::mse_loss)'s. Blocking; native only.
    fn mse_loss, mse_loss_async, mse_loss_grad, mse_loss_grad_async, mse_loss_with_grad, mse_loss_with_grad_async,
        encode_mse_loss(reduction: Reduction) = Elementwise::mse(reduction);
    example(", wgpu_loss::Reduction::Mean");

    /// Mean absolute error (`torch.nn.functional.l1_loss`): `|x - y|` per element, reduced as
    /// `reduction` says; the gradient is 0 where `x == y`. The formulas are
    /// [`cpu::l1_loss`](crate::cpu::l1_loss)'s. Blocking; native only.
    fn l1_loss, l1_loss_async, l1_loss_grad, l1_loss_grad_async, l1_loss_with_grad, l1_loss_with_grad_async,
        encode_l1_loss(reduction: Reduction) = Elementwise::l1(reduction);
    example(", wgpu_loss::Reduction::Mean");

    /// Root mean squared error, `sqrt(mse_loss(x, y))`: one value (RMSE has no reduction
    /// argument; it is a mean). Its gradient is NaN when the loss is 0, as PyTorch's autograd
    /// through `torch.sqrt` gives. The formulas are [`cpu::rmse_loss`](crate::cpu::rmse_loss)'s.
    /// Blocking; native only.
    fn rmse_loss, rmse_loss_async, rmse_loss_grad, rmse_loss_grad_async, rmse_loss_with_grad,
        rmse_loss_with_grad_async, encode_rmse_loss() = Elementwise::rmse();
    example("");

    /// Smooth L1 (`torch.nn.functional.smooth_l1_loss`) with `beta` (finite, at least 0;
    /// `beta == 0` is L1), reduced as `reduction` says. The formulas are
    /// [`cpu::smooth_l1_loss`](crate::cpu::smooth_l1_loss)'s. Blocking; native only.
    fn smooth_l1_loss, smooth_l1_loss_async, smooth_l1_loss_grad, smooth_l1_loss_grad_async,
        smooth_l1_loss_with_grad, smooth_l1_loss_with_grad_async,
        encode_smooth_l1_loss(reduction: Reduction, beta: f32) = Elementwise::smooth_l1(reduction, beta);
    example(", wgpu_loss::Reduction::Mean, 1.0");

    /// Huber loss (`torch.nn.functional.huber_loss`) with `delta` (finite, greater than 0),
    /// reduced as `reduction` says. The formulas are
    /// [`cpu::huber_loss`](crate::cpu::huber_loss)'s. Blocking; native only.
    fn huber_loss, huber_loss_async, huber_loss_grad, huber_loss_grad_async, huber_loss_with_grad,
        huber_loss_with_grad_async, encode_huber_loss(reduction: Reduction, delta: f32) =
        Elementwise::huber(reduction, delta);
    example(", wgpu_loss::Reduction::Mean, 1.0");

    /// Binary cross-entropy on probabilities (`torch.nn.functional.binary_cross_entropy`),
    /// each log clamped at -100 as PyTorch does, with `opts.weight` (per element) and
    /// `opts.reduction`. `input` and `target` must lie in `[0, 1]`; `opts.pos_weight` is
    /// refused. The formulas are
    /// [`cpu::binary_cross_entropy`](crate::cpu::binary_cross_entropy)'s. Blocking; native only.
    fn binary_cross_entropy, binary_cross_entropy_async, binary_cross_entropy_grad,
        binary_cross_entropy_grad_async, binary_cross_entropy_with_grad, binary_cross_entropy_with_grad_async,
        encode_binary_cross_entropy(opts: &BceOptions) = Elementwise::bce(opts);
    example(", &wgpu_loss::BceOptions::default()");

    /// Binary cross-entropy on logits
    /// (`torch.nn.functional.binary_cross_entropy_with_logits`), computed stably through
    /// softplus (logits of ±100 give exact losses), with `opts.weight` (per element),
    /// `opts.pos_weight` (per entry of the last dimension) and `opts.reduction`. The formulas
    /// are [`cpu::binary_cross_entropy_with_logits`](crate::cpu::binary_cross_entropy_with_logits)'s.
    /// Blocking; native only.
    fn binary_cross_entropy_with_logits, binary_cross_entropy_with_logits_async,
        binary_cross_entropy_with_logits_grad, binary_cross_entropy_with_logits_grad_async,
        binary_cross_entropy_with_logits_with_grad, binary_cross_entropy_with_logits_with_grad_async,
        encode_binary_cross_entropy_with_logits(opts: &BceOptions) = Elementwise::bce_with_logits(opts);
    example(", &wgpu_loss::BceOptions::default()");

    /// KL divergence (`torch.nn.functional.kl_div`) of the log-probabilities `input` from
    /// `target`, a batch of `rows` rows (`rows` must divide `n`), with `opts.reduction`
    /// (`BatchMean` divides by `rows`, `Mean` by `n`) and `opts.log_target`. The formulas are
    /// [`cpu::kl_div`](crate::cpu::kl_div)'s. Blocking; native only.
    fn kl_div, kl_div_async, kl_div_grad, kl_div_grad_async, kl_div_with_grad, kl_div_with_grad_async,
        encode_kl_div(rows: usize, opts: &KlDivOptions) = Elementwise::kl_div(rows, opts);
    example(", 1, &wgpu_loss::KlDivOptions::default()");
}
