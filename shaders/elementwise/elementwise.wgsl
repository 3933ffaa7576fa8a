//! import shared/common

// Elementwise losses over n (input, target) pairs: MSE, L1, smooth L1, Huber, binary
// cross-entropy on probabilities and on logits, KL divergence, and RMSE (the square root of
// MSE's mean). The loss is chosen by the bits above LOSS_SHIFT in params.flags (uniform, so
// the switch never diverges).
//
// Layout: the ClassIndex bind-group layout, slot for slot (binding 5 is not used):
//   1 input          x, n values from params.input_off
//   2 target_values  y, n values from params.target_off
//   3 weights        [pos_weight: params.classes values, if EW_POS_WEIGHT], then from
//                    params.class_offset [weight: one per element, if FLAG_WEIGHT]
//   4 grad_output    n values (reduction none) or one, from params.grad_output_off
//   6 row_loss       n losses (reduction none) or one partial sum per workgroup, from
//                    params.row_loss_off
//   7 grad           n values from params.grad_off
//   8 loss_out       the reduced loss at params.loss_out_off
// Batches larger than one binding are recorded in chunks of whole tiles, each bound from
// its first element (row_base in the batch); weights are bound per chunk too.
// Params: rows = this chunk's elements, batch_len = the batch's n; classes = pos_weight's length (it broadcasts over the last dimension),
// or for KL the elements per batch row (batchmean divides by rows / classes), else 1;
// label_smoothing = beta (smooth L1) or delta (Huber).
//
// Passes: every kernel takes a tile of EW_TILE = 8·256 elements per workgroup (8 coalesced
// rows of 256, one element of each per invocation), workgroups folded into the dispatch's x
// and y. forward and forward_backward read x and y once and write the losses, or (reduced)
// one partial per tile: each invocation adds its 8 in order, then a fixed tree in workgroup
// memory; elementwise_reduce folds the partials in one workgroup in a fixed order, so every
// reduction is bit-identical from run to run. backward writes the gradient alone (RMSE's
// after the reduction, whose result it reads).
//
// Numerics: every value is an Ext. Infinities and NaN from the inputs, and overflow of a
// sum, product, quotient or exp, are carried as kinds with IEEE's rules, never computed
// with. Logs near 1 and log1p use a series, so losses near 0 keep their relative accuracy.

@group(0) @binding(1) var<storage, read> input: array<f32>;
@group(0) @binding(2) var<storage, read> target_values: array<f32>;
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;
@group(0) @binding(4) var<storage, read> grad_output: array<f32>;
@group(0) @binding(6) var<storage, read_write> row_loss: array<f32>;
@group(0) @binding(7) var<storage, read_write> grad: array<f32>;
@group(0) @binding(8) var<storage, read_write> loss_out: array<f32>;

// Mirrors src/ops/elementwise.rs.
const EW_POS_WEIGHT: u32 = 0x10000u;  // a pos_weight follows the weights
const EW_LOG_TARGET: u32 = 0x20000u;  // KL: the target is log-probabilities
const EW_BATCHMEAN: u32 = 0x40000u;   // with FLAG_MEAN: divide by rows / classes, not n
const EW_ROOT: u32 = 0x80000u;        // with FLAG_MEAN: the square root of the mean (RMSE)
const LOSS_SHIFT: u32 = 24u;
const LOSS_MSE: u32 = 0u;
const LOSS_L1: u32 = 1u;
const LOSS_SMOOTH_L1: u32 = 2u;
const LOSS_HUBER: u32 = 3u;
const LOSS_BCE: u32 = 4u;
const LOSS_BCE_WITH_LOGITS: u32 = 5u;
const LOSS_KL_DIV: u32 = 6u;

const EW_WG: u32 = 256u;
// Elements per invocation, and per workgroup (one partial sum each).
const EW_STEPS: u32 = 8u;
const EW_TILE: u32 = EW_WG * EW_STEPS;
const MIN_NORMAL: f32 = 1.17549435e-38;
const LN_2: f32 = 0.69314718;
// exp of anything larger is taken as overflow (exp(88.72) ≈ 3.3995e38 < MAX_FINITE).
const EXP_MAX_ARG: f32 = 88.72;
// PyTorch's floor of (1 - p)·p in BCE's gradient.
const BCE_EPSILON: f32 = 1e-12;

