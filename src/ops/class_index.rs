//! What the NLL and cross-entropy ops share: their buffers, parameters and the
//! dispatch sequence (mean's divisor → per-row kernel(s) → batch reduction).

use crate::error::{Error, Result};
use crate::gpu::{
    BATCH_STATE_BYTES, Binding, Dispatch, Gpu, Kernel, Layout, LossParams, NLL_WG, SOLO_CLASSES,
    SOLO_ROWS_PER_WORKGROUP, Workspace, status_to_result,
};
use crate::gpu::{
    FLAG_ARGMAX, FLAG_EMPTY_ZERO, FLAG_GRAD_BUFFER, FLAG_IN_PLACE, FLAG_LSE, FLAG_MEAN, FLAG_PROB_TARGETS, FLAG_SUM,
    FLAG_WEIGHT,
};
use crate::options::{CrossEntropyOptions, EmptyPolicy, Precision, Reduction};
use crate::partials::ClassShard;

/// The caller's buffers for recording an NLL or cross-entropy op with the encode API.
///
/// `targets` holds one `i32` class index per row. Ask for the loss, the gradient, or both:
/// `loss` receives `rows` values for [`Reduction::None`] and one value otherwise; `grad`
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

    fn wants_extras(&self) -> bool {
        self.lse.is_some() || self.argmax.is_some() || self.accuracy.is_some()
    }
}

/// Which class-index op is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClassIndexOp {
    Nll,
    CrossEntropy,
    /// Cross-entropy against `rows × classes` probability targets.
    CrossEntropyProbs,
    /// The log-sum-exp partials of a shard of each row's classes, into the batch state.
    ShardPartials(ClassShard),
    /// A shard's gradient from merged partials already written to the batch state.
    ShardGrad(ClassShard),
}

impl ClassIndexOp {
    fn is_cross_entropy(self) -> bool {
        matches!(self, ClassIndexOp::CrossEntropy | ClassIndexOp::CrossEntropyProbs)
    }
}

fn invalid(argument: &'static str, message: &str) -> Error {
    Error::InvalidArgument {
        argument,
        message: message.into(),
    }
}

/// Checks a caller's buffer for an extra output, copied into with `copy_buffer_to_buffer`.
fn check_copy_target(argument: &'static str, slice: &wgpu::BufferSlice<'_>, elements: u64) -> Result<()> {
    Binding::check(argument, slice, elements)?;
    let usage = slice.buffer().usage();
    if !usage.contains(wgpu::BufferUsages::COPY_DST) {
        return Err(Error::InvalidArgument {
            argument,
            message: format!("the buffer needs COPY_DST usage (the result is copied into it), it has {usage:?}"),
        });
    }
    Ok(())
}

