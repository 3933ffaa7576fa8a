// The adapter's f32 FMA throughput, for the linear bench's yardstick: every invocation runs
// FMA_ITERS steps of 8 independent vec4 multiply-adds (no memory traffic but one store), so
// the dispatch does 64 flops per invocation per step. The values stay within [0, 2].

@group(0) @binding(0) var<storage, read_write> out: array<vec4<f32>>;

const FMA_ITERS: u32 = 1024u;

@compute @workgroup_size(64)
fn fma_probe(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.y * nwg.x * 64u + gid.x;
    let m = vec4<f32>(0.999, 0.998, 0.997, 0.996);
    let c = vec4<f32>(0.001, 0.002, 0.003, 0.004);
    var a0 = vec4<f32>(f32(i & 7u) * 0.01);
    var a1 = a0 + 0.1;
    var a2 = a0 + 0.2;
    var a3 = a0 + 0.3;
    var a4 = a0 + 0.4;
    var a5 = a0 + 0.5;
    var a6 = a0 + 0.6;
    var a7 = a0 + 0.7;
    for (var k = 0u; k < FMA_ITERS; k++) {
        a0 = fma(a0, m, c);
        a1 = fma(a1, m, c);
        a2 = fma(a2, m, c);
        a3 = fma(a3, m, c);
        a4 = fma(a4, m, c);
        a5 = fma(a5, m, c);
        a6 = fma(a6, m, c);
        a7 = fma(a7, m, c);
    }
    out[i] = a0 + a1 + a2 + a3 + a4 + a5 + a6 + a7;
}