var<workgroup> ew_value: array<f32, 256>;
var<workgroup> ew_kind: array<u32, 256>;

// ---- Ext arithmetic with IEEE's rules, overflow included -------------------------------

fn ext_is_zero(a: Ext) -> bool {
    return a.k == EXT_FINITE && a.v == 0.0;
}

fn ext_is_negative(a: Ext) -> bool {
    return a.k == EXT_NEG_INF || (a.k == EXT_FINITE && a.v < 0.0);
}

fn ext_signed_inf(negative: bool) -> Ext {
    return ext_kind(select(EXT_POS_INF, EXT_NEG_INF, negative));
}

fn ext_neg(a: Ext) -> Ext {
    if a.k == EXT_FINITE {
        return ext(-a.v);
    }
    if a.k == EXT_NAN {
        return a;
    }
    return ext_kind(3u - a.k);
}

fn ext_abs(a: Ext) -> Ext {
    if a.k == EXT_FINITE {
        return ext(abs(a.v));
    }
    if a.k == EXT_NAN {
        return a;
    }
    return ext_kind(EXT_POS_INF);
}

// torch.sign, `(0 < a) - (a < 0)`: -1, 0 or 1, and 0 for ±0 and for NaN.
fn ext_sign(a: Ext) -> Ext {
    if a.k == EXT_FINITE {
        return ext(sign(a.v));
    }
    if a.k == EXT_NAN {
        return ext(0.0);
    }
    return ext(select(1.0, -1.0, a.k == EXT_NEG_INF));
}

// a + b; a finite sum beyond MAX_FINITE is ±inf (tested before it is computed).
fn ext_plus(a: Ext, b: Ext) -> Ext {
    if (a.k | b.k) != EXT_FINITE {
        return ext_kind(a.k | b.k);
    }
    if (a.v < 0.0) == (b.v < 0.0) && abs(a.v) > MAX_FINITE - abs(b.v) {
        return ext_signed_inf(a.v < 0.0);
    }
    return ext(a.v + b.v);
}

fn ext_minus(a: Ext, b: Ext) -> Ext {
    return ext_plus(a, ext_neg(b));
}

// a · b: 0 · ±inf = NaN; a finite product beyond MAX_FINITE is ±inf.
fn ext_times(a: Ext, b: Ext) -> Ext {
    if a.k == EXT_NAN || b.k == EXT_NAN {
        return ext_kind(EXT_NAN);
    }
    let negative = ext_is_negative(a) != ext_is_negative(b);
    if (a.k | b.k) == EXT_FINITE {
        if abs(a.v) > 1.0 && abs(b.v) > MAX_FINITE / abs(a.v) {
            return ext_signed_inf(negative);
        }
        return ext(a.v * b.v);
    }
    if ext_is_zero(a) || ext_is_zero(b) {
        return ext_kind(EXT_NAN);
    }
    return ext_signed_inf(negative);
}

// a / b: x/0 = ±inf (0/0 = NaN), finite/±inf = 0, inf/inf = NaN, overflow is ±inf.
fn ext_over(a: Ext, b: Ext) -> Ext {
    if a.k == EXT_NAN || b.k == EXT_NAN {
        return ext_kind(EXT_NAN);
    }
    let negative = ext_is_negative(a) != ext_is_negative(b);
    if b.k != EXT_FINITE {
        if a.k != EXT_FINITE {
            return ext_kind(EXT_NAN);
        }
        return ext(0.0);
    }
    if a.k != EXT_FINITE {
        return ext_signed_inf(negative);
    }
    if b.v == 0.0 {
        if a.v == 0.0 {
            return ext_kind(EXT_NAN);
        }
        return ext_signed_inf(negative);
    }
    if abs(b.v) < 1.0 && abs(a.v) > MAX_FINITE * abs(b.v) {
        return ext_signed_inf(negative);
    }
    return ext(a.v / b.v);
}

