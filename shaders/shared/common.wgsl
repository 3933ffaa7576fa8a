// Shared by every kernel: the parameter block, float classification and an exact
// "extended real" so no shader ever computes with inf or NaN (WGSL may assume finite
// floats). Non-finite inputs are recognised by their bits and non-finite outputs are
// written from bit patterns.

// Mirrors `LossParams` in src/gpu/params.rs field for field.
struct Params {
    rows: u32,
    classes: u32,
    ignore_index: i32,
    // FLAG_* bits below.
    flags: u32,
    label_smoothing: f32,
    // Upstream gradient when no grad_output buffer is bound.
    grad_scale: f32,
    // Element offsets of each caller buffer's data inside its binding (any 4-byte-aligned
    // caller offset works: the host binds at the aligned-down offset and passes the rest).
    input_off: u32,
    target_off: u32,
    grad_output_off: u32,
    row_loss_off: u32,
    grad_off: u32,
    loss_out_off: u32,
    // First row of this dispatch in the whole batch (batches larger than one binding are
    // recorded as row chunks; the host folds row_base into the per-row offsets above, so
    // kernels need it only to report absolute rows).
    row_base: u32,
    // Split rows: each row's classes in `segments` segments of `seg_len` (1 and `classes`
    // for rows held by one workgroup).
    seg_len: u32,
    segments: u32,
    // A shard of a row's classes: memory holds classes [class_offset, class_offset +
    // classes) of `total_classes` (0 and `classes` unless the classes are sharded).
    class_offset: u32,
    total_classes: u32,
    // (N, C, d1, …, dk) layouts: d1·…·dk (1 for rows × classes). Row r = n·spatial + s
    // holds its classes at n·C·spatial + s + c·spatial (see row_start).
    spatial: u32,
    // Logit soft-capping cap·tanh(x / cap) when > 0 (cross-entropy only).
    softcap: f32,
    // z-loss: z_loss_scale · lse² added to each row's loss (cross-entropy only).
    z_loss_scale: f32,
    // Offsets of the extra outputs in the class-index `aux` buffer (see class_index.wgsl).
    lse_off: u32,
    argmax_off: u32,
    arg_partial_off: u32,
    accuracy_off: u32,
    // Elementwise losses: the elements of the whole batch (rows is one chunk's).
    batch_len: u32,
}

const FLAG_WEIGHT: u32 = 1u;       // a class-weight buffer is bound
const FLAG_MEAN: u32 = 2u;         // reduction = mean
const FLAG_SUM: u32 = 4u;          // reduction = sum (neither bit: none)
const FLAG_GRAD_BUFFER: u32 = 8u;  // grad_output comes from a buffer, not grad_scale
const FLAG_IN_PLACE: u32 = 32u;    // the gradient overwrites the logits (bound as grad)
const FLAG_EMPTY_ZERO: u32 = 16u;  // EmptyPolicy::Zero: 0 instead of NaN for empty rows / means
const FLAG_PROB_TARGETS: u32 = 64u; // cross-entropy targets are rows × classes probabilities
const FLAG_LSE: u32 = 128u;         // write each row's log-sum-exp to aux[lse_off + row]
const FLAG_ARGMAX: u32 = 256u;      // write each row's argmax to aux[argmax_off + row]

@group(0) @binding(0) var<uniform> params: Params;

const EXP_MASK: u32 = 0x7f800000u;
const POS_INF_BITS: u32 = 0x7f800000u;
const NEG_INF_BITS: u32 = 0xff800000u;
const NAN_BITS: u32 = 0x7fc00000u;
const MAX_FINITE: f32 = 0x1.fffffep+127f;

fn is_finite_bits(x: f32) -> bool {
    return (bitcast<u32>(x) & EXP_MASK) != EXP_MASK;
}

fn is_nan_bits(x: f32) -> bool {
    let b = bitcast<u32>(x);
    return (b & EXP_MASK) == EXP_MASK && (b & 0x007fffffu) != 0u;
}

