//! import cross_entropy/cross_entropy
//! import shared/row_resident

// Cross-entropy from class indices for short rows (classes ≤ 32) and (N, C, d…) batches of
// as few classes: one invocation per row holds the row in registers (row_resident.wgsl,
// SLOTS quads), SOLO_WG rows per workgroup, for plain rows as cross_entropy_resident.wgsl.
//
// Layout: see class_index.wgsl, logits and gradient read through the element format
// (any precision; class c of row r at row_start(r) + c·spatial).
// Passes: reads the logits once; forward+backward writes the gradient once from the
// registers, with one exp per element.

// Classes 4q … 4q+3 of the row whose class 0 is element i0: from `grad` when IN_PLACE,
// -inf past the row's end.
fn short_logits(i0: u32, q: u32) -> vec4<f32> {
    let i = short_index(i0, q);
    var x: vec4<f32>;
    if IN_PLACE {
        x = vec4<f32>(load_grad(i.x), load_grad(i.y), load_grad(i.z), load_grad(i.w));
    } else {
        x = vec4<f32>(load_input(i.x), load_input(i.y), load_input(i.z), load_input(i.w));
    }
    return select(vec4<f32>(neg_inf_f32()), x, short_in_row(q));
}

fn short_store_grad(i0: u32, q: u32, v: vec4<f32>) {
    let i = short_index(i0, q);
    let inside = short_in_row(q);
    if inside.x { store_grad(i.x, v.x); }
    if inside.y { store_grad(i.y, v.y); }
    if inside.z { store_grad(i.z, v.z); }
    if inside.w { store_grad(i.w, v.w); }
}

@compute @workgroup_size(SOLO_WG)
fn cross_entropy_forward_short(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = solo_row_index(gid, nwg);
    if row >= params.rows { return; }
    let rt = target_of(row);
    // Read before anything is written: in place, the gradient overwrites it.
    let x_target = target_logit(row, rt);
    let i0 = logits_start(row);
    var f = resident_start();
    let x$s = short_logits(i0, $su);
    f = resident_fold(f, x$s);
    let mx = max4(f.m);
    var sum = vec4<f32>(0.0);
    let e$s = quad_exp(x$s, mx);
    sum += e$s;
    let t = short_totals(mx, sum, f);
    finish_plain_row(row, rt, t, x_target);
    if !BACKWARD { return; }
    let p = plain_grad(row, rt, t);
    short_store_grad(params.grad_off + row_start(row), $su, plain_grad_quad(p, e$s, quad_classes($su)));
}
