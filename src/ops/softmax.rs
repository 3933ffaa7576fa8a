//! Row-wise log-softmax and softmax and their backward passes (shaders/softmax/).

use crate::error::Result;
use crate::gpu::{
    Binding, Dispatch, Gpu, Kernel, Layout, LossParams, SOLO_CLASSES, SOLO_ROWS_PER_WORKGROUP, Workspace,
};
use crate::options::{SoftmaxOp, check_len, check_matrix, check_spatial};

/// A row-wise op's shape, checked once where it enters: the kernel, `rows` (N × spatial
/// rows of `classes`), and the `(N, C, d…)` layout's `spatial`.
#[derive(Debug, Clone, Copy)]
struct RowProblem {
    kernel: Kernel,
    rows: u64,
    classes: usize,
    spatial: usize,
}

impl RowProblem {
    fn new(kernel: Kernel, input: &'static str, rows: usize, classes: usize, spatial: usize) -> Result<Self> {
        check_spatial(spatial)?;
        let rows = rows.saturating_mul(spatial);
        check_matrix(input, rows.saturating_mul(classes), rows, classes)?;
        Ok(Self { kernel, rows: rows as u64, classes, spatial })
    }

    fn elements(&self) -> u64 {
        self.rows * self.classes as u64
    }

    /// Whether the op is a forward log-softmax / softmax (not a backward).
    fn is_forward(&self) -> bool {
        matches!(self.kernel, Kernel::LogSoftmaxForward | Kernel::SoftmaxForward)
    }

    /// The kernels that merge a split row's partials (forward ops of rows × classes
    /// layouts; `(N, C, d…)` batches take one invocation per row whatever their length).
    fn merged_kernel(&self) -> Option<Kernel> {
        match self.kernel {
            _ if self.spatial > 1 => None,
            Kernel::LogSoftmaxForward => Some(Kernel::LogSoftmaxMergedForward),
            Kernel::SoftmaxForward => Some(Kernel::SoftmaxMergedForward),
            _ => None,
        }
    }
}

/// A row-wise op's buffers: `input` (and the upstream gradient `dy` of the backward
/// kernels) in, `output` out, each named for errors.
#[derive(Debug, Clone, Copy)]
struct RowBuffers<'a> {
    input: (&'static str, wgpu::BufferSlice<'a>),
    dy: Option<wgpu::BufferSlice<'a>>,
    output: (&'static str, wgpu::BufferSlice<'a>),
}

impl RowBuffers<'_> {
    /// Each buffer holds the `rows × classes` matrix.
    fn check(&self, problem: &RowProblem) -> Result<()> {
        let elements = problem.elements();
        Binding::check(self.input.0, &self.input.1, elements)?;
        if let Some(dy) = &self.dy {
            Binding::check("grad_output", dy, elements)?;
        }
        Binding::check(self.output.0, &self.output.1, elements)
    }
}

/// A row-wise op's layout: one parameter slot and bind group per row chunk (one chunk
/// unless the batch is larger than one storage binding), and the rows' segments.
struct RowPlan {
    /// Each chunk's rows and bindings (input, upstream gradient, output).
    chunks: Vec<(u64, Binding, Option<Binding>, Binding)>,
    params: Vec<LossParams>,
    seg_len: u32,
    segments: u32,
    /// Rows per invocation of the packed kernels where the chunks were laid out for them.
    packed: Option<u64>,
}

