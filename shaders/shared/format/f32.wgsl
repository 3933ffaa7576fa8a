//! import shared/common

// f32 logits and gradients: the class-index modules' input and grad bindings as they are.

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(7) var<storage, read_write> grad: array<f32>;

fn load_input(i: u32) -> f32 {
    return input[i];
}

fn load_grad(i: u32) -> f32 {
    return grad[i];
}

fn store_grad(i: u32, v: f32) {
    grad[i] = v;
}
