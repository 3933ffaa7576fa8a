//! import linear_cross_entropy/params
// ∂b of the fused linear + cross-entropy op: ∂b[v] = Σ_t G[t, v] over a chunk's tokens
// (m = tokens, n = V, G at a_off with row stride a_sm), added in token order as the
// products add them, from C when accumulating: one invocation per class. No float atomics.

@group(0) @binding(4) var<storage, read> grad_logits: array<f32>;

@compute @workgroup_size(LINEAR_WG)
fn linear_grad_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let v = gid.y * nwg.x * LINEAR_WG + gid.x;
    if v >= mp.n { return; }
    var total = 0.0;
    if (mp.flags & MM_ACCUMULATE) != 0u {
        total = out[mp.c_off + v];
    }
    for (var t = 0u; t < mp.m; t++) {
        total += grad_logits[mp.a_off + t * mp.a_sm + v];
    }
    out[mp.c_off + v] = total;
}
