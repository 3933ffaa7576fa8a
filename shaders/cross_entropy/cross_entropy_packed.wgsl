//! import cross_entropy/cross_entropy_vec4
//! import shared/row_resident
//! import shared/row_packed

// Cross-entropy from class indices for plain short rows of an even number of classes
// (≤ 32; as cross_entropy_short.wgsl) at 16-byte-aligned offsets, read and written as
// whole vec4: one invocation takes PACK consecutive rows, the fewest whose classes fill
// whole quads (one row of a multiple of 4 classes, else two: QUADS quads), SOLO_WG
// invocations per workgroup. A row of ten classes read one element at a time costs a CPU
// adapter ten scattered loads; two of them are five aligned vec4 loads here. (Odd row
// lengths would take four rows per invocation: a pipeline four rows long to build for
// each, for the rarer case; they stay with cross_entropy_short.wgsl.)
//
// The block of rows and its pipeline per row length: see shared/row_packed.wgsl. The host
// dispatches whole packs only (rows a multiple of PACK); a batch's last rows of an
// incomplete pack take cross_entropy_short.wgsl.
//
// Layout: see class_index.wgsl, logits and gradient viewed as vec4 (shared/format/f32x4);
// in place, the logits are bound as `grad`, read whole before any of the block is written.
// Passes: reads the logits once; forward+backward writes the gradient once from the
// registers, with one exp per element.
// Numerics: each row exactly as cross_entropy_short.wgsl (the same quads folded in the
// same order), so the two give the same bits.

// The target's logit from the row's quads (0 when the target is not a class of the row;
// the loss reads it only for a valid target), chosen by its bits.
fn packed_target_logit(rt: RowTarget, bits: vec4<u32>) -> f32 {
    return bitcast<f32>(select(0u, (bits.x | bits.y) | (bits.z | bits.w), target_in_memory(rt)));
}

// Row j of the block (batch row `row`): its loss, and with BACKWARD its gradient into `out`.
fn packed_row(block: ptr<function, Block>, out: ptr<function, Block>, row: u32, j: u32) {
    let rt = target_of(row);
    let t = vec4<u32>(u32(rt.t));
    var f = resident_start();
    var target_bits = vec4<u32>(0u);
    let x$s = packed_quad(block, j, $su);
    f = resident_fold(f, x$s);
    target_bits |= select(vec4<u32>(0u), bitcast<vec4<u32>>(x$s), quad_classes($su) == t);
    let mx = max4(f.m);
    var sum = vec4<f32>(0.0);
    let e$s = quad_exp(x$s, mx);
    sum += e$s;
    let totals = short_totals(mx, sum, f);
    finish_plain_row(row, rt, totals, packed_target_logit(rt, target_bits));
    if !BACKWARD { return; }
    let p = plain_grad(row, rt, totals);
    packed_put(out, j, $su, plain_grad_quad(p, e$s, quad_classes($su)));
}

@compute @workgroup_size(SOLO_WG)
fn cross_entropy_forward_packed(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let first = solo_row_index(gid, nwg) * PACK;
    if first >= params.rows { return; }
    var block: Block;
    let at = logits_start(first) / 4u;
    for (var k = 0u; k < QUADS; k++) {
        block[k] = logits4(at + k);
    }
    var out: Block;
    packed_row(&block, &out, first, 0u);
    if PACK > 1u {
        packed_row(&block, &out, first + 1u, 1u);
    }
    if !BACKWARD { return; }
    let to = (params.grad_off + row_start(first)) / 4u;
    for (var k = 0u; k < QUADS; k++) {
        store_grad4(to + k, out[k]);
    }
}