/// Validates and records an NLL or cross-entropy op (see [`LossBuffers`]). `rows` is N;
/// the kernels see `rows × opts.spatial` rows.
#[allow(clippy::too_many_arguments)]
pub(crate) fn encode_class_index(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    ws: &mut Workspace,
    op: ClassIndexOp,
    buffers: &LossBuffers<'_>,
    rows: usize,
    classes: usize,
    opts: &CrossEntropyOptions,
) -> Result<()> {
    crate::options::check_spatial(opts.spatial)?;
    crate::options::check_matrix(
        "input",
        opts.loss_rows(rows).saturating_mul(classes),
        opts.loss_rows(rows),
        classes,
    )?;
    let (total_classes, class_offset) = match op {
        ClassIndexOp::ShardPartials(s) | ClassIndexOp::ShardGrad(s) => (s.total_classes, s.offset),
        _ => (classes, 0),
    };
    opts.check(total_classes)?;
    let is_shard = matches!(op, ClassIndexOp::ShardPartials(_) | ClassIndexOp::ShardGrad(_));
    if !op.is_cross_entropy() {
        opts.check_plain(if is_shard { "a class shard" } else { "nll_loss" })?;
        if opts.spatial != 1 && is_shard {
            return Err(invalid("spatial", "class shards take rows × classes inputs only"));
        }
        if buffers.wants_extras() {
            return Err(invalid(
                "buffers",
                "lse, argmax and accuracy are outputs of cross-entropy only",
            ));
        }
    }
    let precision = buffers.precision;
    if precision != Precision::F32 {
        if !op.is_cross_entropy() || buffers.in_place {
            return Err(invalid(
                "precision",
                "half-precision logits are for cross-entropy, and not with grad_in_place",
            ));
        }
        if precision == Precision::F16 && !gpu.device().features().contains(wgpu::Features::SHADER_F16) {
            return Err(invalid("precision", "F16 needs the adapter's SHADER_F16 feature"));
        }
    }
    if op == ClassIndexOp::CrossEntropyProbs && buffers.accuracy.is_some() {
        return Err(invalid("accuracy", "needs class-index targets"));
    }
    let spatial = opts.spatial as u64;
    let loss_rows = opts.loss_rows(rows);
    let (rows_u, elements) = (loss_rows as u64, loss_rows as u64 * classes as u64);
    let wants_loss = buffers.loss.is_some();
    let mut buffers = *buffers;
    if buffers.in_place {
        if !op.is_cross_entropy() || buffers.grad.is_some() {
            return Err(invalid(
                "grad_in_place",
                "only for cross-entropy, and not together with a separate `grad` buffer",
            ));
        }
        buffers.grad = buffers.input;
    }
    let in_place = buffers.in_place;
    let wants_grad = buffers.grad.is_some();
    if !wants_loss && !wants_grad && !buffers.wants_extras() && !matches!(op, ClassIndexOp::ShardPartials(_)) {
        return Err(invalid(
            "buffers",
            "neither `loss` nor `grad` was given: nothing to compute",
        ));
    }
    let reads_input = op != ClassIndexOp::Nll || wants_loss;
    let input = match (buffers.input, reads_input) {
        (Some(s), true) => Some(s),
        (None, true) => {
            return Err(invalid(
                "input",
                "required: the logits (cross-entropy) or log-probabilities (NLL loss)",
            ));
        }
        (_, false) => None,
    };
    if let Some(s) = &input {
        Binding::check_sized("input", s, elements, precision.bytes())?;
    }
    if let Some(s) = &buffers.grad {
        Binding::check_sized("grad", s, elements, precision.grad_bytes())?;
    }
    let probs = op == ClassIndexOp::CrossEntropyProbs;
    let targets = if probs {
        Binding::check("targets", &buffers.targets, elements)?;
        None
    } else {
        Some(Binding::of(gpu, "targets", &buffers.targets, rows_u)?)
    };
    for (argument, slice) in [("lse", &buffers.lse), ("argmax", &buffers.argmax)] {
        if let Some(slice) = slice {
            check_copy_target(argument, slice, rows_u)?;
        }
    }
    if let Some(slice) = &buffers.accuracy {
        check_copy_target("accuracy", slice, 1)?;
    }
    let loss_len = opts.grad_output_len(rows) as u64;
    let loss = buffers
        .loss
        .map(|s| Binding::of(gpu, "loss", &s, loss_len))
        .transpose()?;
    let grad_output = buffers
        .grad_output
        .map(|s| Binding::of(gpu, "grad_output", &s, loss_len))
        .transpose()?;
    // Chunks hold whole samples (spatial loss rows each), counted in loss rows.
    let chunks = gpu.row_chunks(rows_u, classes as u64, spatial)?;
    let largest = chunks.iter().map(|c| c.1).max().unwrap_or(0);
    gpu.check_workgroups("rows", largest)?;
    gpu.check_workgroups("rows × classes", (largest * classes as u64).div_ceil(256))?;

    let per_row_loss = opts.reduction == Reduction::None && wants_loss;
    let (seg_len, segments) = match op {
        _ if spatial > 1 => (classes as u32, 1),
        ClassIndexOp::CrossEntropy | ClassIndexOp::CrossEntropyProbs => gpu.row_segments(classes),
        ClassIndexOp::Nll | ClassIndexOp::ShardPartials(_) | ClassIndexOp::ShardGrad(_) => (classes as u32, 1),
    };
    let split = u64::from(segments);
    // The extra outputs in the workspace's aux buffer, after the weights.
    let wants_argmax = buffers.argmax.is_some() || buffers.accuracy.is_some();
    let lse_words = if buffers.lse.is_some() { rows_u } else { 0 };
    let argmax_words = if wants_argmax { rows_u } else { 0 };
    let arg_partial_words = if wants_argmax && split > 1 {
        2 * rows_u * split
    } else {
        0
    };
    let extra_words = lse_words + argmax_words + arg_partial_words + u64::from(buffers.accuracy.is_some());
    let aux_base = u64::from(ws.prepare(
        gpu,
        if per_row_loss { 0 } else { rows_u },
        opts.weight.as_deref(),
        extra_words,
    ));
    let (lse_off, argmax_off) = (aux_base, aux_base + lse_words);
    let arg_partial_off = argmax_off + argmax_words;
    let accuracy_off = arg_partial_off + arg_partial_words;
    if split > 1 || is_shard {
        ws.reserve_partials(gpu, rows_u * split);
        gpu.check_workgroups("rows × segments", largest * split)?;
    }
    let (row_loss, loss_out) = if per_row_loss {
        (loss, None)
    } else {
        (Some(ws.row_losses()), loss)
    };
    let mut flags = 0;
    for (on, flag) in [
        (opts.weight.is_some(), FLAG_WEIGHT),
        (opts.reduction == Reduction::Sum, FLAG_SUM),
        (opts.reduction == Reduction::Mean, FLAG_MEAN),
        (grad_output.is_some(), FLAG_GRAD_BUFFER),
        (opts.empty == EmptyPolicy::Zero, FLAG_EMPTY_ZERO),
        (in_place, FLAG_IN_PLACE),
        (probs, FLAG_PROB_TARGETS),
        (buffers.lse.is_some(), FLAG_LSE),
        (wants_argmax, FLAG_ARGMAX),
    ] {
        if on {
            flags |= flag;
        }
    }
    let offset = |b: &Option<Binding>| b.as_ref().map_or(0, |b| b.element_offset);
    let batch = LossParams {
        rows: loss_rows as u32,
        classes: classes as u32,
        ignore_index: opts.ignore_index,
        flags,
        label_smoothing: match op {
            ClassIndexOp::Nll => 0.0,
            _ => opts.label_smoothing,
        },
        grad_scale: 1.0,
        target_off: offset(&targets),
        grad_output_off: offset(&grad_output),
        row_loss_off: offset(&row_loss),
        loss_out_off: offset(&loss_out),
        seg_len,
        segments,
        total_classes: total_classes as u32,
        class_offset: class_offset as u32,
        spatial: opts.spatial as u32,
        softcap: opts.logit_softcap,
        z_loss_scale: opts.z_loss_scale,
        lse_off: lse_off as u32,
        argmax_off: argmax_off as u32,
        arg_partial_off: arg_partial_off as u32,
        accuracy_off: accuracy_off as u32,
        ..Default::default()
    };
    // Parameter slot 0 and bind group 0 serve the batch-wide kernels; slot and group k + 1
    // serve row chunk k, with the matrices bound from the chunk's first row and the per-row
    // offsets moved on by it.
    let mut params = vec![batch];
    let mut matrices = Vec::with_capacity(chunks.len());
    for &(first, n) in &chunks {
        let sized = |argument, slice: &wgpu::BufferSlice<'_>, bytes| {
            Binding::range_sized(gpu, argument, slice, first * classes as u64, n * classes as u64, bytes)
        };
        let matrix = |argument, slice: &wgpu::BufferSlice<'_>| sized(argument, slice, 4);
        let input = input
            .filter(|_| !in_place)
            .map(|s| sized("input", &s, precision.bytes()))
            .transpose()?;
        let grad = buffers
            .grad
            .map(|s| sized("grad", &s, precision.grad_bytes()))
            .transpose()?;
        let soft_targets = if probs {
            Some(matrix("targets", &buffers.targets)?)
        } else {
            None
        };
        let per_row = first as u32;
        let per_row_grad_output = if opts.reduction == Reduction::None { per_row } else { 0 };
        params.push(LossParams {
            rows: n as u32,
            row_base: per_row,
            input_off: if in_place { offset(&grad) } else { offset(&input) },
            grad_off: offset(&grad),
            target_off: if probs {
                offset(&soft_targets)
            } else {
                batch.target_off + per_row
            },
            row_loss_off: batch.row_loss_off + per_row,
            grad_output_off: batch.grad_output_off + per_row_grad_output,
            lse_off: batch.lse_off + per_row,
            argmax_off: batch.argmax_off + per_row,
            ..batch
        });
        matrices.push((input, grad, soft_targets.or_else(|| targets.clone())));
    }
    ws.set_params(gpu, &params);
    let placeholder = Binding::placeholder(gpu);
    let groups: Vec<wgpu::BindGroup> = std::iter::once(&matrices[0])
        .chain(&matrices)
        .enumerate()
        .map(|(slot, (input, grad, targets))| {
            let entries = [
                (0, ws.params(slot)),
                (1, input.clone().unwrap_or_else(|| placeholder.clone())),
                (2, targets.clone().unwrap_or_else(|| placeholder.clone())),
                (3, ws.aux()),
                (4, grad_output.clone().unwrap_or_else(|| placeholder.clone())),
                (5, ws.batch()),
                (6, row_loss.clone().unwrap_or_else(|| ws.row_losses())),
                (7, grad.clone().unwrap_or_else(|| ws.spare_grad())),
                (8, loss_out.clone().unwrap_or_else(|| ws.spare_loss())),
            ];
            ws.bind_group(gpu, Layout::ClassIndex, &entries)
        })
        .collect::<Result<_>>()?;

    let batch_dispatch = |kernel| Dispatch::new(kernel, 1, 0);
    let mut dispatches = Vec::with_capacity(4 + 2 * chunks.len());
    if opts.reduction == Reduction::Mean {
        dispatches.push(batch_dispatch(Kernel::TargetWeightTotal));
    }
    // Spatial batches and short rows: one invocation per row.
    let solo = op.is_cross_entropy() && (spatial > 1 || classes <= SOLO_CLASSES);
    // Plain class-index rows (no smoothing, cap or argmax) of f32 logits whose quads are
    // 16-byte aligned are read as vec4, and held on-chip where they fit.
    let aligned = |b: &Option<Binding>| b.as_ref().is_none_or(|b| b.element_offset % 4 == 0);
    let plain =
        op == ClassIndexOp::CrossEntropy && opts.label_smoothing == 0.0 && opts.logit_softcap == 0.0 && !wants_argmax;
    let vec4 = plain
        && spatial == 1
        && classes.is_multiple_of(4)
        && seg_len.is_multiple_of(4)
        && precision == Precision::F32
        && matrices.iter().all(|(input, grad, _)| aligned(input) && aligned(grad));
    let resident = (vec4 && split == 1).then(|| gpu.resident_slots(classes)).flatten();
    // Short plain rows (and spatial batches of as few classes) in any precision: one
    // invocation holds each row.
    let short = plain.then(|| gpu.short_slots(classes)).flatten();
    // A family's forward, forward+backward and in-place forward+backward kernel (the
    // general kernels read FLAG_IN_PLACE instead and list their forward+backward twice).
    let pick = |[forward, backward, backward_in_place]: [(Kernel, u32); 3]| match (wants_grad, in_place) {
        (false, _) => forward,
        (true, false) => backward,
        (true, true) => backward_in_place,
    };
    for (k, &(_, n)) in chunks.iter().enumerate() {
        let per_chunk = |kernel: (Kernel, u32), workgroups| Dispatch::unrolled(kernel, workgroups, k + 1);
        match op {
            ClassIndexOp::ShardPartials(_) => dispatches.push(per_chunk((Kernel::CrossEntropyPartials, 0), n)),
            ClassIndexOp::ShardGrad(_) => dispatches.push(per_chunk((Kernel::CrossEntropyMergedForwardBackward, 0), n)),
            ClassIndexOp::CrossEntropy | ClassIndexOp::CrossEntropyProbs if split > 1 => {
                // Plain rows not in place read their segments as vec4.
                let vec4 = vec4 && !in_place;
                let partials = if vec4 {
                    Kernel::CrossEntropyPartialsVec4
                } else {
                    Kernel::CrossEntropyPartials
                };
                dispatches.push(per_chunk((partials, 0), n * split));
                dispatches.push(match (wants_grad, vec4) {
                    (true, true) => per_chunk((Kernel::CrossEntropyMergedForwardBackwardVec4, 0), n * split),
                    (true, false) => per_chunk((Kernel::CrossEntropyMergedForwardBackward, 0), n * split),
                    (false, _) => per_chunk((Kernel::CrossEntropyMergedForward, 0), n),
                });
            }
            ClassIndexOp::CrossEntropy | ClassIndexOp::CrossEntropyProbs if solo => dispatches.push(per_chunk(
                pick(match short {
                    Some(slots) => [
                        Kernel::CrossEntropyShortForward,
                        Kernel::CrossEntropyShortForwardBackward,
                        Kernel::CrossEntropyShortForwardBackwardInPlace,
                    ]
                    .map(|k| (k, slots)),
                    None => [
                        Kernel::CrossEntropyForwardSolo,
                        Kernel::CrossEntropyForwardBackwardSolo,
                        Kernel::CrossEntropyForwardBackwardSolo,
                    ]
                    .map(|k| (k, 0)),
                }),
                n.div_ceil(SOLO_ROWS_PER_WORKGROUP),
            )),
            ClassIndexOp::CrossEntropy | ClassIndexOp::CrossEntropyProbs => dispatches.push(per_chunk(
                pick(match (resident, vec4) {
                    (Some(slots), _) => [
                        Kernel::CrossEntropyResidentForward,
                        Kernel::CrossEntropyResidentForwardBackward,
                        Kernel::CrossEntropyResidentForwardBackwardInPlace,
                    ]
                    .map(|k| (k, slots)),
                    (None, true) => [
                        Kernel::CrossEntropyForwardVec4,
                        Kernel::CrossEntropyForwardBackwardVec4,
                        Kernel::CrossEntropyForwardBackwardVec4InPlace,
                    ]
                    .map(|k| (k, 0)),
                    (None, false) => [
                        Kernel::CrossEntropyForward,
                        Kernel::CrossEntropyForwardBackward,
                        Kernel::CrossEntropyForwardBackward,
                    ]
                    .map(|k| (k, 0)),
                }),
                n,
            )),
            ClassIndexOp::Nll => {
                let per_workgroup = u64::from(NLL_WG);
                if wants_loss {
                    dispatches.push(per_chunk((Kernel::NllForward, 0), n.div_ceil(per_workgroup)));
                }
                if wants_grad {
                    let elements = n * classes as u64;
                    dispatches.push(per_chunk((Kernel::NllBackward, 0), elements.div_ceil(per_workgroup)));
                }
            }
        }
    }
    if wants_loss && opts.reduction != Reduction::None {
        dispatches.push(batch_dispatch(Kernel::ReduceLosses));
    }
    if buffers.accuracy.is_some() {
        dispatches.push(batch_dispatch(Kernel::ReduceAccuracy));
    }
    if !probs {
        dispatches.push(batch_dispatch(Kernel::RecordBadTargetValue));
    }
    ws.clear_batch(encoder);
    gpu.record_for(encoder, &groups, &dispatches, precision);
    // The extra outputs move from the workspace to the caller's buffers.
    for (slice, at, words) in [
        (&buffers.lse, lse_off, rows_u),
        (&buffers.argmax, argmax_off, rows_u),
        (&buffers.accuracy, accuracy_off, 1),
    ] {
        if let Some(slice) = slice {
            encoder.copy_buffer_to_buffer(ws.aux_buffer(), at * 4, slice.buffer(), slice.offset(), words * 4);
        }
    }
    Ok(())
}

