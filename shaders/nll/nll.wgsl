//! import shared/class_index

// Negative log-likelihood gathered from log-probabilities, and its gradient.
// Layout: see class_index.wgsl. Both kernels are 256 invocations per workgroup with the
// workgroups folded into the dispatch's x and y.
// nll_forward: one invocation per row, reads one element of the row (no row pass).
// nll_backward: one invocation per element, writes the rows × classes gradient once.
// (N, C, spatial) inputs: rows are (n, position) pairs, classes strided by params.spatial.

const NLL_WG: u32 = 256u;

@compute @workgroup_size(256)
fn nll_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = workgroup_index(wid, nwg) * NLL_WG + lid;
    if row >= params.rows { return; }
    let t = row_target(row);
    let kind = target_kind(t);
    var loss = ext_kind(EXT_NAN);
    if kind == TARGET_IGNORED {
        loss = ext(0.0);
    } else if kind == TARGET_INVALID {
        report_bad_target(row);
    } else {
        let lp = ext_from(load_input(params.input_off + row_start(row) + u32(t) * params.spatial));
        loss = ext_scale(lp, -class_weight(u32(t)));
    }
    row_loss[params.row_loss_off + row] = ext_to_f32(loss);
}

@compute @workgroup_size(256)
fn nll_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = workgroup_index(wid, nwg) * NLL_WG + lid;
    if i >= params.rows * params.classes { return; }
    // Element i of an (N, C, spatial) gradient (spatial = 1: rows × classes).
    let per_n = params.classes * params.spatial;
    let n = i / per_n;
    let within = i - n * per_n;
    let c = within / params.spatial;
    let row = n * params.spatial + (within - c * params.spatial);
    let t = row_target(row);
    let kind = target_kind(t);
    var v = 0.0;
    if kind == TARGET_INVALID {
        v = nan_f32();
        if c == 0u {
            report_bad_target(row);
        }
    } else if kind == TARGET_VALID {
        let g = upstream_grad(row);
        if g.k != EXT_FINITE {
            v = nan_f32();
        } else if c == u32(t) {
            v = -class_weight(c) * g.v;
        }
    }
    store_grad(params.grad_off + i, v);
}
