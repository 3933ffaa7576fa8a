//! The second stage: how a checked op is laid out on the device — row chunks that fit a
//! binding, segments of rows too long for one workgroup, where the extra outputs go in the
//! workspace, the parameter block of the batch and of each chunk, and each chunk's bindings.

use super::ClassIndexOp;
use super::validate::{Bound, Problem};
use crate::error::Result;
use crate::gpu::{
    Binding, FLAG_ARGMAX, FLAG_EMPTY_ZERO, FLAG_GRAD_BUFFER, FLAG_IN_PLACE, FLAG_LSE, FLAG_MEAN, FLAG_PROB_TARGETS,
    FLAG_SUM, FLAG_WEIGHT, Gpu, LossParams, NLL_WG, REDUCE_BLOCK, Workspace,
};
use crate::options::{EmptyPolicy, Precision, Reduction};

/// One row chunk: its rows and the matrices bound from its first row.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub rows: u64,
    pub input: Option<Binding>,
    pub grad: Option<Binding>,
    /// Class indices of the whole batch, or this chunk's probability rows.
    pub targets: Binding,
}

/// A checked op's layout on the device.
#[derive(Debug)]
pub(crate) struct Plan {
    pub chunks: Vec<Chunk>,
    /// Classes per segment and segments per row (1 and `classes` unless rows are split).
    pub seg_len: u32,
    pub segments: u32,
    /// Parameter slot 0 serves the batch-wide kernels, slot `k + 1` row chunk `k`.
    pub params: Vec<LossParams>,
    pub grad_output: Option<Binding>,
    /// Per-row losses (the caller's for `None`, else the workspace's).
    pub row_loss: Option<Binding>,
    /// The reduced loss (the caller's, for `Sum` and `Mean`).
    pub loss_out: Option<Binding>,
    /// Rows per invocation of the packed kernels where the chunks were laid out for them
    /// (plain f32 short rows of an even length; each chunk checked by the select stage).
    pub packed: Option<u64>,
    /// Word offsets of the extra outputs in the workspace's aux buffer.
    pub lse_off: u64,
    pub argmax_off: u64,
    pub accuracy_off: u64,
}

impl Plan {
    pub(crate) fn new(gpu: &Gpu, ws: &mut Workspace, problem: &Problem<'_>, bound: &Bound<'_>) -> Result<Self> {
        // Chunks hold whole samples (spatial loss rows each), counted in loss rows, or the
        // packed kernels' whole packs of rows.
        let packs = problem.is_plain(bound) && problem.opts.spatial == 1 && bound.precision == Precision::F32;
        let packed = packs.then(|| gpu.packed_rows(problem.classes)).flatten();
        let row_chunks = match packed {
            Some(pack) => gpu.packed_row_chunks(problem.loss_rows, problem.classes as u64, pack)?,
            None => gpu.row_chunks(problem.loss_rows, problem.classes as u64, problem.opts.spatial as u64)?,
        };
        let plan = Self::with_chunks(gpu, ws, problem, bound, &row_chunks, |first, n, targets| {
            Chunk::bind(gpu, problem, bound, first, n, targets)
        })?;
        Ok(Self { packed, ..plan })
    }

