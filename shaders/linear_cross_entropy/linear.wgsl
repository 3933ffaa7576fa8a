// The output layer's products for the fused linear + cross-entropy op, one row chunk of
// tokens at a time: the chunk's logits h·Wᵀ + b (into scratch, where the cross-entropy
// kernels turn them into their gradient G in place), then ∂h = G·W, ∂W = Gᵀ·h (or h_ᵀ·G
// for an H × V weight) and ∂b = Σ_t G.
//
// One kernel for every product: C[m, n] = Σ_k A[m, k]·B[k, n] (+ bias[n]), with A and B
// read through strides (each operand is contiguous along one of its two dimensions, the
// host says which) so neither the weight nor G is ever transposed. A workgroup of 8 × 8
// invocations computes a TM × TN = 32 × 32 tile of C, each invocation 4 × 4 values in
// registers; A and B pass through workgroup memory TK = 16 values of k at a time, loaded
// so that neighbouring invocations read neighbouring addresses.
//
// Determinism: each element's products are added to its running total in k order (the
// tokens, for ∂W), and a chunk that accumulates (ACCUMULATE) starts its total from C. ∂W
// and ∂b over the tokens are therefore the same sums, bit for bit, whether the tokens come
// in one chunk or several. No float atomics.
//
// Precision: hidden, weight and bias are f32, f16 or bf16 (HALF, set per pipeline), read
// as u32 words (two halves per word, element 2j in the low half) and widened exactly to
// f32 from their bits, so f16 needs no adapter feature. G and C are f32, and every sum is
// f32.
// Numerics: the inputs are finite but for the bias, whose -inf (a masked class), +inf
// or NaN entries are recognised by their bits and written as those bits.

