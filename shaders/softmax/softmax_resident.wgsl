//! import softmax/softmax_vec4
//! import shared/row_resident

// Row-wise log-softmax and softmax with the row held on-chip (row_resident.wgsl): the
// same results as softmax.wgsl, for rows of a multiple of 4 classes at 16-byte-aligned
// offsets that fit in WG·SLOTS quads.
//
// Layout: the Row bind-group layout, input / output as vec4 arrays (softmax_vec4.wgsl).
// Passes: reads the row once and writes it once; the exps are computed once per element.

@compute @workgroup_size(WG)
fn softmax_forward_resident(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    if row >= params.rows { return; }
    let quads = params.classes / 4u;
    let base = (params.input_off + row * params.classes) / 4u;
    let out = (params.grad_off + row * params.classes) / 4u;
    var f = resident_start();
    let x$s = resident_pad(input4[base + min(lid + $su * WG, quads - 1u)], lid + $su * WG, quads);
    f = resident_fold(f, x$s);
    let mx = resident_max(f.m, lid);
    var sum = vec4<f32>(0.0);
    let e$s = quad_exp(x$s, mx);
    sum += e$s;
    let r = softmax_row_of(resident_totals(mx, sum, f, lid));
    if lid + $su * WG < quads { output4[out + lid + $su * WG] = softmax_quad(r, x$s, e$s); }
}