    /// The layout of `row_chunks` `(first row, rows)`, each bound by `bind(first, rows,
    /// targets)` (`targets`: the batch's class indices, `None` for probability targets).
    pub(crate) fn with_chunks(
        gpu: &Gpu, ws: &mut Workspace, problem: &Problem<'_>, bound: &Bound<'_>, row_chunks: &[(u64, u64)],
        bind: impl Fn(u64, u64, Option<Binding>) -> Result<Chunk>,
    ) -> Result<Self> {
        let (rows, classes) = (problem.loss_rows, problem.classes as u64);
        let largest = row_chunks.iter().map(|c| c.1).max().unwrap_or(0);
        gpu.check_workgroups("rows", largest)?;
        gpu.check_workgroups("rows × classes", (largest * classes).div_ceil(u64::from(NLL_WG)))?;
        let (seg_len, segments) = segments(gpu, problem);
        let split = u64::from(segments);
        let aux = Aux::reserve(gpu, ws, problem, bound, split);
        if split > 1 || problem.op.is_shard() {
            ws.reserve_partials(gpu, rows * split);
            gpu.check_workgroups("rows × segments", largest * split)?;
        }
        let loss_len = problem.loss_len();
        let loss = bound.loss.map(|s| Binding::range(gpu, "loss", &s, 0, loss_len)).transpose()?;
        let grad_output = bound.grad_output.map(|s| Binding::range(gpu, "grad_output", &s, 0, loss_len)).transpose()?;
        let per_row_loss = problem.opts.reduction == Reduction::None && loss.is_some();
        let (row_loss, loss_out) = if per_row_loss { (loss, None) } else { (Some(ws.row_losses()), loss) };
        let targets = match problem.op {
            ClassIndexOp::CrossEntropyProbs => None,
            _ => Some(Binding::range(gpu, "targets", &bound.targets, 0, rows)?),
        };
        let offset = |b: &Option<Binding>| b.as_ref().map_or(0, |b| b.element_offset);
        let batch = LossParams {
            rows: rows as u32,
            classes: classes as u32,
            ignore_index: problem.opts.ignore_index,
            flags: flags(problem, bound),
            label_smoothing: match problem.op {
                ClassIndexOp::Nll => 0.0,
                _ => problem.opts.label_smoothing,
            },
            grad_scale: 1.0,
            target_off: offset(&targets),
            grad_output_off: offset(&grad_output),
            row_loss_off: offset(&row_loss),
            loss_out_off: offset(&loss_out),
            seg_len,
            segments,
            total_classes: problem.total_classes as u32,
            class_offset: problem.class_offset as u32,
            spatial: problem.opts.spatial as u32,
            softcap: problem.opts.logit_softcap,
            z_loss_scale: problem.opts.z_loss_scale,
            lse_off: aux.lse as u32,
            argmax_off: aux.argmax as u32,
            arg_partial_off: aux.arg_partials as u32,
            accuracy_off: aux.accuracy as u32,
            ..Default::default()
        };
        let mut params = vec![batch];
        let mut chunks = Vec::with_capacity(row_chunks.len());
        for &(first, n) in row_chunks {
            let chunk = bind(first, n, targets.clone())?;
            params.push(chunk.params(problem, &batch, first));
            chunks.push(chunk);
        }
        Ok(Self {
            chunks,
            seg_len,
            segments,
            params,
            grad_output,
            row_loss,
            loss_out,
            packed: None,
            lse_off: aux.lse,
            argmax_off: aux.argmax,
            accuracy_off: aux.accuracy,
        })
    }

    /// Whether every chunk's input and gradient start on a 16-byte boundary (so its rows
    /// can be read as vec4 when their length allows).
    pub(crate) fn quad_aligned(&self) -> bool {
        self.chunks.iter().all(Chunk::quad_aligned)
    }
}

impl Chunk {
    /// Whether the chunk's input and gradient start on a 16-byte boundary.
    pub(crate) fn quad_aligned(&self) -> bool {
        let aligned = |b: &Option<Binding>| b.as_ref().is_none_or(|b| b.element_offset % 4 == 0);
        aligned(&self.input) && aligned(&self.grad)
    }

    /// Binds the matrices of `n` rows from row `first`; `targets` are the batch's class
    /// indices (`None`: probability targets, bound per chunk as the logits).
    fn bind(
        gpu: &Gpu, problem: &Problem<'_>, bound: &Bound<'_>, first: u64, n: u64, targets: Option<Binding>,
    ) -> Result<Self> {
        let classes = problem.classes as u64;
        let sized = |argument, slice: &wgpu::BufferSlice<'_>, bytes| {
            Binding::range_sized(gpu, argument, slice, first * classes, n * classes, bytes)
        };
        let precision = bound.precision;
        Ok(Self {
            rows: n,
            input: bound.input.map(|s| sized("input", &s, precision.bytes())).transpose()?,
            grad: bound.grad.map(|s| sized("grad", &s, precision.grad_bytes())).transpose()?,
            targets: match targets {
                Some(targets) => targets,
                None => sized("targets", &bound.targets, 4)?,
            },
        })
    }

    /// The chunk's parameters: the batch's, with its own matrices' offsets and the per-row
    /// offsets moved on by its first row.
    fn params(&self, problem: &Problem<'_>, batch: &LossParams, first: u64) -> LossParams {
        let offset = |b: &Option<Binding>| b.as_ref().map_or(0, |b| b.element_offset);
        let per_row = first as u32;
        let per_row_grad_output = if problem.opts.reduction == Reduction::None { per_row } else { 0 };
        let in_place = batch.flags & FLAG_IN_PLACE != 0;
        LossParams {
            rows: self.rows as u32,
            row_base: per_row,
            input_off: if in_place { offset(&self.grad) } else { offset(&self.input) },
            grad_off: offset(&self.grad),
            target_off: match problem.op {
                ClassIndexOp::CrossEntropyProbs => self.targets.element_offset,
                _ => batch.target_off + per_row,
            },
            row_loss_off: batch.row_loss_off + per_row,
            grad_output_off: batch.grad_output_off + per_row_grad_output,
            lse_off: batch.lse_off + per_row,
            argmax_off: batch.argmax_off + per_row,
            ..*batch
        }
    }
}

