//! import linear_cross_entropy/halves
// The products' operands read one element at a time (the `linear_format` role for any
// precision and alignment): hidden states and weight as u32 words (f32, or two halves
// each), the logits' gradient G as f32.

@group(0) @binding(1) var<storage, read> hidden: array<u32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(4) var<storage, read> grad_logits: array<f32>;

// Quads are four element loads here.
const QUADS: bool = false;

fn element(src: u32, i: u32) -> f32 {
    switch src {
        case SRC_HIDDEN: {
            if HALF == 0u {
                return bitcast<f32>(hidden[i]);
            }
            return bitcast<f32>(half_bits(hidden[i >> 1u], i));
        }
        case SRC_WEIGHT: {
            if HALF == 0u {
                return bitcast<f32>(weight[i]);
            }
            return bitcast<f32>(half_bits(weight[i >> 1u], i));
        }
        default: {
            return grad_logits[i];
        }
    }
}

// Elements i … i + 3.
fn quad(src: u32, i: u32) -> vec4<f32> {
    return vec4<f32>(element(src, i), element(src, i + 1u), element(src, i + 2u), element(src, i + 3u));
}
