//! import shared/row_stats

// Rows held on-chip ("resident" rows), shared by softmax_resident.wgsl and
// cross_entropy_resident.wgsl. One workgroup per row; each of its WG invocations keeps
// SLOTS quads of the row (four consecutive classes, one vec4) in registers: quad
// lid + s·WG for s = 0 … SLOTS-1, so each step of the workgroup reads WG adjacent quads.
// The row is read from memory once; its statistics and every output come from registers.
//
// The host unrolls the slots: each line of these files that contains `$s` is repeated
// for s = 0, 1, …, SLOTS-1 with `$s` replaced by the number (src/gpu/shaders.rs), so every
// slot is a value of its own; an array indexed in a loop would live in memory instead.
// Rows need classes and offsets that are multiples of 4, and at most 4·WG·SLOTS classes.
//
// Numerics as row_stats.wgsl: the max is taken over the finite logits, exp(x - max) is
// summed in f32 (each invocation its slots in order, then the row_reduce tree), -inf
// logits contribute 0, NaN / +inf set the row's flags (the row's outputs are then NaN),
// and a row with no finite logit has sum_exp = 0. Quads past the row's end read as -inf.

// Quad q of a row of `quads` quads from a value read at a clamped index: -inf past the end.
fn resident_pad(x: vec4<f32>, q: u32, quads: u32) -> vec4<f32> {
    return select(vec4<f32>(neg_inf_f32()), x, q < quads);
}

// What an invocation folds from its quads: the running max of the finite logits, and
// the maxima of their bits that tell the non-finite ones apart (see resident_flags).
struct ResidentFold {
    // Max of the finite logits, per component (-MAX_FINITE while none).
    m: vec4<f32>,
    // Max of |x|'s bits: above POS_INF_BITS iff a NaN was seen.
    abs_bits: vec4<u32>,
    // Max of x's bits as i32: at least POS_INF_BITS iff +inf or a positive NaN was seen.
    signed_bits: vec4<i32>,
}

fn resident_start() -> ResidentFold {
    return ResidentFold(vec4<f32>(-MAX_FINITE), vec4<u32>(0u), vec4<i32>(i32(0x80000000u)));
}

// Folds a quad in: six vector operations per quad, no branch.
fn resident_fold(f: ResidentFold, x: vec4<f32>) -> ResidentFold {
    let b = bitcast<vec4<u32>>(x);
    let a = b & vec4<u32>(0x7fffffffu);
    let finite = a < vec4<u32>(POS_INF_BITS);
    return ResidentFold(max(f.m, select(vec4<f32>(-MAX_FINITE), x, finite)), max(f.abs_bits, a), max(f.signed_bits, bitcast<vec4<i32>>(b)));
}

// The row flags (row_stats.wgsl) of what an invocation folded: NaN, else +inf.
fn resident_flags(f: ResidentFold) -> u32 {
    if any(f.abs_bits > vec4<u32>(POS_INF_BITS)) {
        return ROW_POISON | ROW_HAS_NAN;
    }
    if any(f.signed_bits >= vec4<i32>(i32(POS_INF_BITS))) {
        return ROW_POISON | ROW_POS_INF;
    }
    return 0u;
}

// The row's max of finite logits from each invocation's running max (-MAX_FINITE if none).
fn resident_max(m: vec4<f32>, lid: u32) -> f32 {
    return row_max(max4(m), lid);
}

// The row's totals from its max and each invocation's Σ exp(x - max) and fold.
fn resident_totals(m: f32, sum: vec4<f32>, f: ResidentFold, lid: u32) -> RowTotals {
    let s = row_sum4(vec4<f32>(sum4(sum), 0.0, 0.0, 0.0), lid).x;
    return RowTotals(m, s, 0.0, 0.0, 0.0, row_or(resident_flags(f), lid));
}

// Short rows (classes ≤ 32, the *_short kernels): one invocation holds a whole row, SLOTS
// quads of it, and nothing is combined across invocations. Classes are read one by one
// (rows need not be aligned; class c of row r at row_start(r) + c·spatial).

// Where classes 4q … 4q+3 of the row whose class 0 is element i0 sit (clamped to the
// row), and which of them are in the row.
fn short_index(i0: u32, q: u32) -> vec4<u32> {
    return vec4<u32>(i0) + min(quad_classes(q), vec4<u32>(params.classes - 1u)) * params.spatial;
}

fn short_in_row(q: u32) -> vec4<bool> {
    return quad_classes(q) < vec4<u32>(params.classes);
}

// A short row's totals from what its one invocation folded.
fn short_totals(m: f32, sum: vec4<f32>, f: ResidentFold) -> RowTotals {
    return RowTotals(m, sum4(sum), 0.0, 0.0, 0.0, resident_flags(f));
}