impl RowPlan {
    fn new(gpu: &Gpu, ws: &mut Workspace, problem: &RowProblem, buffers: &RowBuffers<'_>) -> Result<Self> {
        let (rows, classes, spatial) = (problem.rows, problem.classes, problem.spatial);
        // Chunks hold whole samples, counted in rows (n, s), or the packed kernels' whole
        // packs of short rows (the forward ops).
        let packed = (problem.is_forward() && spatial == 1).then(|| gpu.packed_rows(classes)).flatten();
        let row_chunks = match packed {
            Some(pack) => gpu.packed_row_chunks(rows, classes as u64, pack)?,
            None => gpu.row_chunks(rows, classes as u64, spatial as u64)?,
        };
        let largest = row_chunks.iter().map(|c| c.1).max().unwrap_or(0);
        gpu.check_workgroups("rows", largest)?;
        let (seg_len, segments) = match problem.merged_kernel() {
            Some(_) => gpu.row_segments(classes),
            None => (classes as u32, 1),
        };
        let split = u64::from(segments);
        if split > 1 {
            ws.reserve_partials(gpu, rows * split);
            gpu.check_workgroups("rows × segments", largest * split)?;
        }
        let mut params = Vec::with_capacity(row_chunks.len());
        let mut chunks = Vec::with_capacity(row_chunks.len());
        for (first, n) in row_chunks {
            let (start, len) = (first * classes as u64, n * classes as u64);
            let x = Binding::range(gpu, buffers.input.0, &buffers.input.1, start, len)?;
            let dy = buffers.dy.map(|s| Binding::range(gpu, "grad_output", &s, start, len)).transpose()?;
            let y = Binding::range(gpu, buffers.output.0, &buffers.output.1, start, len)?;
            params.push(LossParams {
                rows: n as u32,
                classes: classes as u32,
                row_base: first as u32,
                input_off: x.element_offset,
                grad_output_off: dy.as_ref().map_or(0, |a| a.element_offset),
                grad_off: y.element_offset,
                seg_len,
                segments,
                total_classes: classes as u32,
                spatial: spatial as u32,
                ..Default::default()
            });
            chunks.push((n, x, dy, y));
        }
        Ok(Self { chunks, params, seg_len, segments, packed })
    }
}

/// Which kernels record a row-wise op, per chunk: split rows their partials and merge;
/// rows (and segments) of a multiple of 4 classes at 16-byte-aligned offsets read as vec4,
/// held in registers where they fit (the forward ops); short rows of an even length, whole
/// packs of them at 16-byte-aligned offsets, one or two per invocation as vec4 (the forward
/// ops); other short rows and `(N, C, d…)` batches one invocation per row; the rest one
/// workgroup per row.
fn dispatches(gpu: &Gpu, problem: &RowProblem, plan: &RowPlan) -> Vec<Dispatch> {
    let (kernel, classes) = (problem.kernel, problem.classes);
    let quad_aligned =
        |x: &Binding, y: &Binding| x.element_offset.is_multiple_of(4) && y.element_offset.is_multiple_of(4);
    let vec4 = problem.spatial == 1
        && classes > SOLO_CLASSES
        && classes.is_multiple_of(4)
        && plan.seg_len.is_multiple_of(4)
        && plan.chunks.iter().all(|(_, x, _, y)| quad_aligned(x, y));
    let short = gpu.short_slots(classes);
    let resident = gpu.resident_slots(classes).filter(|_| vec4);
    let split = u64::from(plan.segments);
    let solo = match (kernel, short) {
        (Kernel::LogSoftmaxForward, Some(slots)) => (Kernel::LogSoftmaxShort, slots),
        (Kernel::SoftmaxForward, Some(slots)) => (Kernel::SoftmaxShort, slots),
        (Kernel::LogSoftmaxForward, None) => (Kernel::LogSoftmaxForwardSolo, 0),
        (Kernel::SoftmaxForward, None) => (Kernel::SoftmaxForwardSolo, 0),
        (Kernel::LogSoftmaxBackward, _) => (Kernel::LogSoftmaxBackwardSolo, 0),
        _ => (Kernel::SoftmaxBackwardSolo, 0),
    };
    let vec4_kernel = match (kernel, resident) {
        (Kernel::LogSoftmaxForward, Some(slots)) => Some((Kernel::LogSoftmaxResident, slots)),
        (Kernel::SoftmaxForward, Some(slots)) => Some((Kernel::SoftmaxResident, slots)),
        (Kernel::LogSoftmaxForward, None) => Some((Kernel::LogSoftmaxForwardVec4, 0)),
        (Kernel::SoftmaxForward, None) => Some((Kernel::SoftmaxForwardVec4, 0)),
        _ => None,
    };
    let packed_kernel =
        if kernel == Kernel::LogSoftmaxForward { Kernel::LogSoftmaxPacked } else { Kernel::SoftmaxPacked };
    let mut dispatches = Vec::with_capacity(2 * plan.chunks.len());
    for (group, (n, x, _, y)) in plan.chunks.iter().enumerate() {
        let n = *n;
        let pack = plan.packed.filter(|&pack| n.is_multiple_of(pack) && quad_aligned(x, y));
        match problem.merged_kernel() {
            Some(merged) if split > 1 => {
                let (partials, merged) = match (vec4, merged) {
                    (true, Kernel::LogSoftmaxMergedForward) => {
                        (Kernel::SoftmaxPartialsVec4, Kernel::LogSoftmaxMergedForwardVec4)
                    }
                    (true, _) => (Kernel::SoftmaxPartialsVec4, Kernel::SoftmaxMergedForwardVec4),
                    (false, merged) => (Kernel::SoftmaxPartials, merged),
                };
                for kernel in [partials, merged] {
                    dispatches.push(Dispatch::new(kernel, n * split, group));
                }
            }
            _ => dispatches.push(if let Some(pack) = pack {
                Dispatch::unrolled((packed_kernel, classes as u32), (n / pack).div_ceil(SOLO_ROWS_PER_WORKGROUP), group)
            } else if let Some(kernel) = vec4_kernel.filter(|_| vec4) {
                Dispatch::unrolled(kernel, n, group)
            } else if problem.spatial > 1 || (problem.is_forward() && classes <= SOLO_CLASSES) {
                Dispatch::unrolled(solo, n.div_ceil(SOLO_ROWS_PER_WORKGROUP), group)
            } else {
                Dispatch::new(kernel, n, group)
            }),
        }
    }
    dispatches
}

