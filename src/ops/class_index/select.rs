//! The third stage: which kernels record a class-index op, in order. It reads like the
//! README's "How it runs" table: a row of at most 32 classes (or an `(N, C, d…)` batch) is
//! one invocation's, held in its registers when the row is plain — plain f32 rows of an
//! even length at 16-byte-aligned offsets one or two per invocation, read and written as
//! whole vec4; a plain row of a multiple of 4 classes at 16-byte-aligned offsets is read as
//! vec4, held in registers where it fits; a row longer than twice the segment length is
//! split into segments; anything else takes the general kernels. The mean's divisor comes
//! first where the gradient needs it, the batch reductions last.

use super::ClassIndexOp;
use super::plan::{Chunk, Plan};
use super::validate::{Bound, Problem};
use crate::gpu::{Dispatch, Gpu, Kernel, NLL_WG, REDUCE_BLOCK, SOLO_CLASSES, SOLO_ROWS_PER_WORKGROUP};
use crate::options::{Precision, Reduction};

/// A kernel and the quads per invocation it is unrolled for (0: not unrolled).
type Unrolled = (Kernel, u32);

/// What the kernels of a row chunk are chosen by.
struct Row {
    /// Plain f32 rows (and segments) of a multiple of 4 classes at 16-byte-aligned offsets.
    vec4: bool,
    /// One invocation per row: at most 32 classes, or an `(N, C, d…)` batch.
    solo: bool,
    /// Quads per invocation where whole rows are held by a workgroup / by an invocation.
    resident: Option<u32>,
    short: Option<u32>,
    /// Rows per invocation of the packed kernels, where they may take a chunk (the plan's).
    packed: Option<u64>,
    classes: u32,
    wants_grad: bool,
    in_place: bool,
}

impl Row {
    fn of(gpu: &Gpu, problem: &Problem<'_>, bound: &Bound<'_>, plan: &Plan) -> Self {
        let (opts, classes) = (problem.opts, problem.classes);
        let plain = problem.is_plain(bound);
        let vec4 = plain
            && opts.spatial == 1
            && classes.is_multiple_of(4)
            && plan.seg_len.is_multiple_of(4)
            && bound.precision == Precision::F32
            && plan.quad_aligned();
        Self {
            vec4,
            solo: problem.op.is_cross_entropy() && (opts.spatial > 1 || classes <= SOLO_CLASSES),
            resident: (vec4 && plan.segments == 1).then(|| gpu.resident_slots(classes)).flatten(),
            short: plain.then(|| gpu.short_slots(classes)).flatten(),
            packed: plan.packed,
            classes: classes as u32,
            wants_grad: bound.grad.is_some(),
            in_place: bound.in_place,
        }
    }

    /// Of a family's forward, forward+backward and in-place forward+backward kernel, the
    /// one this op takes.
    fn pick(&self, [forward, backward, backward_in_place]: [Unrolled; 3]) -> Unrolled {
        match (self.wants_grad, self.in_place) {
            (false, _) => forward,
            (true, false) => backward,
            (true, true) => backward_in_place,
        }
    }

    /// A chunk of short rows: whole packs of them at a 16-byte-aligned offset in the packed
    /// kernels (built for the row length), else one row per invocation. `(kernel, rows per
    /// invocation)`.
    fn short_kernel(&self, chunk: &Chunk) -> (Unrolled, u64) {
        match self.packed {
            Some(pack) if chunk.rows.is_multiple_of(pack) && chunk.quad_aligned() => {
                let kernels = [
                    Kernel::CrossEntropyPackedForward,
                    Kernel::CrossEntropyPackedForwardBackward,
                    Kernel::CrossEntropyPackedForwardBackwardInPlace,
                ];
                (self.pick(kernels.map(|k| (k, self.classes))), pack)
            }
            _ => (self.solo_kernel(), 1),
        }
    }

    /// Rows held by one invocation each: in its registers when plain, else the general
    /// one-invocation kernels (which read the in-place flag from the parameters).
    fn solo_kernel(&self) -> Unrolled {
        self.pick(match self.short {
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
        })
    }

    /// Whole rows, one workgroup each: held in registers, read as vec4, or read one by one.
    fn whole_row_kernel(&self) -> Unrolled {
        self.pick(match (self.resident, self.vec4) {
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
            (None, false) => {
                [Kernel::CrossEntropyForward, Kernel::CrossEntropyForwardBackward, Kernel::CrossEntropyForwardBackward]
                    .map(|k| (k, 0))
            }
        })
    }

