//! import shared/common

// f16 logits and gradients (adapters with SHADER_F16; the module starts `enable f16;`).
// Loads widen exactly to f32 and everything is computed in f32; stores round to f16,
// with ±inf beyond f16's range (NaN and ±inf convert as themselves).

@group(0) @binding(1) var<storage, read> input: array<f16>;
@group(0) @binding(7) var<storage, read_write> grad: array<f16>;

fn load_input(i: u32) -> f32 {
    return f32(input[i]);
}

fn load_grad(i: u32) -> f32 {
    return f32(grad[i]);
}

// The largest f32 that rounds to a finite f16 (65504 + half an ulp, exclusive).
const F16_OVERFLOW: f32 = 65520.0;

fn store_grad(i: u32, v: f32) {
    // Beyond f16's range: the f32 infinity of that sign, so the conversion is exact.
    var w = v;
    if is_finite_bits(v) && abs(v) >= F16_OVERFLOW {
        w = f32_from_bits(select(POS_INF_BITS, NEG_INF_BITS, v < 0.0));
    }
    grad[i] = f16(w);
}