struct MatmulParams {
    m: u32,
    n: u32,
    k: u32,
    // MM_* bits below.
    flags: u32,
    // Element offsets and strides: A[m, k] at a_off + m·a_sm + k·a_sk, B[k, n] at
    // b_off + k·b_sk + n·b_sn, C[m, n] at c_off + m·c_sm + n, bias[n] at bias_off + n.
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

@group(0) @binding(0) var<uniform> mp: MatmulParams;
@group(0) @binding(1) var<storage, read> hidden: array<u32>;
@group(0) @binding(2) var<storage, read> weight: array<u32>;
@group(0) @binding(3) var<storage, read> bias: array<u32>;
@group(0) @binding(4) var<storage, read> grad_logits: array<f32>;
@group(0) @binding(5) var<storage, read_write> out: array<f32>;

// The element type of hidden, weight and bias: 0 f32, 1 f16, 2 bf16.
override HALF: u32 = 0u;

const TM: u32 = 32u;
const TN: u32 = 32u;
const TK: u32 = 16u;
const LINEAR_WG: u32 = 64u;

// Where an operand comes from (a constant for each pipeline: each load is from one binding).
const SRC_HIDDEN: u32 = 0u;
const SRC_WEIGHT: u32 = 1u;
const SRC_GRAD: u32 = 2u;

// The f32 bits of element i of a half-precision hidden / weight / bias array whose word
// holding it is `word`: exact, from the bits alone (f16 needs no adapter feature).
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

fn load_hidden(i: u32) -> f32 {
    if HALF == 0u {
        return bitcast<f32>(hidden[i]);
    }
    return bitcast<f32>(half_bits(hidden[i >> 1u], i));
}

fn load_weight(i: u32) -> f32 {
    if HALF == 0u {
        return bitcast<f32>(weight[i]);
    }
    return bitcast<f32>(half_bits(weight[i >> 1u], i));
}

fn bias_bits(i: u32) -> u32 {
    if HALF == 0u {
        return bias[i];
    }
    return half_bits(bias[i >> 1u], i);
}

fn load(src: u32, i: u32) -> f32 {
    switch src {
        case SRC_HIDDEN: {
            return load_hidden(i);
        }
        case SRC_WEIGHT: {
            return load_weight(i);
        }
        default: {
            return grad_logits[i];
        }
    }
}

// A (TK × TM) and B (TK × TN) tiles of the current k block, k-major.
var<workgroup> a_tile: array<f32, 512>;
var<workgroup> b_tile: array<f32, 512>;

// Element e of an operand's tile (TK × width, k-major) for k block [k0, k0 + TK): its place
// in the tile and its value, 0 outside the matrix. Elements run along whichever dimension
// the operand is contiguous in (s_k == 1: along k), so neighbouring invocations read
// neighbouring addresses. The operand's (i, k) is at off + i·s_i + k·s_k, i < extent.
struct TileElement {
    at: u32,
    value: f32,
}

fn tile_element(src: u32, e: u32, width: u32, origin: u32, extent: u32, k0: u32, off: u32, s_i: u32, s_k: u32) -> TileElement {
    let by_k = s_k == 1u;
    let kk = select(e / width, e % TK, by_k);
    let ii = select(e % width, e / TK, by_k);
    let i = origin + ii;
    let k = k0 + kk;
    var value = 0.0;
    if i < extent && k < mp.k {
        value = load(src, off + i * s_i + k * s_k);
    }
    return TileElement(kk * width + ii, value);
}

// Loads the workgroup's A and B tiles of k block [k0, k0 + TK).
fn load_tiles(src_a: u32, src_b: u32, m0: u32, n0: u32, k0: u32, lid: u32) {
    for (var e = lid; e < TK * TM; e += LINEAR_WG) {
        let a = tile_element(src_a, e, TM, m0, mp.m, k0, mp.a_off, mp.a_sm, mp.a_sk);
        a_tile[a.at] = a.value;
        let b = tile_element(src_b, e, TN, n0, mp.n, k0, mp.b_off, mp.b_sn, mp.b_sk);
        b_tile[b.at] = b.value;
    }
}

// C's tile of the product of sources src_a and src_b: invocation (tx, ty) holds rows
// m0 + 4·ty + i and columns n0 + tx + 8·j (i, j < 4), so each step's A values are the same
// across neighbouring invocations and its B values, and the stores, neighbouring words.
fn matmul(src_a: u32, src_b: u32, wid: vec3<u32>, nwg: vec3<u32>, lid: u32) {
    let tiles_n = (mp.n + TN - 1u) / TN;
    let tile = wid.y * nwg.x + wid.x;
    if tile >= tiles_n * ((mp.m + TM - 1u) / TM) { return; }
    let m0 = (tile / tiles_n) * TM;
    let n0 = (tile % tiles_n) * TN;
    let tx = lid % 8u;
    let ty = lid / 8u;
    let row = m0 + ty * 4u;
    let col = n0 + tx;
    var total = array<vec4<f32>, 4>();
    if (mp.flags & MM_ACCUMULATE) != 0u {
        for (var i = 0u; i < 4u; i++) {
            for (var j = 0u; j < 4u; j++) {
                if row + i < mp.m && col + 8u * j < mp.n {
                    total[i][j] = out[mp.c_off + (row + i) * mp.c_sm + col + 8u * j];
                }
            }
        }
    }
    for (var k0 = 0u; k0 < mp.k; k0 += TK) {
        load_tiles(src_a, src_b, m0, n0, k0, lid);
        workgroupBarrier();
        for (var kk = 0u; kk < TK; kk++) {
            let at = kk * TM + ty * 4u;
            let a = vec4<f32>(a_tile[at], a_tile[at + 1u], a_tile[at + 2u], a_tile[at + 3u]);
            let bt = kk * TN + tx;
            let b = vec4<f32>(b_tile[bt], b_tile[bt + 8u], b_tile[bt + 16u], b_tile[bt + 24u]);
            total[0] += a.x * b;
            total[1] += a.y * b;
            total[2] += a.z * b;
            total[3] += a.w * b;
        }
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        for (var j = 0u; j < 4u; j++) {
            if row + i < mp.m && col + 8u * j < mp.n {
                var v = total[i][j];
                if (mp.flags & MM_BIAS) != 0u {
                    let bits = bias_bits(mp.bias_off + col + 8u * j);
                    // A non-finite bias is the logit, whatever the product.
                    v = select(v + bitcast<f32>(bits), bitcast<f32>(bits), (bits & 0x7f800000u) == 0x7f800000u);
                }
                out[mp.c_off + (row + i) * mp.c_sm + col + 8u * j] = v;
            }
        }
    }
}

// Where a product's operands come from, set per pipeline by the kernel table. The logits:
// A = hidden (tokens × H), B[k, v] = W[v, k] (plus the bias). ∂h (A_GRAD): A = G (tokens ×
// V), B[v, k] = W[v, k]. ∂W of a V × H weight (A_GRAD, B_HIDDEN): A[v, t] = G[t, v],
// B = hidden. ∂W of an H × V weight (B_GRAD): A[k, t] = hidden[t, k], B = G.
override A_GRAD: bool = false;
override B_HIDDEN: bool = false;
override B_GRAD: bool = false;

@compute @workgroup_size(LINEAR_WG)
fn linear_product(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let src_a = select(SRC_HIDDEN, SRC_GRAD, A_GRAD);
    let src_b = select(select(SRC_WEIGHT, SRC_HIDDEN, B_HIDDEN), SRC_GRAD, B_GRAD);
    matmul(src_a, src_b, wid, nwg, lid);
}

// ∂b[v] = Σ_t G[t, v] over the chunk's tokens (m = tokens, n = V, G at a_off with row
// stride a_sm), added in token order as the products: one invocation per class.
@compute @workgroup_size(LINEAR_WG)
fn linear_grad_bias(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let v = gid.y * nwg.x * LINEAR_WG + gid.x;
    if v >= mp.n { return; }
    var total = 0.0;
    if (mp.flags & MM_ACCUMULATE) != 0u {
        total = out[mp.c_off + v];
    }
    for (var t = 0u; t < mp.m; t++) {
        total += grad_logits[mp.a_off + t * mp.a_sm + v];
    }
    out[mp.c_off + v] = total;
}
