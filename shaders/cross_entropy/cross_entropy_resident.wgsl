//! import cross_entropy/cross_entropy_vec4
//! import shared/row_resident

// Cross-entropy from class indices with the row held on-chip (row_resident.wgsl), for
// plain rows (no label smoothing, probability targets, soft-capping or argmax; class
// weights, z-loss, the per-row lse and every reduction as cross_entropy.wgsl) of a multiple
// of 4 classes at 16-byte-aligned offsets that fit in WG·SLOTS quads.
//
// Layout: see class_index.wgsl, with the logits and gradient viewed as vec4
// (shared/format/f32x4.wgsl, read through cross_entropy_vec4.wgsl's logits4). In place, the
// logits are bound as `grad` and overwritten.
// Passes: reads the logits once; forward+backward writes the gradient once from the
// registers, with one exp per element.
// Numerics: the loss exactly as cross_entropy.wgsl (finish_row); the gradient
// g·(e·q_sum/Σ - q[t]·[c = t]), e = exp(x - max) held from the statistics.

@compute @workgroup_size(WG)
fn cross_entropy_forward_resident(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    if row >= params.rows { return; }
    let rt = target_of(row);
    // Read before the row's reduction: in place, the gradient overwrites it afterwards.
    let x_target = target_logit(row, rt);
    let quads = params.classes / 4u;
    let base = logits_start(row) / 4u;
    var f = resident_start();
    let x$s = resident_pad(logits4(base + min(lid + $su * WG, quads - 1u)), lid + $su * WG, quads);
    f = resident_fold(f, x$s);
    let mx = resident_max(f.m, lid);
    var sum = vec4<f32>(0.0);
    let e$s = quad_exp(x$s, mx);
    sum += e$s;
    let t = resident_totals(mx, sum, f, lid);
    if lid == 0u {
        finish_plain_row(row, rt, t, x_target);
    }
    if !BACKWARD { return; }
    let p = plain_grad(row, rt, t);
    let out = (params.grad_off + row_start(row)) / 4u;
    if lid + $su * WG < quads { store_grad4(out + lid + $su * WG, plain_grad_quad(p, e$s, quad_classes(lid + $su * WG))); }
}