/// What a slice-API call of a class-index op wants back.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Wanted {
    pub loss: bool,
    pub grad: bool,
    pub lse: bool,
    pub argmax: bool,
    pub accuracy: bool,
}

/// What a slice-API call of a class-index op read back (empty where not wanted).
#[derive(Debug, Default)]
pub(crate) struct Outputs {
    pub loss: Vec<f32>,
    pub grad: Vec<f32>,
    pub lse: Vec<f32>,
    pub argmax: Vec<f32>,
    pub accuracy: Vec<f32>,
}

/// The input of a slice-API call: its name, its bytes (`None` for NLL's gradient, which
/// reads none), its element count and type.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SliceInput<'d> {
    pub name: &'static str,
    pub bytes: Option<&'d [u8]>,
    pub len: usize,
    pub precision: Precision,
}

impl<'d> SliceInput<'d> {
    /// f32 data.
    pub(crate) fn f32(name: &'static str, data: &'d [f32]) -> Self {
        Self {
            name,
            bytes: Some(bytemuck::cast_slice(data)),
            len: data.len(),
            precision: Precision::F32,
        }
    }

    /// No data, only the length its shape needs (NLL's gradient reads no input).
    pub(crate) fn absent(name: &'static str, len: usize) -> Self {
        Self {
            name,
            bytes: None,
            len,
            precision: Precision::F32,
        }
    }
}

