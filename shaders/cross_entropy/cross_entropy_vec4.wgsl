//! import cross_entropy/cross_entropy

// Cross-entropy from class indices for plain rows (as cross_entropy_resident.wgsl) too
// long to hold on-chip, read as vec4: rows of a multiple of 4 classes at 16-byte-aligned
// offsets, whole (one workgroup per row) or split into segments of a multiple of 4
// classes (cross_entropy_partials_vec4, then cross_entropy_merged_forward_backward_vec4;
// the loss alone merges in cross_entropy_merged_forward).
//
// Layout: see class_index.wgsl, with the logits and gradient viewed as vec4
// (shared/format/f32x4.wgsl). In place, the logits are bound as `grad` and overwritten.
// Passes: the statistics read the logits once (online log-sum-exp, stats_push4); the
// gradient reads them again and writes the gradient once.

// Quad q of the logits: from `grad` when IN_PLACE.
fn logits4(q: u32) -> vec4<f32> {
    if IN_PLACE {
        return load_grad4(q);
    }
    return load_input4(q);
}

// The statistics of quads [first, end) from `base` of a row, folded by the workgroup.
fn streamed_totals(base: u32, first: u32, end: u32, lid: u32) -> RowTotals {
    var s = stats_start();
    for (var q = first + lid; q < end; q += WG) {
        stats_push4(&s, logits4(base + q));
    }
    return row_totals(s, lid);
}

// Writes the gradient of quads [first, end) of a row from its merged totals.
fn streamed_grad(row: u32, rt: RowTarget, t: RowTotals, first: u32, end: u32, lid: u32) {
    let p = plain_grad(row, rt, t);
    let base = logits_start(row) / 4u;
    let out = (params.grad_off + row_start(row)) / 4u;
    for (var q = first + lid; q < end; q += WG) {
        store_grad4(out + q, plain_grad_quad(p, quad_exp(logits4(base + q), t.m), quad_classes(q)));
    }
}

// One workgroup per row: the row's loss, and with BACKWARD its gradient.
@compute @workgroup_size(WG)
fn cross_entropy_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    if row >= params.rows { return; }
    let rt = target_of(row);
    // Read before the row's reduction: in place, the gradient overwrites it afterwards.
    let x_target = target_logit(row, rt);
    let quads = params.classes / 4u;
    let t = streamed_totals(logits_start(row) / 4u, 0u, quads, lid);
    if lid == 0u {
        finish_plain_row(row, rt, t, x_target);
    }
    if BACKWARD {
        streamed_grad(row, rt, t, 0u, quads, lid);
    }
}

// Pass 1 of split rows: one workgroup per (row, segment) writes the segment's partial,
// with the target logit when the target falls in the segment.
@compute @workgroup_size(WG)
fn cross_entropy_partials_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let index = workgroup_index(wid, nwg);
    if index >= params.rows * params.segments { return; }
    let s = segment_of(index);
    let rt = target_of(s.row);
    let base = (params.input_off + row_start(s.row)) / 4u;
    let t = streamed_totals(base, s.begin / 4u, s.end / 4u, lid);
    if lid == 0u {
        store_segment_partial(s, rt, t);
    }
}

// Pass 2 of split rows: each (row, segment) workgroup merges the row's partials, the first
// segment writes the row's loss, and every segment writes its gradient.
@compute @workgroup_size(WG)
fn cross_entropy_merged_forward_backward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let index = workgroup_index(wid, nwg);
    if index >= params.rows * params.segments { return; }
    let s = segment_of(index);
    let merged = merged_row(s.row);
    let rt = target_of(s.row);
    if lid == 0u && s.begin == 0u {
        finish_merged_row(s.row, rt, merged);
    }
    streamed_grad(s.row, rt, merged.totals, s.begin / 4u, s.end / 4u, lid);
}
