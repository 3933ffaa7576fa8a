//! import linear_cross_entropy/params
//! import linear_cross_entropy/halves
//! import linear_format
// The output layer's products for the fused linear + cross-entropy op, one row chunk of
// tokens at a time: the chunk's logits h·Wᵀ + b (into scratch, where the cross-entropy
// kernels turn them into their gradient G in place), then ∂h = G·W and ∂W = Gᵀ·h (or hᵀ·G
// for an H × V weight); ∂b is grad_bias.wgsl's.
//
// One kernel for every product: C[m, n] = Σ_k A[m, k]·B[k, n] (+ bias[n]), with A and B
// read through strides (each operand contiguous along one of its dimensions; the host says
// which), so neither the weight nor G is ever transposed. A workgroup computes a TILE ×
// TILE tile of C; each invocation a block of 4·SLOTS × 4·SLOTS values held in registers as
// vec4 accumulators (the host repeats each run of lines holding the row placeholder once
// per row quad, and each line holding the column placeholder once per column quad), fed
// four k at a time from 4 × 4 blocks of A and B read as quads along each operand's
// contiguous dimension (the `linear_format` role: one vec4 load where
// the operand is f32 and aligned, four element loads otherwise). Two forms, chosen per
// device: on GPUs (1 slot, 256 invocations: STAGED) each TK-deep k block of both operands
// passes through workgroup memory first; on CPU adapters (2 slots, 64 invocations), where
// workgroup memory is ordinary memory and barriers switch coroutines, the blocks are read
// straight from the bindings.
//
// Determinism: every value of C is its own running total, added in k order (the tokens,
// for ∂W) with one fma per product; a chunk that accumulates (MM_ACCUMULATE) starts from C.
// ∂W over the tokens is therefore the same sum, bit for bit, whether the tokens come in one
// chunk or several. No float atomics.
//
// Precision: G and C are f32, and every sum is f32. Numerics: the inputs are finite but
// for the bias, whose -inf (a masked class), +inf or NaN entries are recognised by their
// bits and written as those bits.

@group(0) @binding(3) var<storage, read> bias: array<u32>;

// The C tile of a workgroup.
const TILE: u32 = 64u;
// Quads per side of an invocation's block of C.
const SLOTS: u32 = $nu;
// Invocations per side of a workgroup.
const SIDE: u32 = TILE / (4u * SLOTS);
// Whether k blocks pass through workgroup memory: the GPU form.
const STAGED: bool = SLOTS == 1u;

// Where an operand comes from (a constant for each pipeline).
const SRC_HIDDEN: u32 = 0u;
const SRC_WEIGHT: u32 = 1u;
const SRC_GRAD: u32 = 2u;

// A product's operand X[r, k] (A with r = m, B with r = n): at off + r·s_r + k·s_k, r <
// extent; contiguous along k (s_k == 1) or along r (s_r == 1), as the pipeline's overrides
// say (a constant, so each load site is compiled for one of the two).
struct Operand {
    src: u32,
    off: u32,
    s_r: u32,
    s_k: u32,
    extent: u32,
    along_k: bool,
}

// X[r, k], with r clamped into the operand (rows past its end feed only values of C that
// are never stored).
fn at(x: Operand, r: u32, k: u32) -> f32 {
    return element(x.src, x.off + min(r, x.extent - 1u) * x.s_r + k * x.s_k);
}

// X[r … r + 3, k], r a multiple of 4.
fn column(x: Operand, r: u32, k: u32) -> vec4<f32> {
    if QUADS && !x.along_k {
        return quad(x.src, x.off + min(r, (x.extent - 1u) & ~3u) + k * x.s_k);
    }
    return vec4<f32>(at(x, r, k), at(x, r + 1u, k), at(x, r + 2u, k), at(x, r + 3u, k));
}

// X[r, k … k + 3] of an operand contiguous along k, k + 3 < K.
fn along_k(x: Operand, r: u32, k: u32) -> vec4<f32> {
    return quad(x.src, x.off + min(r, x.extent - 1u) * x.s_r + k);
}

// The 4 × 4 block X[r … r + 3, k … k + 3] as a matrix whose column c is X[r + c, k … k + 3].
fn block(x: Operand, r: u32, k: u32) -> mat4x4<f32> {
    if x.along_k {
        return mat4x4<f32>(along_k(x, r, k), along_k(x, r + 1u, k), along_k(x, r + 2u, k), along_k(x, r + 3u, k));
    }
    return transpose(mat4x4<f32>(column(x, r, k), column(x, r, k + 1u), column(x, r, k + 2u), column(x, r, k + 3u)));
}

// Four steps of k for one row of C's block: a holds A[m, k … k + 3], column i of b holds
// B[k + i, n … n + 3]; added to acc in k order.
fn step(a: vec4<f32>, b: mat4x4<f32>, acc: vec4<f32>) -> vec4<f32> {
    return fma(vec4<f32>(a.w), b[3], fma(vec4<f32>(a.z), b[2], fma(vec4<f32>(a.y), b[1], fma(vec4<f32>(a.x), b[0], acc))));
}

