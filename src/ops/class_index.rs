//! What the NLL and cross-entropy ops share: their buffers, parameters and the
//! dispatch sequence (mean's divisor → per-row kernel(s) → batch reduction).

use crate::error::{Error, Result};
use crate::gpu::{
    BATCH_STATE_BYTES, Binding, Dispatch, Gpu, Kernel, Layout, LossParams, SOLO_CLASSES, SOLO_ROWS_PER_WORKGROUP,
    Workspace, status_to_result,
};
use crate::gpu::{FLAG_EMPTY_ZERO, FLAG_GRAD_BUFFER, FLAG_IN_PLACE, FLAG_MEAN, FLAG_SUM, FLAG_WEIGHT};
use crate::options::{CrossEntropyOptions, EmptyPolicy, Reduction};
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
}

/// Which class-index op is recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ClassIndexOp {
    Nll,
    CrossEntropy,
    /// The log-sum-exp partials of a shard of each row's classes, into the batch state.
    ShardPartials(ClassShard),
    /// A shard's gradient from merged partials already written to the batch state.
    ShardGrad(ClassShard),
}

/// Validates and records an NLL or cross-entropy op (see [`LossBuffers`]).
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
    crate::options::check_matrix("input", rows.saturating_mul(classes), rows, classes)?;
    let (total_classes, class_offset) = match op {
        ClassIndexOp::ShardPartials(s) | ClassIndexOp::ShardGrad(s) => (s.total_classes, s.offset),
        ClassIndexOp::Nll | ClassIndexOp::CrossEntropy => (classes, 0),
    };
    opts.check(total_classes)?;
    let is_shard = matches!(op, ClassIndexOp::ShardPartials(_) | ClassIndexOp::ShardGrad(_));
    let (rows_u, elements) = (rows as u64, rows as u64 * classes as u64);
    let wants_loss = buffers.loss.is_some();
    let mut buffers = *buffers;
    if buffers.in_place {
        if op != ClassIndexOp::CrossEntropy || buffers.grad.is_some() {
            return Err(Error::InvalidArgument {
                argument: "grad_in_place",
                message: "only for cross-entropy, and not together with a separate `grad` buffer".into(),
            });
        }
        buffers.grad = buffers.input;
    }
    let in_place = buffers.in_place;
    let wants_grad = buffers.grad.is_some();
    if !wants_loss && !wants_grad && !matches!(op, ClassIndexOp::ShardPartials(_)) {
        return Err(Error::InvalidArgument {
            argument: "buffers",
            message: "neither `loss` nor `grad` was given: nothing to compute".into(),
        });
    }
    let reads_input = op != ClassIndexOp::Nll || wants_loss;
    let input = match (buffers.input, reads_input) {
        (Some(s), true) => Some(s),
        (None, true) => {
            return Err(Error::InvalidArgument {
                argument: "input",
                message: "required: the logits (cross-entropy) or log-probabilities (NLL loss)".into(),
            });
        }
        (_, false) => None,
    };
    if let Some(s) = &input {
        Binding::check("input", s, elements)?;
    }
    if let Some(s) = &buffers.grad {
        Binding::check("grad", s, elements)?;
    }
    let targets = Binding::of(gpu, "targets", &buffers.targets, rows_u)?;
    let loss_len = opts.grad_output_len(rows) as u64;
    let loss = buffers
        .loss
        .map(|s| Binding::of(gpu, "loss", &s, loss_len))
        .transpose()?;
    let grad_output = buffers
        .grad_output
        .map(|s| Binding::of(gpu, "grad_output", &s, loss_len))
        .transpose()?;
    let chunks = gpu.row_chunks(rows, classes)?;
    let largest = chunks.iter().map(|c| c.1).max().unwrap_or(0);
    gpu.check_workgroups("rows", largest)?;
    gpu.check_workgroups("rows × classes", (largest * classes as u64).div_ceil(256))?;

    let per_row_loss = opts.reduction == Reduction::None && wants_loss;
    ws.prepare(gpu, if per_row_loss { 0 } else { rows_u }, opts.weight.as_deref());
    let (seg_len, segments) = match op {
        ClassIndexOp::CrossEntropy => gpu.row_segments(classes),
        ClassIndexOp::Nll | ClassIndexOp::ShardPartials(_) | ClassIndexOp::ShardGrad(_) => (classes as u32, 1),
    };
    if segments > 1 || is_shard {
        ws.reserve_partials(gpu, rows_u * u64::from(segments));
        gpu.check_workgroups("rows × segments", largest * u64::from(segments))?;
    }
    let (row_loss, loss_out) = if per_row_loss {
        (loss, None)
    } else {
        (Some(ws.row_losses()), loss)
    };
    let mut flags = 0;
    if opts.weight.is_some() {
        flags |= FLAG_WEIGHT;
    }
    match opts.reduction {
        Reduction::None => {}
        Reduction::Sum => flags |= FLAG_SUM,
        Reduction::Mean => flags |= FLAG_MEAN,
    }
    if grad_output.is_some() {
        flags |= FLAG_GRAD_BUFFER;
    }
    if opts.empty == EmptyPolicy::Zero {
        flags |= FLAG_EMPTY_ZERO;
    }
    if in_place {
        flags |= FLAG_IN_PLACE;
    }
    let offset = |b: &Option<Binding>| b.as_ref().map_or(0, |b| b.element_offset);
    let batch = LossParams {
        rows: rows as u32,
        classes: classes as u32,
        ignore_index: opts.ignore_index,
        flags,
        label_smoothing: match op {
            ClassIndexOp::Nll => 0.0,
            _ => opts.label_smoothing,
        },
        grad_scale: 1.0,
        target_off: targets.element_offset,
        grad_output_off: offset(&grad_output),
        row_loss_off: offset(&row_loss),
        loss_out_off: offset(&loss_out),
        seg_len,
        segments,
        total_classes: total_classes as u32,
        class_offset: class_offset as u32,
        ..Default::default()
    };
    // Parameter slot 0 and bind group 0 serve the batch-wide kernels; slot and group k + 1
    // serve row chunk k, with the matrices bound from the chunk's first row and the per-row
    // offsets moved on by it.
    let mut params = vec![batch];
    let mut matrices = Vec::with_capacity(chunks.len());
    for &(first, n) in &chunks {
        let input = input
            .filter(|_| !in_place)
            .map(|s| Binding::range(gpu, "input", &s, first * classes as u64, n * classes as u64))
            .transpose()?;
        let grad = buffers
            .grad
            .map(|s| Binding::range(gpu, "grad", &s, first * classes as u64, n * classes as u64))
            .transpose()?;
        let per_row_grad_output = if opts.reduction == Reduction::None {
            first as u32
        } else {
            0
        };
        params.push(LossParams {
            rows: n as u32,
            row_base: first as u32,
            input_off: if in_place { offset(&grad) } else { offset(&input) },
            grad_off: offset(&grad),
            target_off: batch.target_off + first as u32,
            row_loss_off: batch.row_loss_off + first as u32,
            grad_output_off: batch.grad_output_off + per_row_grad_output,
            ..batch
        });
        matrices.push((input, grad));
    }
    ws.set_params(gpu, &params);
    let placeholder = Binding::placeholder(gpu);
    let weight = ws.weight(gpu, opts.weight.is_some());
    let groups: Vec<wgpu::BindGroup> = std::iter::once(&matrices[0])
        .chain(&matrices)
        .enumerate()
        .map(|(slot, (input, grad))| {
            let entries = [
                (0, ws.params(slot)),
                (1, input.clone().unwrap_or_else(|| placeholder.clone())),
                (2, targets.clone()),
                (3, weight.clone()),
                (4, grad_output.clone().unwrap_or_else(|| placeholder.clone())),
                (5, ws.batch()),
                (6, row_loss.clone().unwrap_or_else(|| ws.row_losses())),
                (7, grad.clone().unwrap_or_else(|| ws.spare_grad())),
                (8, loss_out.clone().unwrap_or_else(|| ws.spare_loss())),
            ];
            ws.bind_group(gpu, Layout::ClassIndex, &entries)
        })
        .collect();

    let batch_dispatch = |kernel| Dispatch {
        kernel,
        workgroups: 1,
        group: 0,
    };
    let mut dispatches = Vec::with_capacity(3 + 2 * chunks.len());
    if opts.reduction == Reduction::Mean {
        dispatches.push(batch_dispatch(Kernel::TargetWeightTotal));
    }
    for (k, &(_, n)) in chunks.iter().enumerate() {
        let per_chunk = |kernel, workgroups| Dispatch {
            kernel,
            workgroups,
            group: k + 1,
        };
        let split = u64::from(segments);
        match op {
            ClassIndexOp::ShardPartials(_) => dispatches.push(per_chunk(Kernel::CrossEntropyPartials, n)),
            ClassIndexOp::ShardGrad(_) => dispatches.push(per_chunk(Kernel::CrossEntropyMergedForwardBackward, n)),
            ClassIndexOp::CrossEntropy if split > 1 => {
                dispatches.push(per_chunk(Kernel::CrossEntropyPartials, n * split));
                dispatches.push(match wants_grad {
                    true => per_chunk(Kernel::CrossEntropyMergedForwardBackward, n * split),
                    false => per_chunk(Kernel::CrossEntropyMergedForward, n),
                });
            }
            ClassIndexOp::CrossEntropy if classes <= SOLO_CLASSES => dispatches.push(per_chunk(
                if wants_grad {
                    Kernel::CrossEntropyForwardBackwardSolo
                } else {
                    Kernel::CrossEntropyForwardSolo
                },
                n.div_ceil(SOLO_ROWS_PER_WORKGROUP),
            )),
            ClassIndexOp::CrossEntropy if wants_grad => {
                dispatches.push(per_chunk(Kernel::CrossEntropyForwardBackward, n))
            }
            ClassIndexOp::CrossEntropy => dispatches.push(per_chunk(Kernel::CrossEntropyForward, n)),
            ClassIndexOp::Nll => {
                if wants_loss {
                    dispatches.push(per_chunk(Kernel::NllForward, n.div_ceil(256)));
                }
                if wants_grad {
                    dispatches.push(per_chunk(Kernel::NllBackward, (n * classes as u64).div_ceil(256)));
                }
            }
        }
    }
    if wants_loss && opts.reduction != Reduction::None {
        dispatches.push(batch_dispatch(Kernel::ReduceLosses));
    }
    dispatches.push(batch_dispatch(Kernel::RecordBadTargetValue));
    ws.clear_batch(encoder);
    gpu.record(encoder, &groups, &dispatches);
    Ok(())
}

