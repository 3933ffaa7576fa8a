//! import shared/common

// f32 logits and gradients viewed as vec4 (the resident kernels: offsets and classes are
// multiples of 4), with the scalar accessors the rest of the class-index code uses.

@group(0) @binding(1) var<storage, read> input: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> grad: array<vec4<f32>>;

fn load_input(i: u32) -> f32 {
    return input[i / 4u][i % 4u];
}

fn load_grad(i: u32) -> f32 {
    return grad[i / 4u][i % 4u];
}

fn store_grad(i: u32, v: f32) {
    grad[i / 4u][i % 4u] = v;
}

fn load_input4(q: u32) -> vec4<f32> {
    return input[q];
}

fn load_grad4(q: u32) -> vec4<f32> {
    return grad[q];
}

fn store_grad4(q: u32, v: vec4<f32>) {
    grad[q] = v;
}
