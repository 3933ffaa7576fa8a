//! import shared/common

// bf16 logits (any adapter): two per u32 word, element 2k in the low half of word k, each
// widened to f32 by a shift (bf16 is the top half of an f32). Gradients are f32.

@group(0) @binding(1) var<storage, read> input: array<u32>;
@group(0) @binding(7) var<storage, read_write> grad: array<f32>;

fn load_input(i: u32) -> f32 {
    let word = input[i / 2u];
    return bitcast<f32>(select(word << 16u, word & 0xffff0000u, (i & 1u) == 1u));
}

fn load_grad(i: u32) -> f32 {
    return grad[i];
}

fn store_grad(i: u32, v: f32) {
    grad[i] = v;
}