    /// Split rows: each segment's partial, then the merge (per segment for the gradient,
    /// per row for the loss alone); plain rows not in place read their segments as vec4.
    fn split_kernels(&self, rows: u64, segments: u64) -> [(Kernel, u64); 2] {
        let vec4 = self.vec4 && !self.in_place;
        let partials = if vec4 { Kernel::CrossEntropyPartialsVec4 } else { Kernel::CrossEntropyPartials };
        let merged = match (self.wants_grad, vec4) {
            (true, true) => (Kernel::CrossEntropyMergedForwardBackwardVec4, rows * segments),
            (true, false) => (Kernel::CrossEntropyMergedForwardBackward, rows * segments),
            (false, _) => (Kernel::CrossEntropyMergedForward, rows),
        };
        [(partials, rows * segments), merged]
    }
}

/// Every dispatch of the op, in order. Group 0 binds the batch; group `k + 1` row chunk `k`.
pub(crate) fn dispatches(gpu: &Gpu, problem: &Problem<'_>, bound: &Bound<'_>, plan: &Plan) -> Vec<Dispatch> {
    let row = Row::of(gpu, problem, bound, plan);
    let split = u64::from(plan.segments);
    let mut dispatches = Vec::with_capacity(4 + 2 * plan.chunks.len());
    let reduced = bound.loss.is_some() && problem.opts.reduction != Reduction::None;
    let blocks = problem.loss_rows.div_ceil(REDUCE_BLOCK);
    // The gradient of a mean needs its divisor first; a mean's loss alone sums it with the
    // losses (the same blocks, so the same bits).
    if problem.opts.reduction == Reduction::Mean && (row.wants_grad || !reduced) {
        dispatches.extend(batch_reduction(Kernel::TargetWeightBlocks, Kernel::TargetWeightTotal, blocks));
    }
    for (k, chunk) in plan.chunks.iter().enumerate() {
        let (group, n) = (k + 1, chunk.rows);
        match problem.op {
            ClassIndexOp::ShardPartials(_) => dispatches.push(Dispatch::new(Kernel::CrossEntropyPartials, n, group)),
            ClassIndexOp::ShardGrad(_) => {
                dispatches.push(Dispatch::new(Kernel::CrossEntropyMergedForwardBackward, n, group))
            }
            ClassIndexOp::CrossEntropy | ClassIndexOp::CrossEntropyProbs if split > 1 => {
                for (kernel, workgroups) in row.split_kernels(n, split) {
                    dispatches.push(Dispatch::new(kernel, workgroups, group));
                }
            }
            ClassIndexOp::CrossEntropy | ClassIndexOp::CrossEntropyProbs if row.solo => {
                let (kernel, per_invocation) = row.short_kernel(chunk);
                let workgroups = (n / per_invocation).div_ceil(SOLO_ROWS_PER_WORKGROUP);
                dispatches.push(Dispatch::unrolled(kernel, workgroups, group));
            }
            ClassIndexOp::CrossEntropy | ClassIndexOp::CrossEntropyProbs => {
                dispatches.push(Dispatch::unrolled(row.whole_row_kernel(), n, group));
            }
            ClassIndexOp::Nll => {
                let per_workgroup = u64::from(NLL_WG);
                if bound.loss.is_some() {
                    dispatches.push(Dispatch::new(Kernel::NllForward, n.div_ceil(per_workgroup), group));
                }
                if row.wants_grad {
                    let elements = n * problem.classes as u64;
                    dispatches.push(Dispatch::new(Kernel::NllBackward, elements.div_ceil(per_workgroup), group));
                }
            }
        }
    }
    // The loss's reduction records the bad target's value; without one, a pass of its own.
    if reduced {
        dispatches.extend(batch_reduction(Kernel::LossBlocks, Kernel::ReduceLosses, blocks));
    } else if problem.op != ClassIndexOp::CrossEntropyProbs {
        dispatches.push(Dispatch::new(Kernel::RecordBadTargetValue, 1, 0));
    }
    if bound.accuracy.is_some() {
        dispatches.push(Dispatch::new(Kernel::ReduceAccuracy, 1, 0));
    }
    dispatches
}

/// A batch reduction over `blocks` blocks of rows: a workgroup per block, then one that
/// combines their partials (a single block has its totals from the first).
fn batch_reduction(per_block: Kernel, totals: Kernel, blocks: u64) -> impl Iterator<Item = Dispatch> {
    std::iter::once(Dispatch::new(per_block, blocks, 0)).chain((blocks > 1).then(|| Dispatch::new(totals, 1, 0)))
}