/// The targets of a slice-API call: class indices, or a probability matrix.
#[derive(Debug, Clone, Copy)]
pub(crate) enum SliceTargets<'t> {
    Classes(&'t [i32]),
    Probs(&'t [f32]),
}

/// The slice API of the class-index ops: checks the arguments on the host, uploads,
/// records with [`encode_class_index`] and reads back what is wanted together with the
/// batch status, in which the device reports the first out-of-range target.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn class_index_slice(
    gpu: &Gpu,
    op: ClassIndexOp,
    input: SliceInput<'_>,
    targets: SliceTargets<'_>,
    rows: usize,
    classes: usize,
    opts: &CrossEntropyOptions,
    grad_output: Option<&[f32]>,
    wanted: Wanted,
) -> Result<Outputs> {
    let loss_rows = opts.loss_rows(rows);
    let shape = (input.name, input.len);
    let target_bytes: &[u8] = match targets {
        SliceTargets::Classes(t) => bytemuck::cast_slice(t),
        SliceTargets::Probs(p) => bytemuck::cast_slice(p),
    };
    let per_row = match targets {
        SliceTargets::Classes(_) => 1,
        SliceTargets::Probs(_) => classes,
    };
    crate::options::check_loss_shapes(
        shape,
        (target_bytes.len() / 4, per_row),
        rows,
        classes,
        opts,
        grad_output,
    )?;
    // Half-precision data is uploaded in whole 4-byte words.
    let padded: Option<Vec<u8>> = input.bytes.filter(|b| b.len() % 4 != 0).map(|b| {
        let mut v = b.to_vec();
        v.resize(b.len().next_multiple_of(4), 0);
        v
    });
    let mut uploads: Vec<&[u8]> = vec![target_bytes];
    uploads.extend(padded.as_deref().or(input.bytes));
    uploads.extend(grad_output.map(bytemuck::cast_slice));
    let lens = [
        (wanted.loss, opts.grad_output_len(rows)),
        (
            wanted.grad,
            (loss_rows * classes * input.precision.grad_bytes() as usize).div_ceil(4),
        ),
        (wanted.lse, loss_rows),
        (wanted.argmax, loss_rows),
        (wanted.accuracy, 1),
    ];
    let output_lens: Vec<usize> = lens.iter().filter(|(on, _)| *on).map(|&(_, n)| n).collect();
    let state_bytes = if matches!(targets, SliceTargets::Classes(_)) {
        BATCH_STATE_BYTES
    } else {
        0
    };
    let outputs = gpu
        .run_slice(&uploads, &output_lens, state_bytes, |encoder, ws, inputs, outputs| {
            let mut inputs = inputs.iter().copied();
            let mut outputs = outputs.iter().copied();
            let mut buffers =
                LossBuffers::new(inputs.next().expect("targets are always uploaded")).precision(input.precision);
            buffers.input = input.bytes.and_then(|_| inputs.next());
            buffers.grad_output = grad_output.and_then(|_| inputs.next());
            let mut next = |on: bool| if on { outputs.next() } else { None };
            buffers.loss = next(wanted.loss);
            buffers.grad = next(wanted.grad);
            buffers.lse = next(wanted.lse);
            buffers.argmax = next(wanted.argmax);
            buffers.accuracy = next(wanted.accuracy);
            encode_class_index(gpu, encoder, ws, op, &buffers, rows, classes, opts)
        })
        .await?;
    let mut outputs = outputs.into_iter();
    let mut take = |on: bool| {
        if on {
            outputs.next().unwrap_or_default()
        } else {
            Vec::new()
        }
    };
    let result = Outputs {
        loss: take(wanted.loss),
        grad: take(wanted.grad),
        lse: take(wanted.lse),
        argmax: take(wanted.argmax),
        accuracy: take(wanted.accuracy),
    };
    if state_bytes > 0 {
        status_to_result(&outputs.next().unwrap_or_default(), classes)?;
    }
    Ok(result)
}
