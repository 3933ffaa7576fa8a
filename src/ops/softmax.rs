//! Row-wise log-softmax and softmax and their backward passes (shaders/softmax/).

use crate::error::Result;
use crate::gpu::{
    Binding, Dispatch, Gpu, Kernel, Layout, LossParams, SOLO_CLASSES, SOLO_ROWS_PER_WORKGROUP, Workspace,
};
use crate::options::{SoftmaxOp, check_matrix, check_spatial};

/// Validates and records one row-wise kernel: `input` (and `aux`, the upstream gradient of
/// the backward kernels) in, `output` out, all `rows × classes`.
#[allow(clippy::too_many_arguments)]
fn encode_row_op(
    gpu: &Gpu,
    encoder: &mut wgpu::CommandEncoder,
    ws: &mut Workspace,
    kernel: Kernel,
    input: (&'static str, &wgpu::BufferSlice<'_>),
    aux: Option<&wgpu::BufferSlice<'_>>,
    output: (&'static str, &wgpu::BufferSlice<'_>),
    rows: usize,
    classes: usize,
    spatial: usize,
) -> Result<()> {
    check_spatial(spatial)?;
    let rows = rows.saturating_mul(spatial);
    check_matrix(input.0, rows.saturating_mul(classes), rows, classes)?;
    let elements = rows as u64 * classes as u64;
    Binding::check(input.0, input.1, elements)?;
    if let Some(aux) = aux {
        Binding::check("grad_output", aux, elements)?;
    }
    Binding::check(output.0, output.1, elements)?;
    // Chunks hold whole samples, counted in rows (n, s).
    let chunks = gpu.row_chunks(rows as u64, classes as u64, spatial as u64)?;
    let largest = chunks.iter().map(|c| c.1).max().unwrap_or(0);
    gpu.check_workgroups("rows", largest)?;
    // Long rows of the forward kernels are split into segments (partials, then merged);
    // (N, C, spatial) batches take one invocation per row whatever the class count.
    let merged_kernel = match kernel {
        _ if spatial > 1 => None,
        Kernel::LogSoftmaxForward => Some(Kernel::LogSoftmaxMergedForward),
        Kernel::SoftmaxForward => Some(Kernel::SoftmaxMergedForward),
        _ => None,
    };
    let (seg_len, segments) = match merged_kernel {
        Some(_) => gpu.row_segments(classes),
        None => (classes as u32, 1),
    };
    let split = u64::from(segments);
    if split > 1 {
        ws.reserve_partials(gpu, rows as u64 * split);
        gpu.check_workgroups("rows × segments", largest * split)?;
    }
    // One parameter slot and bind group per row chunk (one chunk unless the batch is
    // larger than one storage binding).
    let mut params = Vec::with_capacity(chunks.len());
    let mut bindings = Vec::with_capacity(chunks.len());
    for &(first, n) in &chunks {
        let (start, len) = (first * classes as u64, n * classes as u64);
        let x = Binding::range(gpu, input.0, input.1, start, len)?;
        let dy = aux
            .map(|s| Binding::range(gpu, "grad_output", s, start, len))
            .transpose()?;
        let y = Binding::range(gpu, output.0, output.1, start, len)?;
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
        bindings.push((x, dy, y));
    }
    // Rows (and segments) of a multiple of 4 classes at 16-byte-aligned offsets are read
    // and written as vec4 (the forward kernels), held on-chip where they fit.
    let vec4 = spatial == 1
        && classes > SOLO_CLASSES
        && classes.is_multiple_of(4)
        && seg_len.is_multiple_of(4)
        && bindings
            .iter()
            .all(|(x, _, y)| x.element_offset % 4 == 0 && y.element_offset % 4 == 0);
    let short = gpu.short_slots(classes);
    let resident = gpu.resident_slots(classes).filter(|_| vec4);
    ws.set_params(gpu, &params);
    let groups: Vec<wgpu::BindGroup> = bindings
        .into_iter()
        .enumerate()
        .map(|(slot, (x, dy, y))| {
            let entries = [
                (0, ws.params(slot)),
                (1, x),
                (4, dy.unwrap_or_else(|| Binding::placeholder(gpu))),
                (5, ws.batch()),
                (7, y),
            ];
            ws.bind_group(gpu, Layout::Row, &entries)
        })
        .collect::<Result<_>>()?;
    let mut dispatches = Vec::with_capacity(2 * chunks.len());
    for (group, &(_, n)) in chunks.iter().enumerate() {
        match merged_kernel {
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
            _ => {
                let solo = match (kernel, short) {
                    (Kernel::LogSoftmaxForward, Some(slots)) => (Kernel::LogSoftmaxShort, slots),
                    (Kernel::SoftmaxForward, Some(slots)) => (Kernel::SoftmaxShort, slots),
                    (Kernel::LogSoftmaxForward, None) => (Kernel::LogSoftmaxForwardSolo, 0),
                    (Kernel::SoftmaxForward, None) => (Kernel::SoftmaxForwardSolo, 0),
                    (Kernel::LogSoftmaxBackward, _) => (Kernel::LogSoftmaxBackwardSolo, 0),
                    _ => (Kernel::SoftmaxBackwardSolo, 0),
                };
                let forward = matches!(kernel, Kernel::LogSoftmaxForward | Kernel::SoftmaxForward);
                let vec4_kernel = match (kernel, resident) {
                    (Kernel::LogSoftmaxForward, Some(slots)) => Some((Kernel::LogSoftmaxResident, slots)),
                    (Kernel::SoftmaxForward, Some(slots)) => Some((Kernel::SoftmaxResident, slots)),
                    (Kernel::LogSoftmaxForward, None) => Some((Kernel::LogSoftmaxForwardVec4, 0)),
                    (Kernel::SoftmaxForward, None) => Some((Kernel::SoftmaxForwardVec4, 0)),
                    _ => None,
                };
                dispatches.push(if let Some(kernel) = vec4_kernel.filter(|_| vec4) {
                    Dispatch::unrolled(kernel, n, group)
                } else if spatial > 1 || (forward && classes <= SOLO_CLASSES) {
                    Dispatch::unrolled(solo, n.div_ceil(SOLO_ROWS_PER_WORKGROUP), group)
                } else {
                    Dispatch::new(kernel, n, group)
                });
            }
        }
    }
    gpu.record(encoder, &groups, &dispatches);
    Ok(())
}

