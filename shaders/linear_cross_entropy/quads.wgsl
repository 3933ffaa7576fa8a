// The products' operands read as vec4 (the `linear_format` role for f32 operands whose
// offsets and strides are multiples of 4 elements): one 16-byte load per quad.

@group(0) @binding(1) var<storage, read> hidden: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read> weight: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> grad_logits: array<vec4<f32>>;

const QUADS: bool = true;

// Elements i … i + 3, i a multiple of 4.
fn quad(src: u32, i: u32) -> vec4<f32> {
    switch src {
        case SRC_HIDDEN: {
            return hidden[i >> 2u];
        }
        case SRC_WEIGHT: {
            return weight[i >> 2u];
        }
        default: {
            return grad_logits[i >> 2u];
        }
    }
}

fn element(src: u32, i: u32) -> f32 {
    return quad(src, i & ~3u)[i & 3u];
}
