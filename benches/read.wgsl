// The benchmarks' yardstick for ops that read `rows × classes` and write next to nothing
// (the cross-entropy forward): read kernels that add up the 32-bit words they read. Each
// invocation writes its sum, so the compiler cannot drop the reads, and the host checks
// the total exactly (wrapping u32 adds do not depend on the order).
//
// Layout: src is an array of vec4<u32> (the logits' bits; one storage binding); partials
// holds one u32 per invocation dispatched, 256 invocations per workgroup, and invocation
// g of the dispatch writes partials[g]. The reads follow copy.wgsl's layouts:
// - read_block: workgroup w reads the BLOCK × 256 vec4s from w × BLOCK × 256 on, step k of
//   invocation l reading vec4 k × 256 + l of that block; over 65535 workgroups the dispatch
//   folds into y (workgroup (x, y) is number y × num_workgroups.x + x).
// - read_grid_stride: a fixed grid (x only) walks the array, invocation g reading vec4s
//   g, g + stride, ... with stride = the invocations dispatched.
// Vec4s past the end count as zero. Passes: reads each element once and writes 4 bytes per
// invocation (the host dispatches at least 8 vec4s, 128 bytes, per invocation).
// Numerics: wrapping u32 adds.

// Vec4s per invocation of read_block, set by the host; a constant to the shader compiler.
override BLOCK: u32 = 8u;
const WORKGROUP: u32 = 256u;

@group(0) @binding(0) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> partials: array<u32>;

fn total(v: vec4<u32>) -> u32 {
    return v.x + v.y + v.z + v.w;
}

@compute @workgroup_size(256)
fn read_block(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let group = wid.y * groups.x + wid.x;
    let first = group * BLOCK * WORKGROUP + lid;
    let n = arrayLength(&src);
    var sum = vec4<u32>();
    for (var k = 0u; k < BLOCK; k++) {
        let i = first + k * WORKGROUP;
        if i < n {
            sum += src[i];
        }
    }
    partials[group * WORKGROUP + lid] = total(sum);
}

@compute @workgroup_size(256)
fn read_grid_stride(
    @builtin(global_invocation_id) gid: vec3<u32>,
    @builtin(num_workgroups) groups: vec3<u32>,
) {
    let stride = groups.x * WORKGROUP;
    var sum = vec4<u32>();
    for (var i = gid.x; i < arrayLength(&src); i += stride) {
        sum += src[i];
    }
    partials[gid.x] = total(sum);
}
