//! import shared/common

// Row reductions with subgroup operations, for adapters with the SUBGROUP feature whose
// subgroup size SG is fixed. WG is a multiple of SG. With WG == SG (CPU adapters such as
// lavapipe) a row is one subgroup: no workgroup memory, no barriers. With more subgroups
// per row (GPUs), each subgroup reduces its lanes, writes one value per subgroup to
// workgroup memory (subgroups are consecutive runs of SG invocations of the 1D workgroup),
// and every invocation folds those values in the same fixed order: two barriers per step.

override WG: u32 = 32u;
override SG: u32 = 32u;

var<workgroup> subgroup_f32: array<vec4<f32>, 64>;
var<workgroup> subgroup_u32: array<u32, 64>;

fn row_max(v: f32, lid: u32) -> f32 {
    let m = subgroupMax(v);
    if WG == SG {
        return m;
    }
    if lid % SG == 0u {
        subgroup_f32[lid / SG].x = m;
    }
    workgroupBarrier();
    var r = subgroup_f32[0].x;
    for (var i = 1u; i < WG / SG; i++) {
        r = max(r, subgroup_f32[i].x);
    }
    workgroupBarrier();
    return r;
}

fn row_sum4(v: vec4<f32>, lid: u32) -> vec4<f32> {
    let s = subgroupAdd(v);
    if WG == SG {
        return s;
    }
    if lid % SG == 0u {
        subgroup_f32[lid / SG] = s;
    }
    workgroupBarrier();
    var r = subgroup_f32[0];
    for (var i = 1u; i < WG / SG; i++) {
        r += subgroup_f32[i];
    }
    workgroupBarrier();
    return r;
}

fn row_or(v: u32, lid: u32) -> u32 {
    let o = subgroupOr(v);
    if WG == SG {
        return o;
    }
    if lid % SG == 0u {
        subgroup_u32[lid / SG] = o;
    }
    workgroupBarrier();
    var r = subgroup_u32[0];
    for (var i = 1u; i < WG / SG; i++) {
        r |= subgroup_u32[i];
    }
    workgroupBarrier();
    return r;
}

// The max (or the min) of an unsigned value across the row's invocations (argmax).
fn row_extreme_u32(v: u32, lid: u32, want_max: bool) -> u32 {
    let e = select(subgroupMin(v), subgroupMax(v), want_max);
    if WG == SG {
        return e;
    }
    if lid % SG == 0u {
        subgroup_u32[lid / SG] = e;
    }
    workgroupBarrier();
    var r = subgroup_u32[0];
    for (var i = 1u; i < WG / SG; i++) {
        r = select(min(r, subgroup_u32[i]), max(r, subgroup_u32[i]), want_max);
    }
    workgroupBarrier();
    return r;
}