/// The slice API of a row-wise kernel: checks, uploads, records, reads back.
async fn row_op_slice(
    gpu: &Gpu,
    kernel: Kernel,
    input: (&'static str, &[f32]),
    aux: Option<&[f32]>,
    rows: usize,
    classes: usize,
    spatial: usize,
) -> Result<Vec<f32>> {
    let positions = rows.saturating_mul(spatial.max(1));
    check_matrix(input.0, input.1.len(), positions, classes)?;
    if let Some(aux) = aux {
        check_matrix("grad_output", aux.len(), positions, classes)?;
    }
    let mut uploads: Vec<&[u8]> = vec![bytemuck::cast_slice(input.1)];
    uploads.extend(aux.map(bytemuck::cast_slice));
    let outputs = gpu
        .run_slice(&uploads, &[positions * classes], 0, |encoder, ws, inputs, outputs| {
            let aux = inputs.get(1);
            encode_row_op(
                gpu,
                encoder,
                ws,
                kernel,
                (input.0, &inputs[0]),
                aux,
                ("output", &outputs[0]),
                rows,
                classes,
                spatial,
            )
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
        &self,
        encoder: &mut wgpu::CommandEncoder,
        workspace: &mut Workspace,
        input: wgpu::BufferSlice<'_>,
        output: wgpu::BufferSlice<'_>,
        rows: usize,
        classes: usize,
    ) -> Result<()> {
        encode_row_op(
            self,
            encoder,
            workspace,
            Kernel::LogSoftmaxForward,
            ("input", &input),
            None,
            ("output", &output),
            rows,
            classes,
            1,
        )
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
        &self,
        encoder: &mut wgpu::CommandEncoder,
        workspace: &mut Workspace,
        input: wgpu::BufferSlice<'_>,
        output: wgpu::BufferSlice<'_>,
        rows: usize,
        classes: usize,
    ) -> Result<()> {
        encode_row_op(
            self,
            encoder,
            workspace,
            Kernel::SoftmaxForward,
            ("input", &input),
            None,
            ("output", &output),
            rows,
            classes,
            1,
        )
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
        &self,
        encoder: &mut wgpu::CommandEncoder,
        workspace: &mut Workspace,
        output: wgpu::BufferSlice<'_>,
        grad_output: wgpu::BufferSlice<'_>,
        grad_input: wgpu::BufferSlice<'_>,
        rows: usize,
        classes: usize,
    ) -> Result<()> {
        let kernel = Kernel::LogSoftmaxBackward;
        encode_row_op(
            self,
            encoder,
            workspace,
            kernel,
            ("output", &output),
            Some(&grad_output),
            ("grad_input", &grad_input),
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
        &self,
        encoder: &mut wgpu::CommandEncoder,
        workspace: &mut Workspace,
        output: wgpu::BufferSlice<'_>,
        grad_output: wgpu::BufferSlice<'_>,
        grad_input: wgpu::BufferSlice<'_>,
        rows: usize,
        classes: usize,
    ) -> Result<()> {
        let kernel = Kernel::SoftmaxBackward;
        encode_row_op(
            self,
            encoder,
            workspace,
            kernel,
            ("output", &output),
            Some(&grad_output),
            ("grad_input", &grad_input),
            rows,
            classes,
            1,
        )
    }

    /// Row-wise log-softmax of `rows × classes` logits. Blocking; native only.
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let lp = gpu.log_softmax(&[0.0, 0.0, f32::NEG_INFINITY, 1e4], 2, 2).unwrap();
    /// assert_eq!(lp[3], 0.0);
    /// assert_eq!(lp[2], f32::NEG_INFINITY);
    /// ```
    #[cfg(not(target_arch = "wasm32"))]
    pub fn log_softmax(&self, logits: &[f32], rows: usize, classes: usize) -> Result<Vec<f32>> {
        pollster::block_on(self.log_softmax_async(logits, rows, classes))
    }

    /// The async form of [`Gpu::log_softmax`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let lp = pollster::block_on(gpu.log_softmax_async(&[0.0, 0.0], 1, 2)).unwrap();
    /// ```
    pub async fn log_softmax_async(&self, logits: &[f32], rows: usize, classes: usize) -> Result<Vec<f32>> {
        row_op_slice(
            self,
            Kernel::LogSoftmaxForward,
            ("logits", logits),
            None,
            rows,
            classes,
            1,
        )
        .await
    }

    /// Row-wise softmax of `rows × classes` logits. Blocking; native only.
    ///
    /// ```
    /// let gpu = wgpu_loss::Gpu::new().unwrap();
    /// assert_eq!(gpu.softmax(&[3.0, 3.0], 1, 2).unwrap(), vec![0.5, 0.5]);
    /// ```
    #[cfg(not(target_arch = "wasm32"))]
    pub fn softmax(&self, logits: &[f32], rows: usize, classes: usize) -> Result<Vec<f32>> {
        pollster::block_on(self.softmax_async(logits, rows, classes))
    }

    /// The async form of [`Gpu::softmax`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let p = pollster::block_on(gpu.softmax_async(&[0.0, 0.0], 1, 2)).unwrap();
    /// ```
    pub async fn softmax_async(&self, logits: &[f32], rows: usize, classes: usize) -> Result<Vec<f32>> {
        row_op_slice(self, Kernel::SoftmaxForward, ("logits", logits), None, rows, classes, 1).await
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
    #[cfg(not(target_arch = "wasm32"))]
    pub fn log_softmax_backward(
        &self,
        output: &[f32],
        grad_output: &[f32],
        rows: usize,
        classes: usize,
    ) -> Result<Vec<f32>> {
        pollster::block_on(self.log_softmax_backward_async(output, grad_output, rows, classes))
    }

    /// The async form of [`Gpu::log_softmax_backward`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let dx = pollster::block_on(gpu.log_softmax_backward_async(&[-0.5, -1.0], &[1.0, 0.0], 1, 2)).unwrap();
    /// ```
    pub async fn log_softmax_backward_async(
        &self,
        output: &[f32],
        grad_output: &[f32],
        rows: usize,
        classes: usize,
    ) -> Result<Vec<f32>> {
        row_op_slice(
            self,
            Kernel::LogSoftmaxBackward,
            ("output", output),
            Some(grad_output),
            rows,
            classes,
            1,
        )
        .await
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
    #[cfg(not(target_arch = "wasm32"))]
    pub fn softmax_backward(
        &self,
        output: &[f32],
        grad_output: &[f32],
        rows: usize,
        classes: usize,
    ) -> Result<Vec<f32>> {
        pollster::block_on(self.softmax_backward_async(output, grad_output, rows, classes))
    }

    /// The async form of [`Gpu::softmax_backward`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let dx = pollster::block_on(gpu.softmax_backward_async(&[0.5, 0.5], &[1.0, 0.0], 1, 2)).unwrap();
    /// ```
    pub async fn softmax_backward_async(
        &self,
        output: &[f32],
        grad_output: &[f32],
        rows: usize,
        classes: usize,
    ) -> Result<Vec<f32>> {
        row_op_slice(
            self,
            Kernel::SoftmaxBackward,
            ("output", output),
            Some(grad_output),
            rows,
            classes,
            1,
        )
        .await
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
        &self,
        encoder: &mut wgpu::CommandEncoder,
        workspace: &mut Workspace,
        op: SoftmaxOp,
        input: wgpu::BufferSlice<'_>,
        grad_output: Option<wgpu::BufferSlice<'_>>,
        output: wgpu::BufferSlice<'_>,
        rows: usize,
        classes: usize,
        spatial: usize,
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
            rows,
            classes,
            spatial,
        )
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
    #[cfg(not(target_arch = "wasm32"))]
    #[allow(clippy::too_many_arguments)]
    pub fn softmax_spatial(
        &self,
        op: SoftmaxOp,
        input: &[f32],
        grad_output: Option<&[f32]>,
        rows: usize,
        classes: usize,
        spatial: usize,
    ) -> Result<Vec<f32>> {
        pollster::block_on(self.softmax_spatial_async(op, input, grad_output, rows, classes, spatial))
    }

    /// The async form of [`Gpu::softmax_spatial`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// use wgpu_loss::SoftmaxOp;
    /// let y = pollster::block_on(gpu.softmax_spatial_async(SoftmaxOp::LogSoftmax, &[0.0, 0.0], None, 1, 2, 1)).unwrap();
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub async fn softmax_spatial_async(
        &self,
        op: SoftmaxOp,
        input: &[f32],
        grad_output: Option<&[f32]>,
        rows: usize,
        classes: usize,
        spatial: usize,
    ) -> Result<Vec<f32>> {
        let (names, kernel) = (op.arguments(grad_output.is_some())?, kernel_of(op));
        row_op_slice(self, kernel, (names.0, input), grad_output, rows, classes, spatial).await
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