fn has_sign_bit(x: f32) -> bool {
    return (bitcast<u32>(x) & 0x80000000u) != 0u;
}

fn is_neg_inf(x: f32) -> bool {
    return bitcast<u32>(x) == NEG_INF_BITS;
}

// Non-finite values are made from bits passed as a parameter, so the bitcast is not a
// const-expression: WGSL makes a const-expression that evaluates to NaN or ±inf a
// shader-creation error, which browsers (Tint) enforce and naga does not.
fn f32_from_bits(bits: u32) -> f32 {
    return bitcast<f32>(bits);
}

fn nan_f32() -> f32 {
    return f32_from_bits(NAN_BITS);
}

fn neg_inf_f32() -> f32 {
    return f32_from_bits(NEG_INF_BITS);
}

// An extended real: `v` is always finite; `k` says what the value really is:
// 0 finite (= v), 1 +Infinity, 2 -Infinity, 3 NaN. The kinds are bits, so the kind of a
// sum is the OR of the kinds (+inf + -inf = NaN).
struct Ext {
    v: f32,
    k: u32,
}

const EXT_FINITE: u32 = 0u;
const EXT_POS_INF: u32 = 1u;
const EXT_NEG_INF: u32 = 2u;
const EXT_NAN: u32 = 3u;

fn ext(v: f32) -> Ext {
    return Ext(v, EXT_FINITE);
}

fn ext_kind(k: u32) -> Ext {
    return Ext(0.0, k);
}

// Classifies a float read from memory by its bits, without a branch on them (a CPU
// adapter runs both sides of a branch its lanes disagree on).
fn ext_from(x: f32) -> Ext {
    let b = bitcast<u32>(x);
    let finite = (b & EXP_MASK) != EXP_MASK;
    let inf = select(EXT_NAN, EXT_NEG_INF, b == NEG_INF_BITS);
    let kind = select(select(inf, EXT_POS_INF, b == POS_INF_BITS), EXT_FINITE, finite);
    return Ext(select(0.0, x, finite), kind);
}

fn ext_to_f32(e: Ext) -> f32 {
    switch e.k {
        case 0u: { return e.v; }
        case 1u: { return f32_from_bits(POS_INF_BITS); }
        case 2u: { return neg_inf_f32(); }
        default: { return nan_f32(); }
    }
}

fn ext_add(a: Ext, b: Ext) -> Ext {
    if (a.k | b.k) == EXT_FINITE {
        return ext(a.v + b.v);
    }
    return ext_kind(a.k | b.k);
}

// e · s for a finite s (0 · ±inf = NaN, a negative s swaps the infinities).
fn ext_scale(e: Ext, s: f32) -> Ext {
    if e.k == EXT_FINITE {
        return ext(e.v * s);
    }
    if e.k == EXT_NAN || s == 0.0 {
        return ext_kind(EXT_NAN);
    }
    if s < 0.0 {
        return ext_kind(3u - e.k);
    }
    return e;
}

// e / d for a finite d, with IEEE's rules for d == 0 (0/0 = NaN, x/0 = ±inf).
fn ext_div(e: Ext, d: f32) -> Ext {
    if d != 0.0 {
        return ext_scale(e, 1.0 / d);
    }
    if e.k != EXT_FINITE {
        return e;
    }
    if e.v > 0.0 {
        return ext_kind(EXT_POS_INF);
    }
    if e.v < 0.0 {
        return ext_kind(EXT_NEG_INF);
    }
    return ext_kind(EXT_NAN);
}

// Where a row's class 0 sits relative to the start of a rows × classes operand (or an
// (N, C, d1, …) one); class c is params.spatial elements further on per class.
fn row_start(row: u32) -> u32 {
    if params.spatial == 1u {
        return row * params.classes;
    }
    let n = row / params.spatial;
    return n * params.classes * params.spatial + (row - n * params.spatial);
}

// Linear index of this workgroup in a dispatch folded into x and y (x ≤ 65535).
fn workgroup_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.y * nwg.x + wid.x;
}