/// Records a checked row-wise op on checked buffers: plan, select, then bind and record.
fn record_row_op(
    gpu: &Gpu, encoder: &mut wgpu::CommandEncoder, ws: &mut Workspace, problem: &RowProblem, buffers: &RowBuffers<'_>,
) -> Result<()> {
    let plan = RowPlan::new(gpu, ws, problem, buffers)?;
    let dispatches = dispatches(gpu, problem, &plan);
    ws.set_params(gpu, &plan.params);
    let groups: Vec<wgpu::BindGroup> = plan
        .chunks
        .iter()
        .enumerate()
        .map(|(slot, (_, x, dy, y))| {
            let entries = [
                (0, ws.params(slot)),
                (1, x.clone()),
                (4, dy.clone().unwrap_or_else(|| Binding::placeholder(gpu))),
                (5, ws.batch()),
                (7, y.clone()),
            ];
            ws.bind_group(gpu, Layout::Row, &entries)
        })
        .collect::<Result<_>>()?;
    gpu.record(encoder, &groups, &dispatches);
    Ok(())
}

/// The encode API of a row-wise kernel: the shape and buffers checked, then recorded.
#[allow(clippy::too_many_arguments)]
fn encode_row_op(
    gpu: &Gpu, encoder: &mut wgpu::CommandEncoder, ws: &mut Workspace, kernel: Kernel,
    input: (&'static str, &wgpu::BufferSlice<'_>), dy: Option<&wgpu::BufferSlice<'_>>,
    output: (&'static str, &wgpu::BufferSlice<'_>), (rows, classes, spatial): (usize, usize, usize),
) -> Result<()> {
    let problem = RowProblem::new(kernel, input.0, rows, classes, spatial)?;
    let buffers = RowBuffers { input: (input.0, *input.1), dy: dy.copied(), output: (output.0, *output.1) };
    buffers.check(&problem)?;
    record_row_op(gpu, encoder, ws, &problem, &buffers)
}