/// What a slice-API call of a class-index op wants back.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wanted {
    pub loss: bool,
    pub grad: bool,
}

/// The slice API of the class-index ops: checks the arguments on the host, uploads,
/// records with [`encode_class_index`] and reads back what is wanted together with the
/// batch status, in which the device reports the first out-of-range target.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn class_index_slice(
    gpu: &Gpu,
    op: ClassIndexOp,
    input: (&'static str, Option<&[f32]>),
    targets: &[i32],
    rows: usize,
    classes: usize,
    opts: &CrossEntropyOptions,
    grad_output: Option<&[f32]>,
    wanted: Wanted,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let input_len = input.1.map_or(rows.saturating_mul(classes), <[f32]>::len);
    crate::options::check_class_index_shapes((input.0, input_len), targets, rows, classes, opts, grad_output)?;
    let mut uploads: Vec<&[u8]> = vec![bytemuck::cast_slice(targets)];
    uploads.extend(input.1.map(bytemuck::cast_slice));
    uploads.extend(grad_output.map(bytemuck::cast_slice));
    let mut output_lens = Vec::new();
    if wanted.loss {
        output_lens.push(opts.grad_output_len(rows));
    }
    if wanted.grad {
        output_lens.push(rows * classes);
    }
    let mut outputs = gpu
        .run_slice(
            &uploads,
            &output_lens,
            BATCH_STATE_BYTES,
            |encoder, ws, inputs, outputs| {
                let mut inputs = inputs.iter().copied();
                let mut outputs = outputs.iter().copied();
                let mut buffers = LossBuffers::new(inputs.next().expect("targets are always uploaded"));
                buffers.input = input.1.and_then(|_| inputs.next());
                buffers.grad_output = grad_output.and_then(|_| inputs.next());
                buffers.loss = if wanted.loss { outputs.next() } else { None };
                buffers.grad = if wanted.grad { outputs.next() } else { None };
                encode_class_index(gpu, encoder, ws, op, &buffers, rows, classes, opts)
            },
        )
        .await?
        .into_iter();
    let loss = if wanted.loss {
        outputs.next().unwrap_or_default()
    } else {
        Vec::new()
    };
    let grad = if wanted.grad {
        outputs.next().unwrap_or_default()
    } else {
        Vec::new()
    };
    status_to_result(&outputs.next().unwrap_or_default(), classes)?;
    Ok((loss, grad))
}
