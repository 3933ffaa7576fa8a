//! The last stage: the parameters written, the bind groups made (the batch's, then one per
//! row chunk), the batch state cleared, the dispatches recorded in one compute pass, and
//! the extra outputs copied from the workspace to the caller's buffers.

use super::plan::Plan;
use super::validate::Bound;
use crate::error::Result;
use crate::gpu::{Binding, Dispatch, Gpu, Layout, Workspace};

pub(crate) fn record(
    gpu: &Gpu, encoder: &mut wgpu::CommandEncoder, ws: &mut Workspace, bound: &Bound<'_>, plan: &Plan,
    dispatches: &[Dispatch],
) -> Result<()> {
    ws.set_params(gpu, &plan.params);
    let groups = bind_groups(gpu, ws, plan)?;
    ws.clear_batch(encoder);
    let dispatches: Vec<Dispatch> = dispatches.iter().map(|d| d.on(bound.precision)).collect();
    gpu.record(encoder, &groups, &dispatches);
    copy_extras(encoder, ws, bound, plan);
    Ok(())
}

/// The op's bind groups, parameter slot `k` in group `k`: the batch's (group 0, which binds
/// the first chunk's matrices), then one per row chunk.
pub(crate) fn bind_groups(gpu: &Gpu, ws: &mut Workspace, plan: &Plan) -> Result<Vec<wgpu::BindGroup>> {
    let placeholder = Binding::placeholder(gpu);
    std::iter::once(&plan.chunks[0])
        .chain(&plan.chunks)
        .enumerate()
        .map(|(slot, chunk)| {
            let or = |b: &Option<Binding>, spare: Binding| b.clone().unwrap_or(spare);
            let entries = [
                (0, ws.params(slot)),
                (1, or(&chunk.input, placeholder.clone())),
                (2, chunk.targets.clone()),
                (3, ws.aux()),
                (4, or(&plan.grad_output, placeholder.clone())),
                (5, ws.batch()),
                (6, or(&plan.row_loss, ws.row_losses())),
                (7, or(&chunk.grad, ws.spare_grad())),
                (8, or(&plan.loss_out, ws.spare_loss())),
            ];
            ws.bind_group(gpu, Layout::ClassIndex, &entries)
        })
        .collect()
}

/// Records the copies of the extra outputs from the workspace to the caller's buffers.
pub(crate) fn copy_extras(encoder: &mut wgpu::CommandEncoder, ws: &Workspace, bound: &Bound<'_>, plan: &Plan) {
    let rows = u64::from(plan.params[0].rows);
    for (slice, at, words) in [
        (&bound.lse, plan.lse_off, rows),
        (&bound.argmax, plan.argmax_off, rows),
        (&bound.accuracy, plan.accuracy_off, 1),
    ] {
        if let Some(slice) = slice {
            encoder.copy_buffer_to_buffer(ws.aux_buffer(), at * 4, slice.buffer(), slice.offset(), words * 4);
        }
    }
}
