//! import softmax/softmax_row

// Row-wise log-softmax and softmax over the contiguous class dimension, and their
// backward passes (LOG_SPACE chooses which, per pipeline). One workgroup (WG invocations)
// per row; rows beyond 65535 workgroups fold into the dispatch's y dimension.
//
// Short rows (classes ≤ SOLO_CLASSES) and every (N, C, spatial) batch take one invocation
// per row, SOLO_WG rows per workgroup (the *_solo kernels; with spatial > 1 the class
// dimension is strided by params.spatial and adjacent invocations read adjacent
// positions). Rows longer than one workgroup should hold are split into params.segments
// segments of params.seg_len classes: softmax_partials writes each segment's log-sum-exp
// partial and softmax_merged_forward merges a row's partials exactly before writing its
// segment.
//
// Layout: input / grad_output / output are rows × classes, row-major, starting at
// params.input_off / grad_output_off / grad_off elements into their bindings.
// Passes: forward reads the row twice (online log-sum-exp, then write) and writes it
// once; backward reads y and dy twice and writes dx once.
// Numerics: f32, max-subtracted; -inf logits give exactly -inf / 0; a row with a NaN or
// +inf, or with no finite logit, is all NaN (as PyTorch).

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(4) var<storage, read> grad_output: array<f32>;
@group(0) @binding(7) var<storage, read_write> output: array<f32>;

// Writes classes [begin, end) of a row's log-softmax (or softmax) from its statistics:
// invocation `first` of `stride` writes every stride-th class, each as one lane of the quad
// helpers (compilers drop the three unused lanes).
fn write_softmax_segment(row: u32, t: RowTotals, begin: u32, end: u32, first: u32, stride: u32) {
    let base = row_start(row);
    let sp = params.spatial;
    let r = softmax_row_of(t);
    for (var c = begin + first; c < end; c += stride) {
        let x = vec4<f32>(input[params.input_off + base + c * sp]);
        output[params.grad_off + base + c * sp] = softmax_quad(r, x, quad_exp(x, t.m)).x;
    }
}

// The statistics of classes [begin, end) of a row.
fn softmax_stats(row: u32, begin: u32, end: u32, lid: u32) -> RowTotals {
    let base = params.input_off + row_start(row);
    let sp = params.spatial;
    var s = stats_start();
    // Four classes per step (stride WG apart, so each load is contiguous across the
    // invocations), then the tail one at a time.
    var c = begin + lid;
    for (; c + 3u * WG < end; c += 4u * WG) {
        let x = vec4<f32>(input[base + c * sp], input[base + (c + WG) * sp], input[base + (c + 2u * WG) * sp], input[base + (c + 3u * WG) * sp]);
        stats_push4(&s, x);
    }
    for (; c < end; c += WG) {
        stats_push(&s, input[base + c * sp], 1.0);
    }
    return row_totals(s, lid);
}

@compute @workgroup_size(WG)
fn softmax_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    if row < params.rows {
        write_softmax_segment(row, softmax_stats(row, 0u, params.classes, lid), 0u, params.classes, lid, WG);
    }
}

// Pass 1 of split rows: one workgroup per (row, segment) writes the segment's partial.
@compute @workgroup_size(WG)
fn softmax_partials(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let index = workgroup_index(wid, nwg);
    if index >= params.rows * params.segments { return; }
    let s = segment_of(index);
    let t = softmax_stats(s.row, s.begin, s.end, lid);
    if lid == 0u {
        store_partial_totals(s.partial, t, 0.0, false);
    }
}

// Pass 2 of split rows: each (row, segment) workgroup merges the row's partials and writes
// its segment.
@compute @workgroup_size(WG)
fn softmax_merged_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let index = workgroup_index(wid, nwg);
    if index < params.rows * params.segments {
        let s = segment_of(index);
        write_softmax_segment(s.row, merged_row(s.row).totals, s.begin, s.end, lid, WG);
    }
}

// dx from the forward output y and upstream dy. LOG_SPACE: dx = dy - exp(y)·Σdy;
// otherwise dx = y·(dy - Σ y·dy). A -inf y (log space only) has exp(y) = 0, so dx = dy;
// a row with any other non-finite y or a non-finite dy is NaN.
// backward_sum folds invocation `first` of `stride`'s share of Σdy (or Σ y·dy), with
// ROW_POISON in .y's bits for a bad value; backward_write writes that share of dx.
fn backward_sum(row: u32, first: u32, stride: u32) -> vec2<f32> {
    let base = row_start(row);
    var acc = 0.0;
    var flags = 0u;
    for (var c = first; c < params.classes; c += stride) {
        let i = base + c * params.spatial;
        let y = input[params.input_off + i];
        let dy = grad_output[params.grad_output_off + i];
        let y_ok = is_finite_bits(y) || (LOG_SPACE && is_neg_inf(y));
        if !is_finite_bits(dy) || !y_ok {
            flags = ROW_POISON;
        } else if LOG_SPACE {
            acc += dy;
        } else {
            acc += y * dy;
        }
    }
    return vec2<f32>(acc, bitcast<f32>(flags));
}

fn backward_write(row: u32, first: u32, stride: u32, total: f32, poisoned: bool) {
    let base = row_start(row);
    for (var c = first; c < params.classes; c += stride) {
        let i = base + c * params.spatial;
        let y = input[params.input_off + i];
        let dy = grad_output[params.grad_output_off + i];
        var v = nan_f32();
        if !poisoned {
            if is_neg_inf(y) {
                v = dy;
            } else if LOG_SPACE {
                v = dy - exp(y) * total;
            } else {
                v = y * (dy - total);
            }
        }
        output[params.grad_off + i] = v;
    }
}

@compute @workgroup_size(WG)
fn softmax_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    if row >= params.rows { return; }
    let part = backward_sum(row, lid, WG);
    let total = row_sum4(vec4<f32>(part.x, 0.0, 0.0, 0.0), lid).x;
    let poisoned = row_or(bitcast<u32>(part.y), lid) != 0u;
    backward_write(row, lid, WG, total, poisoned);
}

@compute @workgroup_size(SOLO_WG)
fn softmax_backward_solo(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = solo_row_index(gid, nwg);
    if row < params.rows {
        let part = backward_sum(row, 0u, 1u);
        backward_write(row, 0u, 1u, part.x, bitcast<u32>(part.y) != 0u);
    }
}

@compute @workgroup_size(SOLO_WG)
fn softmax_forward_solo(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = solo_row_index(gid, nwg);
    if row >= params.rows { return; }
    let base = params.input_off + row_start(row);
    var s = stats_empty();
    for (var c = 0u; c < params.classes; c++) {
        stats_push(&s, input[base + c * params.spatial], 1.0);
    }
    write_softmax_segment(row, solo_totals(s), 0u, params.classes, 0u, 1u);
}