// max(a, lo) as C++'s std::max(a, lo): NaN stays NaN, -inf becomes lo.
fn ext_at_least(a: Ext, lo: f32) -> Ext {
    if a.k == EXT_NEG_INF || (a.k == EXT_FINITE && a.v < lo) {
        return ext(lo);
    }
    return a;
}

fn ext_exp(a: Ext) -> Ext {
    if a.k == EXT_NEG_INF {
        return ext(0.0);
    }
    if a.k != EXT_FINITE {
        return a;
    }
    if a.v > EXP_MAX_ARG {
        return ext_kind(EXT_POS_INF);
    }
    return ext(exp(a.v));
}

// log(1 + x) for x in (-0.25, 0.5) as 2·atanh(s), s = x / (2 + x), by its series: |s| ≤ 0.2,
// so the terms up to s¹⁵ leave an error below 4e-13 relative.
fn log1p_series(x: f32) -> f32 {
    let s = x / (2.0 + x);
    let s2 = s * s;
    var p = 1.0 / 15.0;
    p = p * s2 + 1.0 / 13.0;
    p = p * s2 + 1.0 / 11.0;
    p = p * s2 + 1.0 / 9.0;
    p = p * s2 + 1.0 / 7.0;
    p = p * s2 + 1.0 / 5.0;
    p = p * s2 + 1.0 / 3.0;
    return 2.0 * s * (1.0 + s2 * p);
}

// log(1 + x) for a finite x > -1.
fn log1p_finite(x: f32) -> f32 {
    if x > -0.25 && x < 0.5 {
        return log1p_series(x);
    }
    return log(1.0 + x);
}

// log(v) for a finite v > 0: by the series near 1 (v - 1 is exact there), from the bits
// for denormals (which a device may flush to 0 in arithmetic).
fn log_positive(v: f32) -> f32 {
    if v > 0.75 && v < 1.5 {
        return log1p_series(v - 1.0);
    }
    if v >= MIN_NORMAL {
        return log(v);
    }
    let mantissa = bitcast<u32>(v) & 0x007fffffu;
    return log(f32(mantissa)) - 149.0 * LN_2;
}

fn ext_log(a: Ext) -> Ext {
    if a.k == EXT_POS_INF {
        return a;
    }
    let bits = bitcast<u32>(a.v);
    if a.k != EXT_FINITE || (bits > 0x80000000u) {
        return ext_kind(EXT_NAN);
    }
    if (bits & 0x7fffffffu) == 0u {
        return ext_kind(EXT_NEG_INF);
    }
    return ext(log_positive(a.v));
}

fn ext_log1p(a: Ext) -> Ext {
    if a.k == EXT_POS_INF {
        return a;
    }
    if a.k != EXT_FINITE || a.v < -1.0 {
        return ext_kind(EXT_NAN);
    }
    if a.v == -1.0 {
        return ext_kind(EXT_NEG_INF);
    }
    return ext(log1p_finite(a.v));
}

// softplus(z) = log(1 + e^z) = max(z, 0) + log1p(e^-|z|).
fn ext_softplus(z: Ext) -> Ext {
    if z.k == EXT_NEG_INF {
        return ext(0.0);
    }
    if z.k != EXT_FINITE {
        return z;
    }
    return ext(max(z.v, 0.0) + log1p_finite(exp(-abs(z.v))));
}

// (σ(x), σ(-x)) for an x that is not NaN, each without cancellation: with e = e^-|x|,
// 1 / (1 + e) and e / (1 + e).
fn sigmoid_pair(x: Ext) -> vec2<f32> {
    if x.k == EXT_POS_INF {
        return vec2<f32>(1.0, 0.0);
    }
    if x.k == EXT_NEG_INF {
        return vec2<f32>(0.0, 1.0);
    }
    let e = exp(-abs(x.v));
    let large = 1.0 / (1.0 + e);
    let small = e / (1.0 + e);
    if x.v >= 0.0 {
        return vec2<f32>(large, small);
    }
    return vec2<f32>(small, large);
}

