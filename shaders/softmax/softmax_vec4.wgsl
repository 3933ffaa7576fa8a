//! import softmax/softmax_row

// Row-wise log-softmax and softmax for rows too long to hold on-chip whose classes and
// offsets are multiples of 4: the same results as softmax.wgsl, read and written as
// vec4<f32>. One 16-byte load or store per invocation per step instead of four 4-byte
// ones; on CPU adapters (lavapipe, llvmpipe), where every invocation's access is its own
// memory operation, that is most of the kernel's time. Whole rows take one workgroup
// each; split rows (segments of a multiple of 4 classes) write each segment's partial
// (softmax_partials_vec4), then merge them and write the segment
// (softmax_merged_forward_vec4).
//
// Layout: the Row bind-group layout, with input / output viewed as vec4 arrays:
// params.input_off, grad_off and classes are multiples of 4 (the host checks).
// Passes: reads the row twice (statistics, then output) and writes it once.

@group(0) @binding(1) var<storage, read> input4: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> output4: array<vec4<f32>>;

// The statistics of quads [first, end) of a row, folded by the workgroup.
fn softmax_stats_vec4(row: u32, first: u32, end: u32, lid: u32) -> RowTotals {
    let base = (params.input_off + row * params.classes) / 4u;
    var s = stats_start();
    for (var q = first + lid; q < end; q += WG) {
        stats_push4(&s, input4[base + q]);
    }
    return row_totals(s, lid);
}

// Writes quads [first, end) of a row's log-softmax (or softmax) from its totals.
fn write_softmax_vec4(row: u32, t: RowTotals, first: u32, end: u32, lid: u32) {
    let base = (params.input_off + row * params.classes) / 4u;
    let out = (params.grad_off + row * params.classes) / 4u;
    let r = softmax_row_of(t);
    for (var q = first + lid; q < end; q += WG) {
        let x = input4[base + q];
        output4[out + q] = softmax_quad(r, x, quad_exp(x, t.m));
    }
}

@compute @workgroup_size(WG)
fn softmax_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    let quads = params.classes / 4u;
    if row < params.rows {
        write_softmax_vec4(row, softmax_stats_vec4(row, 0u, quads, lid), 0u, quads, lid);
    }
}

// Pass 1 of split rows: one workgroup per (row, segment) writes the segment's partial.
@compute @workgroup_size(WG)
fn softmax_partials_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let index = workgroup_index(wid, nwg);
    if index >= params.rows * params.segments { return; }
    let s = segment_of(index);
    let t = softmax_stats_vec4(s.row, s.begin / 4u, s.end / 4u, lid);
    if lid == 0u {
        store_partial_totals(s.partial, t, 0.0, false);
    }
}

// Pass 2 of split rows: each (row, segment) workgroup merges the row's partials and writes
// its segment.
@compute @workgroup_size(WG)
fn softmax_merged_forward_vec4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let index = workgroup_index(wid, nwg);
    if index < params.rows * params.segments {
        let s = segment_of(index);
        write_softmax_vec4(s.row, merged_row(s.row).totals, s.begin / 4u, s.end / 4u, lid);
    }
}