// The staged k block [k0, k0 + TK) of A's and B's tile rows: [k·16 + r/4] holds tile rows
// r … r + 3 at k0 + k (zero past K).
var<workgroup> a_stage: array<vec4<f32>, 256>;
var<workgroup> b_stage: array<vec4<f32>, 256>;

// Quad q (of 256) of X's TILE × TK block at tile row r0, k0: rows q/4 at k0 + 4·(q % 4)
// … + 3 of an operand contiguous along k, else rows 4·(q % 16) … + 3 at k0 + q/16; zero
// past K.
fn staged_quad(x: Operand, r0: u32, k0: u32, q: u32) -> vec4<f32> {
    if x.along_k {
        let r = r0 + q / 4u;
        let k = k0 + 4u * (q % 4u);
        if k + 4u <= mp.k {
            return along_k(x, r, k);
        }
        var v = vec4<f32>();
        for (var c = 0u; c < 4u; c++) {
            if k + c < mp.k {
                v[c] = at(x, r, k + c);
            }
        }
        return v;
    }
    if k0 + q / 16u >= mp.k {
        return vec4<f32>();
    }
    return column(x, r0 + 4u * (q % 16u), k0 + q / 16u);
}

// Stages both operands' k block [k0, k0 + TK).
fn stage(a: Operand, b: Operand, m0: u32, n0: u32, k0: u32, lid: u32) {
    for (var q = lid; q < 256u; q += SIDE * SIDE) {
        let va = staged_quad(a, m0, k0, q);
        let vb = staged_quad(b, n0, k0, q);
        if a.along_k {
            for (var c = 0u; c < 4u; c++) {
                a_stage[(4u * (q % 4u) + c) * 16u + q / 16u][(q / 4u) % 4u] = va[c];
            }
        } else {
            a_stage[q] = va;
        }
        if b.along_k {
            for (var c = 0u; c < 4u; c++) {
                b_stage[(4u * (q % 4u) + c) * 16u + q / 16u][(q / 4u) % 4u] = vb[c];
            }
        } else {
            b_stage[q] = vb;
        }
    }
}

// block() of A's staged tile rows r … r + 3 at k … k + 3 of the block.
fn a_staged(r: u32, k: u32) -> mat4x4<f32> {
    let i = k * 16u + r / 4u;
    return transpose(mat4x4<f32>(a_stage[i], a_stage[i + 16u], a_stage[i + 32u], a_stage[i + 48u]));
}

// transpose(block()) of B's staged tile rows n … n + 3 at k … k + 3 of the block.
fn b_staged(n: u32, k: u32) -> mat4x4<f32> {
    let i = k * 16u + n / 4u;
    return mat4x4<f32>(b_stage[i], b_stage[i + 16u], b_stage[i + 32u], b_stage[i + 48u]);
}

fn bias_bits(i: u32) -> u32 {
    if HALF == 0u {
        return bias[i];
    }
    return half_bits(bias[i >> 1u], i);
}

// C[r, n … n + 3] as stored (0 outside the product), where an accumulating product starts.
fn c_start(r: u32, n: u32) -> vec4<f32> {
    var v = vec4<f32>();
    if r < mp.m {
        for (var j = 0u; j < 4u; j++) {
            if n + j < mp.n {
                v[j] = out[mp.c_off + r * mp.c_sm + n + j];
            }
        }
    }
    return v;
}

// Stores C[r, n … n + 3] within the product, adding the bias where it has one.
fn c_store(r: u32, n: u32, v: vec4<f32>) {
    if r >= mp.m {
        return;
    }
    for (var j = 0u; j < 4u; j++) {
        if n + j < mp.n {
            var x = v[j];
            if (mp.flags & MM_BIAS) != 0u {
                let bits = bias_bits(mp.bias_off + n + j);
                // A non-finite bias is the logit, whatever the product.
                x = select(x + bitcast<f32>(bits), bitcast<f32>(bits), (bits & 0x7f800000u) == 0x7f800000u);
            }
            out[mp.c_off + r * mp.c_sm + n + j] = x;
        }
    }
}

// Where a product's operands come from, set per pipeline by the kernel table. The logits:
// A = hidden (tokens × H), B[k, v] = W[v, k] (plus the bias). ∂h (A_GRAD): A = G (tokens ×
// V), B[v, k] = W[v, k]. ∂W of a V × H weight (A_GRAD, B_HIDDEN): A[v, t] = G[t, v],
// B = hidden. ∂W of an H × V weight (B_GRAD): A[k, t] = hidden[t, k], B = G. H_BY_V: the
// logits or ∂h of an H × V weight.
override A_GRAD: bool = false;
override B_HIDDEN: bool = false;
override B_GRAD: bool = false;
override H_BY_V: bool = false;
// Which way each operand runs: A along k but in the ∂W products; B along k in the logits
// of a V × H weight and ∂h of an H × V one.
override A_ALONG_K: bool = !B_HIDDEN && !B_GRAD;
override B_ALONG_K: bool = A_GRAD == H_BY_V && !B_HIDDEN && !B_GRAD;

