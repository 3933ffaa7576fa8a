// The benchmarks' yardstick: a plain vectorised copy, `dst[i] = src[i]`, to put the loss
// kernels' throughput beside the best a compute kernel reaches on the same adapter.
//
// Layout: src and dst are arrays of vec4<f32> of the same length; invocation i copies
// vec4 i, 256 invocations per workgroup. Over 65535 workgroups the dispatch folds into
// y: workgroup (x, y) is number y × num_workgroups.x + x, and invocations past the end
// do nothing.
// Passes: reads each element once and writes it once. Numerics: none (bits are moved).

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(256)
fn copy_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let i = (wid.y * groups.x + wid.x) * 256u + lid;
    if i < arrayLength(&dst) {
        dst[i] = src[i];
    }
}