// ---- The losses: each element's loss and its derivative with respect to the input ------

struct Point {
    loss: Ext,
    slope: Ext,
}

fn mse_point(d: Ext) -> Point {
    return Point(ext_times(d, d), ext_times(ext(2.0), d));
}

// Float order as integers (for finite values; -0 and +0 equal): exact on every device,
// since integer compares are never flushed.
fn order_key(v: f32) -> i32 {
    let b = bitcast<i32>(v);
    return select(b, -(b & 0x7fffffff), b < 0);
}

// x - y whose sign survives devices that flush denormals to zero (NVIDIA's): a nonzero
// difference that flushed is replaced by the smallest normal of its sign (an error under
// 1.2e-38), so the L1 / smooth-L1 slope sign(x - y) stays exact.
fn difference(x: Ext, y: Ext) -> Ext {
    let d = ext_minus(x, y);
    if d.k != EXT_FINITE || d.v != 0.0 || x.k != EXT_FINITE || y.k != EXT_FINITE {
        return d;
    }
    let kx = order_key(x.v);
    let ky = order_key(y.v);
    if kx == ky {
        return d;
    }
    return ext(select(-MIN_NORMAL, MIN_NORMAL, kx > ky));
}

fn l1_point(d: Ext) -> Point {
    return Point(ext_abs(d), ext_sign(d));
}

// |d| < β: 0.5·d²/β (as 0.5·d·(d/β), which cannot overflow early), slope d/β;
// else |d| - 0.5·β, slope sign(d). β = 0 is L1 (slope 0 at a NaN d); with β > 0 a NaN d
// has slope NaN, as PyTorch's backward chain `d ≤ -β ? -1 : d ≥ β ? 1 : d/β`.
fn smooth_l1_point(d: Ext, beta: f32) -> Point {
    if d.k == EXT_NAN && beta > 0.0 {
        return Point(d, d);
    }
    let a = ext_abs(d);
    if a.k == EXT_FINITE && a.v < beta {
        let r = d.v / beta;
        return Point(ext(0.5 * d.v * r), ext(r));
    }
    return Point(ext_plus(a, ext(-0.5 * beta)), ext_sign(d));
}

// |d| < δ: 0.5·d², slope d; else δ·(|d| - 0.5·δ), slope δ·sign(d); a NaN d has slope NaN,
// as PyTorch's backward chain `d < -δ ? -δ : d > δ ? δ : d`.
fn huber_point(d: Ext, delta: f32) -> Point {
    if d.k == EXT_NAN {
        return Point(d, d);
    }
    let a = ext_abs(d);
    if a.k == EXT_FINITE && a.v < delta {
        return Point(ext_times(ext(0.5 * d.v), d), d);
    }
    return Point(ext_times(ext(delta), ext_plus(a, ext(-0.5 * delta))), ext_times(ext(delta), ext_sign(d)));
}

// PyTorch's: (y - 1)·max(log1p(-p), -100) - y·max(log p, -100);
// slope (p - y) / max((1 - p)·p, 1e-12).
fn bce_point(p: Ext, y: Ext) -> Point {
    let log_p = ext_at_least(ext_log(p), -100.0);
    let log_q = ext_at_least(ext_log1p(ext_neg(p)), -100.0);
    let loss = ext_minus(ext_times(ext_minus(y, ext(1.0)), log_q), ext_times(y, log_p));
    let floor = ext_at_least(ext_times(ext_minus(ext(1.0), p), p), BCE_EPSILON);
    return Point(loss, ext_over(ext_minus(p, y), floor));
}

