// Half-precision hidden states, weight and bias, read as u32 words (two halves per word,
// element 2j in the low half) and widened exactly to f32 from their bits, so f16 needs no
// adapter feature.

// The element type of hidden, weight and bias: 0 f32, 1 f16, 2 bf16.
override HALF: u32 = 0u;

// The f32 bits of element i of a half-precision array whose word holding it is `word`.
fn half_bits(word: u32, i: u32) -> u32 {
    let h = select(word & 0xffffu, word >> 16u, (i & 1u) == 1u);
    let sign = (h & 0x8000u) << 16u;
    if HALF == 2u {
        return h << 16u;
    }
    let exponent = (h >> 10u) & 0x1fu;
    let mantissa = h & 0x3ffu;
    if exponent == 0u {
        // Zero or subnormal: mantissa · 2⁻²⁴, exact in f32.
        return sign | bitcast<u32>(f32(mantissa) * 5.9604645e-8);
    }
    if exponent == 0x1fu {
        return sign | 0x7f800000u | (mantissa << 13u);
    }
    return sign | ((exponent + 112u) << 23u) | (mantissa << 13u);
}
