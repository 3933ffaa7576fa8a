//! The class-index wing: NLL, cross-entropy (class indices and probability targets) and
//! vocabulary-parallel shards share one pipeline of stages, a module each —
//! [`validate`] (the problem, then the caller's buffers) → [`plan`] (row chunks, segments,
//! the workspace's layout, parameters) → [`select`] (which kernels) → [`record`] (bind
//! groups, dispatches, copies). [`slice`] uploads and reads back around the same stages;
//! the public methods live in `cross_entropy.rs`, `nll.rs` and `partials.rs`.

mod buffers;
mod cross_entropy;
mod nll;
mod partials;
mod plan;
mod record;
mod select;
mod slice;
mod validate;

pub use buffers::LossBuffers;
pub use partials::{ClassShard, RowPartial, cross_entropy_from_partials, merge_row_partials};
pub(crate) use plan::{Chunk, Plan};
pub(crate) use record::{bind_groups, copy_extras};
pub(crate) use select::dispatches;
pub(crate) use slice::Wanted;
pub(crate) use validate::{Bound, Problem, check_copy_target};

use crate::error::Result;
use crate::gpu::{Gpu, Workspace};

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

    fn is_shard(self) -> bool {
        matches!(self, ClassIndexOp::ShardPartials(_) | ClassIndexOp::ShardGrad(_))
    }
}

/// Records `problem` on `buffers` into `encoder`, stage by stage; nothing is recorded
/// unless every buffer is right.
fn encode(
    gpu: &Gpu, encoder: &mut wgpu::CommandEncoder, ws: &mut Workspace, problem: &Problem<'_>, buffers: &LossBuffers<'_>,
) -> Result<()> {
    let bound = validate::Bound::check(gpu, problem, buffers)?;
    let plan = plan::Plan::new(gpu, ws, problem, &bound)?;
    let dispatches = select::dispatches(gpu, problem, &bound, &plan);
    record::record(gpu, encoder, ws, &bound, &plan, &dispatches)
}
