//! import shared/common

// Row reductions across one workgroup through workgroup memory, for adapters without
// subgroup operations. WG (a power of two ≤ 256) invocations share one row; every helper
// is called by all of them in uniform control flow and returns the same value to all.
// Fixed binary trees: the result is bit-identical from run to run.

override WG: u32 = 64u;

var<workgroup> tree_f32: array<vec4<f32>, 256>;
var<workgroup> tree_flags: atomic<u32>;
var<workgroup> tree_u32: array<u32, 256>;

fn row_max(v: f32, lid: u32) -> f32 {
    tree_f32[lid].x = v;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            tree_f32[lid].x = max(tree_f32[lid].x, tree_f32[lid + stride].x);
        }
        workgroupBarrier();
    }
    return workgroupUniformLoad(&tree_f32[0]).x;
}

fn row_sum4(v: vec4<f32>, lid: u32) -> vec4<f32> {
    tree_f32[lid] = v;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            tree_f32[lid] = tree_f32[lid] + tree_f32[lid + stride];
        }
        workgroupBarrier();
    }
    return workgroupUniformLoad(&tree_f32[0]);
}

// Workgroup memory is not zero-initialised (the pipelines turn that off, as every other
// variable here is written before it is read), so the flag word is cleared first; the
// barrier after the load lets a later call clear it again.
fn row_or(v: u32, lid: u32) -> u32 {
    if lid == 0u {
        atomicStore(&tree_flags, 0u);
    }
    workgroupBarrier();
    if v != 0u {
        atomicOr(&tree_flags, v);
    }
    workgroupBarrier();
    let r = atomicLoad(&tree_flags);
    workgroupBarrier();
    return r;
}

// The max (or the min) of an unsigned value across the row's invocations (argmax).
fn row_extreme_u32(v: u32, lid: u32, want_max: bool) -> u32 {
    tree_u32[lid] = v;
    workgroupBarrier();
    for (var stride = WG / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            let a = tree_u32[lid];
            let b = tree_u32[lid + stride];
            tree_u32[lid] = select(min(a, b), max(a, b), want_max);
        }
        workgroupBarrier();
    }
    return workgroupUniformLoad(&tree_u32[0]);
}