// (1 - y)·x + (1 + (pw - 1)·y)·softplus(-x); slope (1 - y)·σ(x) - pw·y·σ(-x), which is
// PyTorch's (1 + (pw - 1)·y)·σ(x) - pw·y without its cancellation at large |x|.
fn bce_with_logits_point(x: Ext, y: Ext, pos_weight: f32) -> Point {
    let one_minus_y = ext_minus(ext(1.0), y);
    let log_weight = ext_plus(ext(1.0), ext_times(ext(pos_weight - 1.0), y));
    let loss = ext_plus(ext_times(one_minus_y, x), ext_times(log_weight, ext_softplus(ext_neg(x))));
    if x.k == EXT_NAN {
        return Point(loss, x);
    }
    let s = sigmoid_pair(x);
    let slope = ext_minus(ext_times(one_minus_y, ext(s.x)), ext_times(ext_times(ext(pos_weight), y), ext(s.y)));
    return Point(loss, slope);
}

// PyTorch's: xlogy(t, t) - t·q (xlogy(0, t) = 0), slope -t; with log targets
// exp(t)·(t - q), slope -exp(t).
fn kl_div_point(q: Ext, t: Ext) -> Point {
    if (params.flags & EW_LOG_TARGET) != 0u {
        let e = ext_exp(t);
        return Point(ext_times(e, ext_minus(t, q)), ext_neg(e));
    }
    var xlogy = ext(0.0);
    if !ext_is_zero(t) {
        xlogy = ext_times(t, ext_log(t));
    }
    return Point(ext_minus(xlogy, ext_times(t, q)), ext_neg(t));
}

fn pos_weight_of(i: u32) -> f32 {
    if (params.flags & EW_POS_WEIGHT) == 0u {
        return 1.0;
    }
    return weights[i % params.classes];
}

// Element i's weighted loss and slope.
fn element_point(i: u32) -> Point {
    let x = ext_from(input[params.input_off + i]);
    let y = ext_from(target_values[params.target_off + i]);
    var p: Point;
    switch params.flags >> LOSS_SHIFT {
        case LOSS_MSE: {
            p = mse_point(difference(x, y));
        }
        case LOSS_L1: {
            p = l1_point(difference(x, y));
        }
        case LOSS_SMOOTH_L1: {
            p = smooth_l1_point(difference(x, y), params.label_smoothing);
        }
        case LOSS_HUBER: {
            p = huber_point(difference(x, y), params.label_smoothing);
        }
        case LOSS_BCE: {
            p = bce_point(x, y);
        }
        case LOSS_BCE_WITH_LOGITS: {
            p = bce_with_logits_point(x, y, pos_weight_of(i));
        }
        default: {
            p = kl_div_point(x, y);
        }
    }
    if (params.flags & FLAG_WEIGHT) != 0u {
        let w = ext(weights[params.class_offset + i]);
        p = Point(ext_times(p.loss, w), ext_times(p.slope, w));
    }
    return p;
}

// ---- Reductions and the upstream gradient ---------------------------------------------

fn is_reduced() -> bool {
    return (params.flags & (FLAG_MEAN | FLAG_SUM)) != 0u;
}

fn mean_divisor() -> f32 {
    if (params.flags & EW_BATCHMEAN) != 0u {
        return f32(params.batch_len / params.classes);
    }
    return f32(params.batch_len);
}

// The factor of element i's slope: grad_output[i] (none) or grad_output[0], ÷ mean's
// divisor, and for RMSE ÷ (2·rmse) (the chain rule through the square root, reading the
// reduced loss as PyTorch's sqrt(mse_loss(x, y)) would).
fn upstream(i: u32) -> Ext {
    var g = ext(params.grad_scale);
    if (params.flags & FLAG_GRAD_BUFFER) != 0u {
        g = ext_from(grad_output[params.grad_output_off + select(i, 0u, is_reduced())]);
    }
    if (params.flags & FLAG_MEAN) != 0u {
        g = ext_over(g, ext(mean_divisor()));
    }
    if (params.flags & EW_ROOT) != 0u {
        g = ext_over(g, ext_times(ext(2.0), ext_from(loss_out[params.loss_out_off])));
    }
    return g;
}

