//! import softmax/softmax
//! import shared/row_resident

// Row-wise log-softmax and softmax of short rows (classes ≤ 32), also of (N, C, d…)
// batches of as few classes: one invocation per row holds the row in registers
// (row_resident.wgsl, SLOTS quads), SOLO_WG rows per workgroup; no cross-invocation step.
//
// Layout: the Row bind-group layout with the scalar views of softmax.wgsl.
// Passes: reads each element once and writes it once, with one exp per element.

fn short_load(i0: u32, q: u32) -> vec4<f32> {
    let i = short_index(i0, q);
    let x = vec4<f32>(input[i.x], input[i.y], input[i.z], input[i.w]);
    return select(vec4<f32>(neg_inf_f32()), x, short_in_row(q));
}

fn short_store(i0: u32, q: u32, v: vec4<f32>) {
    let i = short_index(i0, q);
    let inside = short_in_row(q);
    if inside.x { output[i.x] = v.x; }
    if inside.y { output[i.y] = v.y; }
    if inside.z { output[i.z] = v.z; }
    if inside.w { output[i.w] = v.w; }
}

@compute @workgroup_size(SOLO_WG)
fn softmax_forward_short(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = solo_row_index(gid, nwg);
    if row >= params.rows { return; }
    let start = row_start(row);
    let i0 = params.input_off + start;
    let o0 = params.grad_off + start;
    var f = resident_start();
    let x$s = short_load(i0, $su);
    f = resident_fold(f, x$s);
    let mx = max4(f.m);
    var sum = vec4<f32>(0.0);
    let e$s = quad_exp(x$s, mx);
    sum += e$s;
    let r = softmax_row_of(short_totals(mx, sum, f));
    short_store(o0, $su, softmax_quad(r, x$s, e$s));
}
