// The benchmarks' yardstick for ops that read and write `rows × classes`: copy kernels,
// `dst[i] = src[i]`, in the layouts a fast kernel might use. The bench times each one and
// compares the ops with the fastest, so the ratio is against the best copy this adapter
// does, not against one layout that happens to suit it badly.
//
// Layout: src and dst are arrays of vec4<f32> of the same length (one storage binding each),
// 256 invocations per workgroup.
// - copy_block: workgroup w copies the BLOCK × 256 vec4s from w × BLOCK × 256 on; step k
//   of invocation l copies vec4 k × 256 + l of that block, so at every step neighbouring
//   invocations touch neighbouring vec4s. BLOCK = 1 is one vec4 per invocation. Over 65535
//   workgroups the dispatch folds into y: workgroup (x, y) is number y × num_workgroups.x + x.
// - copy_grid_stride: a fixed grid (x only) walks the array, invocation g copying vec4s
//   g, g + stride, g + 2 × stride, ... with stride = the invocations dispatched.
// Vec4s past the end are not touched. Passes: reads each element once and writes it once.
// Numerics: none (bits are moved).

// Vec4s per invocation of copy_block, set by the host (1, 4, 8); a constant to the shader
// compiler, so the loop unrolls.
override BLOCK: u32 = 1u;
const WORKGROUP: u32 = 256u;

@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(256)
fn copy_block(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let first = (wid.y * groups.x + wid.x) * BLOCK * WORKGROUP + lid;
    let n = arrayLength(&dst);
    for (var k = 0u; k < BLOCK; k++) {
        let i = first + k * WORKGROUP;
        if i < n {
            dst[i] = src[i];
        }
    }
}

@compute @workgroup_size(256)
fn copy_grid_stride(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let stride = groups.x * WORKGROUP;
    for (var i = gid.x; i < arrayLength(&dst); i += stride) {
        dst[i] = src[i];
    }
}