// Σ of the workgroup's values by a fixed binary tree; every invocation gets the total.
fn tile_total(lid: u32, e: Ext) -> Ext {
    ew_value[lid] = e.v;
    ew_kind[lid] = e.k;
    workgroupBarrier();
    for (var stride = EW_WG / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            let s = ext_plus(Ext(ew_value[lid], ew_kind[lid]), Ext(ew_value[lid + stride], ew_kind[lid + stride]));
            ew_value[lid] = s.v;
            ew_kind[lid] = s.k;
        }
        workgroupBarrier();
    }
    return Ext(ew_value[0], ew_kind[0]);
}

// Invocation lid of workgroup wg takes elements wg·TILE + k·256 + lid, k = 0 … STEPS - 1
// (each step one coalesced row of 256), and adds their losses in that order.
fn tile_element(wg: u32, k: u32, lid: u32) -> u32 {
    return wg * EW_TILE + k * EW_WG + lid;
}

// This workgroup's partial sum (reduced), written by invocation 0 from the fixed tree.
fn store_tile_partial(wg: u32, lid: u32, acc: Ext) {
    if is_reduced() {
        let total = tile_total(lid, acc);
        // Workgroups past the data (the dispatch is folded into x and y) write nothing.
        if lid == 0u && wg * EW_TILE < params.rows {
            row_loss[params.row_loss_off + wg] = ext_to_f32(total);
        }
    }
}

// Losses only: one read of x and y; each loss written (none) or added to the partial.
@compute @workgroup_size(256)
fn elementwise_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let wg = workgroup_index(wid, nwg);
    let reduced = is_reduced();
    var acc = ext(0.0);
    for (var k = 0u; k < EW_STEPS; k += 1u) {
        let i = tile_element(wg, k, lid);
        if i < params.rows {
            let loss = element_point(i).loss;
            if reduced {
                acc = ext_plus(acc, loss);
            } else {
                row_loss[params.row_loss_off + i] = ext_to_f32(loss);
            }
        }
    }
    store_tile_partial(wg, lid, acc);
}

// Losses and gradient fused: one read of x and y, the gradient written once.
@compute @workgroup_size(256)
fn elementwise_forward_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let wg = workgroup_index(wid, nwg);
    let reduced = is_reduced();
    var acc = ext(0.0);
    for (var k = 0u; k < EW_STEPS; k += 1u) {
        let i = tile_element(wg, k, lid);
        if i < params.rows {
            let p = element_point(i);
            grad[params.grad_off + i] = ext_to_f32(ext_times(p.slope, upstream(i)));
            if reduced {
                acc = ext_plus(acc, p.loss);
            } else {
                row_loss[params.row_loss_off + i] = ext_to_f32(p.loss);
            }
        }
    }
    store_tile_partial(wg, lid, acc);
}

// The gradient alone: one read of x and y, one write.
@compute @workgroup_size(256)
fn elementwise_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let wg = workgroup_index(wid, nwg);
    for (var k = 0u; k < EW_STEPS; k += 1u) {
        let i = tile_element(wg, k, lid);
        if i < params.rows {
            grad[params.grad_off + i] = ext_to_f32(ext_times(element_point(i).slope, upstream(i)));
        }
    }
}

// One workgroup: invocation j folds partials j, j + 256, … in order, a fixed tree adds the
// 256 results; writes Σ, Σ / divisor (mean, batchmean) or sqrt(Σ / n) (RMSE).
@compute @workgroup_size(256)
fn elementwise_reduce(@builtin(local_invocation_index) lid: u32) {
    let partials = (params.batch_len + EW_TILE - 1u) / EW_TILE;
    var acc = ext(0.0);
    for (var j = lid; j < partials; j += EW_WG) {
        acc = ext_plus(acc, ext_from(row_loss[params.row_loss_off + j]));
    }
    let total = tile_total(lid, acc);
    if lid == 0u {
        var out = total;
        if (params.flags & FLAG_MEAN) != 0u {
            out = ext_over(out, ext(mean_divisor()));
        }
        if (params.flags & EW_ROOT) != 0u && out.k == EXT_FINITE {
            out = ext(sqrt(out.v));
        }
        loss_out[params.loss_out_off] = ext_to_f32(out);
    }
}
