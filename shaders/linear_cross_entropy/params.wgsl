// What every linear kernel reads and writes: a product's parameters, and its output C.

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    // MM_* bits below.
    flags: u32,
    // Element offsets and strides: A[m, k] at a_off + m·a_sm + k·a_sk, B[k, n] at
    // b_off + k·b_sk + n·b_sn, C[m, n] at c_off + m·c_sm + n, bias[n] at bias_off + n.
    // Each operand is contiguous along one of its dimensions: a_sk or a_sm is 1, and b_sk
    // or b_sn is 1.
    a_off: u32,
    a_sm: u32,
    a_sk: u32,
    b_off: u32,
    b_sk: u32,
    b_sn: u32,
    c_off: u32,
    c_sm: u32,
    bias_off: u32,
}

const MM_ACCUMULATE: u32 = 1u; // add to C instead of overwriting it
const MM_BIAS: u32 = 2u;       // add bias[n] (the logits)

// The k block: the products add k in blocks of TK (tokens, for ∂W), and the token chunks
// are multiples of it.
const TK: u32 = 16u;
// Invocations per workgroup of the ∂b kernel.
const LINEAR_WG: u32 = 64u;

@group(0) @binding(0) var<uniform> mp: MatmulParams;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;
