// Row reductions with subgroup operations, for adapters with the SUBGROUP feature whose
// subgroup size is fixed: the host makes the workgroup exactly one subgroup (WG = the
// subgroup size), so no workgroup memory and no barriers are needed.

override WG: u32 = 32u;

fn row_max(v: f32, lid: u32) -> f32 {
    return subgroupMax(v);
}

fn row_sum4(v: vec4<f32>, lid: u32) -> vec4<f32> {
    return subgroupAdd(v);
}

fn row_or(v: u32, lid: u32) -> u32 {
    return subgroupOr(v);
}
