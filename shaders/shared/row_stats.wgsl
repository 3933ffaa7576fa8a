//! import shared/common
//! import row_reduce

// Online log-sum-exp of one row, shared by the softmax and cross-entropy families.
// Each invocation folds its share of the row into a RowStats (one read of each element,
// max-subtracted on the fly), then row_totals combines the shares with the row_reduce
// helpers. Non-finite logits are classified by their bits and never enter arithmetic:
// -inf contributes exp = 0 (and flags, for label smoothing), NaN / +inf poison the row.

const ROW_POISON: u32 = 1u;       // a NaN or +inf logit: the whole row is NaN
const NEG_INF_W_POS: u32 = 2u;    // a -inf logit at a class of weight > 0
const NEG_INF_W_NEG: u32 = 4u;    // ... weight < 0
const NEG_INF_W_ZERO: u32 = 8u;   // ... weight == 0
const ROW_HAS_NAN: u32 = 16u;     // a NaN logit (set with ROW_POISON)
const ROW_POS_INF: u32 = 32u;     // a +inf logit (set with ROW_POISON)

struct RowStats {
    // Running max of the finite logits seen (meaningless while sum_exp == 0).
    m: f32,
    // Σ exp(x - m) over the finite logits seen; 0 means none seen yet.
    sum_exp: f32,
    // Σ w·(x - m) over the finite logits seen (for the label-smoothing term).
    wx: f32,
    // Σ w over the finite logits seen.
    w_finite: f32,
    // Σ w over every class seen.
    w_all: f32,
    flags: u32,
}

fn stats_empty() -> RowStats {
    return RowStats(0.0, 0.0, 0.0, 0.0, 0.0, 0u);
}

fn stats_push(s: ptr<function, RowStats>, x: f32, w: f32) {
    (*s).w_all += w;
    if !is_finite_bits(x) {
        if is_neg_inf(x) {
            (*s).flags |= select(select(NEG_INF_W_ZERO, NEG_INF_W_NEG, w < 0.0), NEG_INF_W_POS, w > 0.0);
        } else {
            (*s).flags |= select(ROW_POISON | ROW_HAS_NAN, ROW_POISON | ROW_POS_INF, bitcast<u32>(x) == POS_INF_BITS);
        }
        return;
    }
    if (*s).sum_exp == 0.0 {
        (*s).m = x;
        (*s).sum_exp = 1.0;
        (*s).wx = 0.0;
        (*s).w_finite = w;
        return;
    }
    if x > (*s).m {
        let d = (*s).m - x;
        (*s).sum_exp = (*s).sum_exp * exp(d) + 1.0;
        (*s).wx += d * (*s).w_finite;
        (*s).m = x;
    } else {
        (*s).sum_exp += exp(x - (*s).m);
        (*s).wx += w * (x - (*s).m);
    }
    (*s).w_finite += w;
}

// Statistics before the first logit, for stats_push4 (and stats_push) to fold into.
fn stats_start() -> RowStats {
    return RowStats(-MAX_FINITE, 0.0, 0.0, 0.0, 0.0, 0u);
}

// Folds four logits of weight 1 into s, keeping only what softmax and unsmoothed,
// unweighted-sum cross-entropy need (m, sum_exp, flags; not wx / w_finite / w_all, nor the
// -inf flags of smoothing): the block's max, four exps, and a rescale only where the
// running max moves (in a few blocks of a long row; skipping exp(0) = 1 moves no bit, and
// on lavapipe saves 2–9 % of a long row's statistics pass). Non-finite logits are
// classified by their bits; the rescale of an empty s is clamped so it never computes
// exp(-inf).
fn stats_push4(s: ptr<function, RowStats>, x: vec4<f32>) {
    let b = bitcast<vec4<u32>>(x);
    let finite = (b & vec4<u32>(EXP_MASK)) != vec4<u32>(EXP_MASK);
    if !all(finite) {
        let nan = !finite & ((b & vec4<u32>(0x007fffffu)) != vec4<u32>(0u));
        let pos_inf = b == vec4<u32>(POS_INF_BITS);
        if any(nan) {
            (*s).flags |= ROW_POISON | ROW_HAS_NAN;
        }
        if any(pos_inf) {
            (*s).flags |= ROW_POISON | ROW_POS_INF;
        }
    }
    let xm = select(vec4<f32>(-MAX_FINITE), x, finite);
    let m_new = max((*s).m, max(max(xm.x, xm.y), max(xm.z, xm.w)));
    let e = select(vec4<f32>(0.0), exp(xm - m_new), finite);
    if m_new > (*s).m {
        (*s).sum_exp *= exp(max((*s).m - m_new, -200.0));
        (*s).m = m_new;
    }
    (*s).sum_exp += (e.x + e.y) + (e.z + e.w);
}

// Four logits at a time (the resident kernels, the plain gradient).
fn is_finite4(x: vec4<f32>) -> vec4<bool> {
    return (bitcast<vec4<u32>>(x) & vec4<u32>(EXP_MASK)) != vec4<u32>(EXP_MASK);
}

fn max4(v: vec4<f32>) -> f32 {
    return max(max(v.x, v.y), max(v.z, v.w));
}

fn sum4(v: vec4<f32>) -> f32 {
    return (v.x + v.y) + (v.z + v.w);
}

// The classes 4q … 4q+3 (quad q) of a row.
fn quad_classes(q: u32) -> vec4<u32> {
    return 4u * q + vec4<u32>(0u, 1u, 2u, 3u);
}

// exp(x - m) for the finite logits of a quad, 0 for the others (never computed from them).
fn quad_exp(x: vec4<f32>, m: f32) -> vec4<f32> {
    let finite = is_finite4(x);
    return select(vec4<f32>(0.0), exp(select(vec4<f32>(m), x, finite) - m), finite);
}