@compute @workgroup_size(SIDE * SIDE)
fn linear_product(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let tiles_n = (mp.n + TILE - 1u) / TILE;
    let tile = wid.y * nwg.x + wid.x;
    if tile >= tiles_n * ((mp.m + TILE - 1u) / TILE) {
        return;
    }
    let src_b = select(select(SRC_WEIGHT, SRC_HIDDEN, B_HIDDEN), SRC_GRAD, B_GRAD);
    let a = Operand(select(SRC_HIDDEN, SRC_GRAD, A_GRAD), mp.a_off, mp.a_sm, mp.a_sk, mp.m, A_ALONG_K);
    let b = Operand(src_b, mp.b_off, mp.b_sn, mp.b_sk, mp.n, B_ALONG_K);
    let m0 = (tile / tiles_n) * TILE;
    let n0 = (tile % tiles_n) * TILE;
    // This invocation's block of C: rows m … m + 4·SLOTS - 1, columns n … n + 4·SLOTS - 1.
    let ml = (lid / SIDE) * 4u * SLOTS;
    let nl = (lid % SIDE) * 4u * SLOTS;
    let m = m0 + ml;
    let n = n0 + nl;
    // The block passes through c_block at the start and the end, in loops rather than
    // unrolled: compiling 4·SLOTS² accumulate and store sites took seconds on lavapipe.
    var c_block: array<vec4<f32>, 4u * SLOTS * SLOTS>;
    if (mp.flags & MM_ACCUMULATE) != 0u {
        for (var i = 0u; i < 4u * SLOTS * SLOTS; i++) {
            c_block[i] = c_start(m + i / SLOTS, n + 4u * (i % SLOTS));
        }
    }
    var acc$r_0_$j = c_block[(4u * $r) * SLOTS + $j];
    var acc$r_1_$j = c_block[(4u * $r + 1u) * SLOTS + $j];
    var acc$r_2_$j = c_block[(4u * $r + 2u) * SLOTS + $j];
    var acc$r_3_$j = c_block[(4u * $r + 3u) * SLOTS + $j];
    if STAGED {
        for (var k0 = 0u; k0 < mp.k; k0 += TK) {
            stage(a, b, m0, n0, k0, lid);
            workgroupBarrier();
            for (var k = 0u; k < TK; k += 4u) {
                let b$j = b_staged(nl + 4u * $j, k);
                let a$r = a_staged(ml + 4u * $r, k);
                acc$r_0_$j = step(a$r[0], b$j, acc$r_0_$j);
                acc$r_1_$j = step(a$r[1], b$j, acc$r_1_$j);
                acc$r_2_$j = step(a$r[2], b$j, acc$r_2_$j);
                acc$r_3_$j = step(a$r[3], b$j, acc$r_3_$j);
            }
            workgroupBarrier();
        }
    } else {
        let quads = mp.k & ~3u;
        for (var k = 0u; k < quads; k += 4u) {
            let b$j = transpose(block(b, n + 4u * $j, k));
            let a$r = block(a, m + 4u * $r, k);
            acc$r_0_$j = step(a$r[0], b$j, acc$r_0_$j);
            acc$r_1_$j = step(a$r[1], b$j, acc$r_1_$j);
            acc$r_2_$j = step(a$r[2], b$j, acc$r_2_$j);
            acc$r_3_$j = step(a$r[3], b$j, acc$r_3_$j);
        }
        for (var k = quads; k < mp.k; k++) {
            let b$j = column(b, n + 4u * $j, k);
            let a$r = column(a, m + 4u * $r, k);
            acc$r_0_$j = fma(vec4<f32>(a$r.x), b$j, acc$r_0_$j);
            acc$r_1_$j = fma(vec4<f32>(a$r.y), b$j, acc$r_1_$j);
            acc$r_2_$j = fma(vec4<f32>(a$r.z), b$j, acc$r_2_$j);
            acc$r_3_$j = fma(vec4<f32>(a$r.w), b$j, acc$r_3_$j);
        }
    }
    c_block[(4u * $r) * SLOTS + $j] = acc$r_0_$j;
    c_block[(4u * $r + 1u) * SLOTS + $j] = acc$r_1_$j;
    c_block[(4u * $r + 2u) * SLOTS + $j] = acc$r_2_$j;
    c_block[(4u * $r + 3u) * SLOTS + $j] = acc$r_3_$j;
    for (var i = 0u; i < 4u * SLOTS * SLOTS; i++) {
        c_store(m + i / SLOTS, n + 4u * (i % SLOTS), c_block[i]);
    }
}