/// `(segment length, segments per row)`: cross-entropy splits rows longer than twice the
/// `Gpu`'s segment length (rows × classes layouts only); the other ops never split.
fn segments(gpu: &Gpu, problem: &Problem<'_>) -> (u32, u32) {
    let whole = (problem.classes as u32, 1);
    match problem.op {
        _ if problem.opts.spatial > 1 => whole,
        ClassIndexOp::CrossEntropy | ClassIndexOp::CrossEntropyProbs => gpu.row_segments(problem.classes),
        ClassIndexOp::Nll | ClassIndexOp::ShardPartials(_) | ClassIndexOp::ShardGrad(_) => whole,
    }
}

/// The `Params.flags` of an op.
fn flags(problem: &Problem<'_>, bound: &Bound<'_>) -> u32 {
    let opts = problem.opts;
    [
        (opts.weight.is_some(), FLAG_WEIGHT),
        (opts.reduction == Reduction::Sum, FLAG_SUM),
        (opts.reduction == Reduction::Mean, FLAG_MEAN),
        (bound.grad_output.is_some(), FLAG_GRAD_BUFFER),
        (opts.empty == EmptyPolicy::Zero, FLAG_EMPTY_ZERO),
        (bound.in_place, FLAG_IN_PLACE),
        (problem.op == ClassIndexOp::CrossEntropyProbs, FLAG_PROB_TARGETS),
        (bound.lse.is_some(), FLAG_LSE),
        (bound.wants_argmax(), FLAG_ARGMAX),
    ]
    .into_iter()
    .filter(|&(on, _)| on)
    .fold(0, |flags, (_, flag)| flags | flag)
}

/// Word offsets of the extra outputs in the workspace's aux buffer, after the weights:
/// each row's lse, each row's argmax, two words per segment for split rows' argmax
/// partials, then the accuracy.
struct Aux {
    lse: u64,
    argmax: u64,
    arg_partials: u64,
    accuracy: u64,
}

impl Aux {
    /// Sizes the workspace for the op (its per-row losses, the weights, the extras) and
    /// lays the extras out.
    fn reserve(gpu: &Gpu, ws: &mut Workspace, problem: &Problem<'_>, bound: &Bound<'_>, split: u64) -> Self {
        let rows = problem.loss_rows;
        let argmax = bound.wants_argmax();
        let lse_words = if bound.lse.is_some() { rows } else { 0 };
        let argmax_words = if argmax { rows } else { 0 };
        let arg_partial_words = if argmax && split > 1 { 2 * rows * split } else { 0 };
        let accuracy_words = u64::from(bound.accuracy.is_some());
        let per_row_loss = problem.opts.reduction == Reduction::None && bound.loss.is_some();
        // The row losses, then the batch reductions' two partials per block.
        let row_loss_words = if per_row_loss { 0 } else { rows + 2 * rows.div_ceil(REDUCE_BLOCK) };
        let base = u64::from(ws.prepare(
            gpu,
            row_loss_words,
            problem.opts.weight.as_deref(),
            lse_words + argmax_words + arg_partial_words + accuracy_words,
        ));
        let argmax_off = base + lse_words;
        Self {
            lse: base,
            argmax: argmax_off,
            arg_partials: argmax_off + argmax_words,
            accuracy: argmax_off + argmax_words + arg_partial_words,
        }
    }
}