// The whole row's statistics, the same in every invocation of the workgroup.
struct RowTotals {
    // Max of the finite logits (-MAX_FINITE if there are none).
    m: f32,
    // Σ exp(x - m) over finite logits: 0 iff the row has no finite logit.
    sum_exp: f32,
    // Σ w·(x - m) over finite logits.
    wx: f32,
    w_finite: f32,
    w_all: f32,
    flags: u32,
}

fn row_totals(s: RowStats, lid: u32) -> RowTotals {
    let has = s.sum_exp > 0.0;
    let m = row_max(select(-MAX_FINITE, s.m, has), lid);
    var part = vec4<f32>(0.0, 0.0, s.w_finite, s.w_all);
    if has {
        let d = s.m - m;
        part.x = s.sum_exp * exp(d);
        part.y = s.wx + d * s.w_finite;
    }
    let sums = row_sum4(part, lid);
    let flags = row_or(s.flags, lid);
    return RowTotals(m, sums.x, sums.y, sums.z, sums.w, flags);
}

// True when the row's outputs are all NaN: a NaN / +inf logit, or no finite logit.
fn row_is_poisoned(t: RowTotals) -> bool {
    return (t.flags & ROW_POISON) != 0u || t.sum_exp == 0.0;
}

// x - lse for a finite logit x of the row, as (x - m) - log Σ: x - m is exact for logits
// near the max, so large logits (±1e4) lose nothing to the rounding of lse itself.
fn row_log_prob(t: RowTotals, x: f32) -> f32 {
    return (x - t.m) - log(t.sum_exp);
}

// The row's log-sum-exp, exactly as torch.logsumexp: NaN with a NaN logit, +inf with a
// +inf one, -inf when every logit is -inf.
fn row_lse(t: RowTotals) -> Ext {
    if (t.flags & ROW_HAS_NAN) != 0u {
        return ext_kind(EXT_NAN);
    }
    if (t.flags & ROW_POS_INF) != 0u {
        return ext_kind(EXT_POS_INF);
    }
    if t.sum_exp == 0.0 {
        return ext_kind(EXT_NEG_INF);
    }
    return ext(finite_lse(t));
}

// The log-sum-exp of a row that has a finite logit and no NaN / +inf.
fn finite_lse(t: RowTotals) -> f32 {
    return t.m + log(t.sum_exp);
}

// softmax of a finite logit x of the row.
fn row_prob(t: RowTotals, x: f32) -> f32 {
    return exp(x - t.m) / t.sum_exp;
}

// A row's statistics over part of its classes, as stored between the passes of split rows
// (and handed between shards): two vec4, (m, sum_exp, wx, w_finite) and
// (w_all, flags bits, target logit, 1 if the target logit is in this part else 0).
// load_partial / store_partial are defined by the module that includes this file.
fn store_partial_totals(i: u32, t: RowTotals, target_logit: f32, has_target: bool) {
    store_partial(2u * i, vec4<f32>(t.m, t.sum_exp, t.wx, t.w_finite));
    store_partial(2u * i + 1u, vec4<f32>(t.w_all, bitcast<f32>(t.flags), target_logit, select(0.0, 1.0, has_target)));
}

struct MergedRow {
    totals: RowTotals,
    target_logit: f32,
}

// Merges `count` partials from index `first` exactly (online log-sum-exp: the max first,
// then each part's sums rescaled to it), in a fixed order so every invocation and every
// run gets the same bits.
fn merge_partials(first: u32, count: u32) -> MergedRow {
    var m = -MAX_FINITE;
    for (var i = 0u; i < count; i++) {
        let a = load_partial(2u * (first + i));
        if a.y > 0.0 {
            m = max(m, a.x);
        }
    }
    var t = RowTotals(m, 0.0, 0.0, 0.0, 0.0, 0u);
    var target_logit = 0.0;
    for (var i = 0u; i < count; i++) {
        let a = load_partial(2u * (first + i));
        let b = load_partial(2u * (first + i) + 1u);
        if a.y > 0.0 {
            let d = a.x - m;
            t.sum_exp += a.y * exp(d);
            t.wx += a.z + d * a.w;
        }
        t.w_finite += a.w;
        t.w_all += b.x;
        t.flags |= bitcast<u32>(b.y);
        if b.w != 0.0 {
            target_logit = b.z;
        }
    }
    return MergedRow(t, target_logit);
}

// The index of a split row's first partial (its segments' partials follow in order).
fn first_partial(row: u32) -> u32 {
    return (params.row_base + row) * params.segments;
}

// A split row's partials, merged.
fn merged_row(row: u32) -> MergedRow {
    return merge_partials(first_partial(row), params.segments);
}

// Short rows are handled one per invocation, SOLO_WG rows per workgroup.
const SOLO_WG: u32 = 64u;

// The row of a one-invocation-per-row kernel (workgroups folded into x and y).
fn solo_row_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.y * nwg.x * SOLO_WG + gid.x;
}

// The totals of a row one invocation saw whole.
fn solo_totals(s: RowStats) -> RowTotals {
    return RowTotals(select(-MAX_FINITE, s.m, s.sum_exp > 0.0), s.sum_exp, s.wx, s.w_finite, s.w_all, s.flags);
}

// The classes [begin, end) of a row's memory that a workgroup covers.
struct Segment {
    row: u32,
    begin: u32,
    end: u32,
    // Index of the segment's partial in batch.partials (pairs of vec4).
    partial: u32,
}

fn segment_of(index: u32) -> Segment {
    let row = index / params.segments;
    let seg = index % params.segments;
    let begin = seg * params.seg_len;
    let end = min(begin + params.seg_len, params.classes);
    return Segment(row, begin, end, first_partial(row) + seg);
}
