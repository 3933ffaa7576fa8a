//! import softmax/softmax_vec4
//! import shared/row_resident
//! import shared/row_packed

// Row-wise log-softmax and softmax of short rows of an even number of classes (≤ 32; as
// softmax_short.wgsl) at 16-byte-aligned offsets, read and written as whole vec4: one
// invocation takes PACK consecutive rows (shared/row_packed.wgsl), SOLO_WG invocations per
// workgroup. The host dispatches whole packs only (rows a multiple of PACK); a batch's last
// row of an incomplete pack takes softmax_short.wgsl.
//
// Layout: the Row bind-group layout with the vec4 views of softmax_vec4.wgsl.
// Passes: reads each element once and writes it once, with one exp per element.
// Numerics: each row exactly as softmax_short.wgsl (the same quads folded in the same
// order), so the two give the same bits.

// Row j of the block: its log-softmax (or softmax) into `out`.
fn packed_softmax_row(block: ptr<function, Block>, out: ptr<function, Block>, j: u32) {
    var f = resident_start();
    let x$s = packed_quad(block, j, $su);
    f = resident_fold(f, x$s);
    let mx = max4(f.m);
    var sum = vec4<f32>(0.0);
    let e$s = quad_exp(x$s, mx);
    sum += e$s;
    let r = softmax_row_of(short_totals(mx, sum, f));
    packed_put(out, j, $su, softmax_quad(r, x$s, e$s));
}

@compute @workgroup_size(SOLO_WG)
fn softmax_forward_packed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let first = solo_row_index(gid, nwg) * PACK;
    if first >= params.rows { return; }
    var block: Block;
    let at = (params.input_off + row_start(first)) / 4u;
    for (var k = 0u; k < QUADS; k++) {
        block[k] = input4[at + k];
    }
    var out: Block;
    packed_softmax_row(&block, &out, 0u);
    if PACK > 1u {
        packed_softmax_row(&block, &out, 1u);
    }
    let to = (params.grad_off + row_start(first)) / 4u;
    for (var k = 0u; k < QUADS; k++) {
        output4[to + k] = out[k];
    }
}