/// The slice API of a row-wise kernel: the shape and the host slices checked, then
/// uploaded, recorded and read back.
async fn row_op_slice(
    gpu: &Gpu, kernel: Kernel, input: (&'static str, &[f32]), dy: Option<&[f32]>,
    (rows, classes, spatial): (usize, usize, usize),
) -> Result<Vec<f32>> {
    let problem = RowProblem::new(kernel, input.0, rows, classes, spatial)?;
    let elements = problem.elements() as usize;
    check_len(input.0, input.1.len(), elements)?;
    if let Some(dy) = dy {
        check_len("grad_output", dy.len(), elements)?;
    }
    let mut uploads: Vec<&[u8]> = vec![bytemuck::cast_slice(input.1)];
    uploads.extend(dy.map(bytemuck::cast_slice));
    let outputs = gpu
        .run_slice(&uploads, &[elements], 0, |encoder, ws, inputs, outputs| {
            let buffers =
                RowBuffers { input: (input.0, inputs[0]), dy: inputs.get(1).copied(), output: ("output", outputs[0]) };
            record_row_op(gpu, encoder, ws, &problem, &buffers)
        })
        .await?;
    Ok(outputs.into_iter().next().unwrap_or_default())
}

impl Gpu {
    /// Records row-wise log-softmax of the `rows × classes` `input` into `output`
    /// (`x - max - log Σ exp(x - max)`; `-inf` entries give `-inf`, rows with a NaN, a
    /// `+inf` or no finite entry give NaN).
    ///
    /// ```
    /// use wgpu::util::DeviceExt;
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let d = gpu.device();
    /// let x = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
    ///     label: None, contents: bytemuck::cast_slice(&[1.0f32, 2.0]), usage: wgpu::BufferUsages::STORAGE });
    /// let y = d.create_buffer(&wgpu::BufferDescriptor {
    ///     label: None, size: 8, usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let mut ws = wgpu_loss::Workspace::new(&gpu);
    /// let mut encoder = d.create_command_encoder(&Default::default());
    /// gpu.encode_log_softmax(&mut encoder, &mut ws, x.slice(..), y.slice(..), 1, 2).unwrap();
    /// gpu.queue().submit([encoder.finish()]);
    /// ```
    pub fn encode_log_softmax(
        &self, encoder: &mut wgpu::CommandEncoder, workspace: &mut Workspace, input: wgpu::BufferSlice<'_>,
        output: wgpu::BufferSlice<'_>, rows: usize, classes: usize,
    ) -> Result<()> {
        self.encode_softmax_spatial(encoder, workspace, SoftmaxOp::LogSoftmax, input, None, output, rows, classes, 1)
    }

    /// Records row-wise softmax of `input` into `output` (`exp(log_softmax)`; `-inf` gives 0).
    ///
    /// ```
    /// # use wgpu::util::DeviceExt;
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let d = gpu.device();
    /// # let x = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
    /// #     label: None, contents: bytemuck::cast_slice(&[1.0f32, 2.0]), usage: wgpu::BufferUsages::STORAGE });
    /// # let y = d.create_buffer(&wgpu::BufferDescriptor {
    /// #     label: None, size: 8, usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let mut ws = wgpu_loss::Workspace::new(&gpu);
    /// let mut encoder = d.create_command_encoder(&Default::default());
    /// gpu.encode_softmax(&mut encoder, &mut ws, x.slice(..), y.slice(..), 1, 2).unwrap();
    /// gpu.queue().submit([encoder.finish()]);
    /// ```
    pub fn encode_softmax(
        &self, encoder: &mut wgpu::CommandEncoder, workspace: &mut Workspace, input: wgpu::BufferSlice<'_>,
        output: wgpu::BufferSlice<'_>, rows: usize, classes: usize,
    ) -> Result<()> {
        self.encode_softmax_spatial(encoder, workspace, SoftmaxOp::Softmax, input, None, output, rows, classes, 1)
    }

    /// Records the gradient of log-softmax: from its forward `output` y and the upstream
    /// `grad_output` dy, `grad_input = dy - exp(y)·Σ dy` per row.
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let d = gpu.device();
    /// # let buf = |n: u64| d.create_buffer(&wgpu::BufferDescriptor {
    /// #     label: None, size: 4 * n, usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let (y, dy, dx) = (buf(6), buf(6), buf(6));
    /// let mut ws = wgpu_loss::Workspace::new(&gpu);
    /// let mut encoder = d.create_command_encoder(&Default::default());
    /// gpu.encode_log_softmax_backward(&mut encoder, &mut ws, y.slice(..), dy.slice(..), dx.slice(..), 2, 3).unwrap();
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn encode_log_softmax_backward(
        &self, encoder: &mut wgpu::CommandEncoder, workspace: &mut Workspace, output: wgpu::BufferSlice<'_>,
        grad_output: wgpu::BufferSlice<'_>, grad_input: wgpu::BufferSlice<'_>, rows: usize, classes: usize,
    ) -> Result<()> {
        self.encode_softmax_spatial(
            encoder,
            workspace,
            SoftmaxOp::LogSoftmaxBackward,
            output,
            Some(grad_output),
            grad_input,
            rows,
            classes,
            1,
        )
    }

    /// Records the gradient of softmax: from its forward `output` y and the upstream
    /// `grad_output` dy, `grad_input = y·(dy - Σ y·dy)` per row.
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// # let d = gpu.device();
    /// # let buf = |n: u64| d.create_buffer(&wgpu::BufferDescriptor {
    /// #     label: None, size: 4 * n, usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let (y, dy, dx) = (buf(6), buf(6), buf(6));
    /// let mut ws = wgpu_loss::Workspace::new(&gpu);
    /// let mut encoder = d.create_command_encoder(&Default::default());
    /// gpu.encode_softmax_backward(&mut encoder, &mut ws, y.slice(..), dy.slice(..), dx.slice(..), 2, 3).unwrap();
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn encode_softmax_backward(
        &self, encoder: &mut wgpu::CommandEncoder, workspace: &mut Workspace, output: wgpu::BufferSlice<'_>,
        grad_output: wgpu::BufferSlice<'_>, grad_input: wgpu::BufferSlice<'_>, rows: usize, classes: usize,
    ) -> Result<()> {
        self.encode_softmax_spatial(
            encoder,
            workspace,
            SoftmaxOp::SoftmaxBackward,
            output,
            Some(grad_output),
            grad_input,
            rows,
            classes,
            1,
        )
    }

    /// Records a softmax-family op over dim 1 of an `(N, C, d1, …, dk)` input (`rows` = N,
    /// `classes` = C, `spatial` = d1·…·dk): class `c` of position `s` of sample `n` sits at
    /// `(n·C + c)·spatial + s`, as in PyTorch, and is read in place, without a transposing
    /// copy. `grad_output` is the upstream gradient of the backward ops (`None` for the
    /// forward ones); every buffer has `rows × classes × spatial` values.
    ///
    /// ```
    /// use wgpu::util::DeviceExt;
    /// use wgpu_loss::{Gpu, SoftmaxOp, Workspace};
    /// let gpu = Gpu::new().unwrap();
    /// let d = gpu.device();
    /// // One sample, 2 classes, 3 positions: class 0's three values, then class 1's.
    /// let x = d.create_buffer_init(&wgpu::util::BufferInitDescriptor {
    ///     label: None, contents: bytemuck::cast_slice(&[0.0f32, 1.0, 2.0, 0.0, 0.0, 0.0]), usage: wgpu::BufferUsages::STORAGE });
    /// let y = d.create_buffer(&wgpu::BufferDescriptor {
    ///     label: None, size: 24, usage: wgpu::BufferUsages::STORAGE, mapped_at_creation: false });
    /// let mut ws = Workspace::new(&gpu);
    /// let mut encoder = d.create_command_encoder(&Default::default());
    /// gpu.encode_softmax_spatial(&mut encoder, &mut ws, SoftmaxOp::LogSoftmax, x.slice(..), None, y.slice(..), 1, 2, 3).unwrap();
    /// gpu.queue().submit([encoder.finish()]);
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub fn encode_softmax_spatial(
        &self, encoder: &mut wgpu::CommandEncoder, workspace: &mut Workspace, op: SoftmaxOp,
        input: wgpu::BufferSlice<'_>, grad_output: Option<wgpu::BufferSlice<'_>>, output: wgpu::BufferSlice<'_>,
        rows: usize, classes: usize, spatial: usize,
    ) -> Result<()> {
        let (names, kernel) = (op.arguments(grad_output.is_some())?, kernel_of(op));
        encode_row_op(
            self,
            encoder,
            workspace,
            kernel,
            (names.0, &input),
            grad_output.as_ref(),
            (names.1, &output),
            (rows, classes, spatial),
        )
    }
}

slice_api! {
    /// Row-wise log-softmax of `rows × classes` logits. Blocking; native only.
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let lp = gpu.log_softmax(&[0.0, 0.0, f32::NEG_INFINITY, 1e4], 2, 2).unwrap();
    /// assert_eq!(lp[3], 0.0);
    /// assert_eq!(lp[2], f32::NEG_INFINITY);
    /// ```
    pub fn log_softmax;
    /// The async form of [`Gpu::log_softmax`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let lp = pollster::block_on(gpu.log_softmax_async(&[0.0, 0.0], 1, 2)).unwrap();
    /// ```
    pub async fn log_softmax_async(&self, logits: &[f32], rows: usize, classes: usize) -> Result<Vec<f32>> {
        row_op_slice(self, Kernel::LogSoftmaxForward, ("logits", logits), None, (rows, classes, 1)).await
    }

    /// Row-wise softmax of `rows × classes` logits. Blocking; native only.
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// assert_eq!(gpu.softmax(&[3.0, 3.0], 1, 2).unwrap(), vec![0.5, 0.5]);
    /// ```
    pub fn softmax;
    /// The async form of [`Gpu::softmax`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let p = pollster::block_on(gpu.softmax_async(&[0.0, 0.0], 1, 2)).unwrap();
    /// ```
    pub async fn softmax_async(&self, logits: &[f32], rows: usize, classes: usize) -> Result<Vec<f32>> {
        row_op_slice(self, Kernel::SoftmaxForward, ("logits", logits), None, (rows, classes, 1)).await
    }

    /// The gradient of log-softmax from its `output` and the upstream `grad_output`, as
    /// [`cpu::log_softmax_backward`](crate::cpu::log_softmax_backward) (its non-finite
    /// rules too: a row with a non-finite `grad_output` is all NaN). Blocking; native only.
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let y = gpu.log_softmax(&[0.0, 0.0], 1, 2).unwrap();
    /// let dx = gpu.log_softmax_backward(&y, &[1.0, 0.0], 1, 2).unwrap();
    /// assert_eq!(dx, vec![0.5, -0.5]);
    /// ```
    pub fn log_softmax_backward;
    /// The async form of [`Gpu::log_softmax_backward`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let dx = pollster::block_on(gpu.log_softmax_backward_async(&[-0.5, -1.0], &[1.0, 0.0], 1, 2)).unwrap();
    /// ```
    pub async fn log_softmax_backward_async(
        &self, output: &[f32], grad_output: &[f32], rows: usize, classes: usize,
    ) -> Result<Vec<f32>> {
        row_op_slice(self, Kernel::LogSoftmaxBackward, ("output", output), Some(grad_output), (rows, classes, 1)).await
    }

    /// The gradient of softmax from its `output` and the upstream `grad_output`, as
    /// [`cpu::softmax_backward`](crate::cpu::softmax_backward) (a row with a non-finite
    /// `output` or `grad_output` is all NaN). Blocking; native only.
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let dx = gpu.softmax_backward(&[0.5, 0.5], &[1.0, 0.0], 1, 2).unwrap();
    /// assert_eq!(dx, vec![0.25, -0.25]);
    /// ```
    pub fn softmax_backward;
    /// The async form of [`Gpu::softmax_backward`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let dx = pollster::block_on(gpu.softmax_backward_async(&[0.5, 0.5], &[1.0, 0.0], 1, 2)).unwrap();
    /// ```
    pub async fn softmax_backward_async(
        &self, output: &[f32], grad_output: &[f32], rows: usize, classes: usize,
    ) -> Result<Vec<f32>> {
        row_op_slice(self, Kernel::SoftmaxBackward, ("output", output), Some(grad_output), (rows, classes, 1)).await
    }

    /// A softmax-family op over dim 1 of an `(N, C, d1, …, dk)` input (see
    /// [`Gpu::encode_softmax_spatial`]): `rows × classes × spatial` values in, as many out.
    /// Blocking; native only.
    ///
    /// ```
    /// use wgpu_loss::{Gpu, SoftmaxOp};
    /// let gpu = Gpu::new().unwrap();
    /// // (N=1, C=2, d=2): position 0 has logits (0, 0), position 1 has (1, 1).
    /// let p = gpu.softmax_spatial(SoftmaxOp::Softmax, &[0.0, 1.0, 0.0, 1.0], None, 1, 2, 2).unwrap();
    /// assert_eq!(p, vec![0.5; 4]);
    /// ```
    pub fn softmax_spatial;
    /// The async form of [`Gpu::softmax_spatial`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// use wgpu_loss::SoftmaxOp;
    /// let y = pollster::block_on(gpu.softmax_spatial_async(SoftmaxOp::LogSoftmax, &[0.0, 0.0], None, 1, 2, 1)).unwrap();
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub async fn softmax_spatial_async(
        &self, op: SoftmaxOp, input: &[f32], grad_output: Option<&[f32]>, rows: usize, classes: usize, spatial: usize,
    ) -> Result<Vec<f32>> {
        let (names, kernel) = (op.arguments(grad_output.is_some())?, kernel_of(op));
        row_op_slice(self, kernel, (names.0, input), grad_output, (rows, classes, spatial)).await
    }
}

/// The kernel of a softmax-family op.
fn kernel_of(op: SoftmaxOp) -> Kernel {
    match op {
        SoftmaxOp::LogSoftmax => Kernel::LogSoftmaxForward,
        SoftmaxOp::Softmax => Kernel::SoftmaxForward,
        SoftmaxOp::LogSoftmaxBackward => Kernel::LogSoftmaxBackward,
        SoftmaxOp::SoftmaxBackward => Kernel::SoftmaxBackward,
    }
}
