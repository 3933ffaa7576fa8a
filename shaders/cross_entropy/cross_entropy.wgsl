//! import shared/row_stats
//! import shared/class_index

// Cross-entropy from raw logits, fused: log-sum-exp, target gather and label-smoothing sum
// in one read of the row; no rows × classes intermediate.
//
// Targets: one class index per row, or (FLAG_PROB_TARGETS) a rows × classes probability
// matrix laid out as the logits. Layouts: rows × classes, or (N, C, spatial) with the
// class dimension strided by params.spatial (row_start).
// Short rows (params.classes ≤ SOLO_CLASSES) and every (N, C, spatial) batch: one
// invocation per row, SOLO_WG rows per workgroup, no cross-invocation reduction (*_solo;
// adjacent invocations read adjacent spatial positions). Longer rows: one workgroup (WG
// invocations) per row (cross_entropy_forward, BACKWARD or not). Longer
// rows still are split into params.segments segments of params.seg_len classes, one
// workgroup each: cross_entropy_partials writes each segment's log-sum-exp partial, and
// the merged kernels merge a row's partials exactly (online log-sum-exp) before the loss
// and the segment's gradient. The same partials serve rows whose classes are sharded
// across buffers or devices (params.class_offset of params.total_classes): the host
// merges the shards' partials and hands them back. Rows (or row × segment pairs) fold
// into the dispatch's x and y.
//
// Layout: see class_index.wgsl; partials live in batch.partials, extra outputs in aux.
// Per-row losses go to row_loss (the caller's output for reduction none, else scratch
// that reduce_losses folds).
// Passes: forward reads the logits once; forward+backward reads them twice (statistics,
// then gradient) and writes the gradient once — split or not. Probability targets are
// read alongside the logits.
// Numerics: l = (1-ε)·(-w[t]·lp[t]) + (ε/C)·Σ_c(-w[c]·lp[c]) (just -w[t]·lp[t] when ε = 0),
// or with probability targets l = Σ_c -w[c]·y'[c]·lp[c], y' = (1-ε)·y + ε/C; plus
// z_loss_scale·lse² when set. lp = (x - max) - log Σ exp(x - max) over the (soft-capped)
// logits, -inf logits carried exactly through Ext (+inf loss under smoothing).
// Gradient: g·(softmax·S - q) (+ g·2z·lse·softmax), q[c] = (1-ε)·w[t]·[c=t] + (ε/C)·w[c]
// (w[c]·y'[c] for probability targets), S = Σ_c q[c], times cap·tanh's slope when capped.

// Set per pipeline by the kernel table. BACKWARD: the kernel writes the gradient as well
// as the loss. IN_PLACE (the vec4, resident and short kernels; the scalar ones read
// FLAG_IN_PLACE): the logits are bound as `grad` and the gradient overwrites them.
override BACKWARD: bool = false;
override IN_PLACE: bool = false;

// A logit. With FLAG_IN_PLACE the logits are bound as `grad` (same range, same offsets)
// and the gradient overwrites them: every invocation reads an element before it writes it,
// and the target logit is read before the row's reduction, so nothing is read after it
// was overwritten.
fn logit(i: u32) -> f32 {
    if (params.flags & FLAG_IN_PLACE) != 0u {
        return load_grad(i);
    }
    return load_input(i);
}

// Where a row's logits start, in `grad` when IN_PLACE (a constant: each load is from one
// binding).
fn logits_start(row: u32) -> u32 {
    return select(params.input_off, params.grad_off, IN_PLACE) + row_start(row);
}

// Partials are two vec4 each in batch.partials (see row_stats.wgsl).
fn load_partial(i: u32) -> vec4<f32> {
    return batch.partials[i];
}

fn store_partial(i: u32, v: vec4<f32>) {
    batch.partials[i] = v;
}

// Soft-capping, cap·tanh(x / cap), for any x but NaN (±inf give ±cap). tanh is taken from
// e = exp(-2|x|/cap) as (1 - e)/(1 + e), or from its series where that would cancel.
fn soft_cap(x: f32) -> f32 {
    let cap = params.softcap;
    if !is_finite_bits(x) {
        return select(cap, -cap, has_sign_bit(x));
    }
    let a = abs(x);
    if a / 32.0 >= cap {
        return sign(x) * cap;
    }
    let u = a / cap;
    var t: f32;
    if u < 0.25 {
        let u2 = u * u;
        t = u * (1.0 + u2 * (-0.33333334 + u2 * (0.13333334 + u2 * (-0.053968254 + u2 * 0.021869488))));
    } else {
        let e = exp(-2.0 * u);
        t = (1.0 - e) / (1.0 + e);
    }
    return sign(x) * cap * t;
}

// d/dx of cap·tanh(x / cap): 1 - tanh², as 4e/(1 + e)² where tanh is close to ±1.
fn soft_cap_slope(x: f32) -> f32 {
    let a = abs(x);
    if !is_finite_bits(x) || a / 32.0 >= params.softcap {
        return 0.0;
    }
    let u = a / params.softcap;
    let e = exp(-2.0 * u);
    if u < 0.25 {
        let t = soft_cap(x) / params.softcap;
        return 1.0 - t * t;
    }
    return 4.0 * e / ((1.0 + e) * (1.0 + e));
}

// A logit as the loss sees it (soft-capped when params.softcap > 0).
fn seen(x: f32) -> f32 {
    if params.softcap > 0.0 && !is_nan_bits(x) {
        return soft_cap(x);
    }
    return x;
}

// A row's target: its class index and kind (probability targets are always valid).
struct RowTarget {
    t: i32,
    kind: u32,
}

fn target_of(row: u32) -> RowTarget {
    if has_prob_targets() {
        return RowTarget(0, TARGET_VALID);
    }
    let t = row_target(row);
    return RowTarget(t, target_kind(t));
}

// w[c]·y'[c], the mass a probability target puts on a class.
fn soft_mass(w: f32, y: f32) -> f32 {
    let eps = params.label_smoothing;
    return w * ((1.0 - eps) * y + eps / f32(params.total_classes));
}

// The argmax of the raw logits seen so far: the first class with the largest order key
// (NaN ranks above +inf, as torch.argmax; -0 and +0 tie).
struct ArgMax {
    key: u32,
    index: u32,
}

fn order_key(x: f32) -> u32 {
    let b = bitcast<u32>(x);
    if is_nan_bits(x) {
        return 0xffffffffu;
    }
    if (b & 0x7fffffffu) == 0u {
        return 0x80000000u;
    }
    if (b & 0x80000000u) != 0u {
        return ~b;
    }
    return b | 0x80000000u;
}

fn tracks_argmax() -> bool {
    return (params.flags & FLAG_ARGMAX) != 0u;
}

// What one invocation gathers from its share of a row's classes.
struct Gathered {
    s: RowStats,
    arg: ArgMax,
}

// Folds classes begin + first, begin + first + stride, … < end of a row (memory-local
// classes; weights, argmax and targets use global classes, class_offset + c).
// True when a row needs only its max and Σ exp (no smoothing or probability-target sums,
// no cap, no argmax): the fast loops below. Uniform (parameters only).
fn is_plain() -> bool {
    return params.label_smoothing == 0.0 && !has_prob_targets() && params.softcap == 0.0 && !tracks_argmax();
}

// gather for plain rows: four classes per step (each load contiguous across the
// invocations), folded without a branch on the values (stats_push4), then the tail.
fn gather_plain(row: u32, begin: u32, end: u32, first: u32, stride: u32) -> Gathered {
    let base = params.input_off + row_start(row);
    let sp = params.spatial;
    var s = stats_start();
    var c = begin + first;
    for (; c + 3u * stride < end; c += 4u * stride) {
        let x = vec4<f32>(
            logit(base + c * sp),
            logit(base + (c + stride) * sp),
            logit(base + (c + 2u * stride) * sp),
            logit(base + (c + 3u * stride) * sp),
        );
        stats_push4(&s, x);
    }
    for (; c < end; c += stride) {
        stats_push(&s, logit(base + c * sp), 1.0);
    }
    return Gathered(s, ArgMax(0u, 0u));
}

fn gather(row: u32, begin: u32, end: u32, first: u32, stride: u32) -> Gathered {
    if is_plain() {
        return gather_plain(row, begin, end, first, stride);
    }
    let base = row_start(row);
    // Separate locals, not fields of one: naga's SPIR-V writer mishandles a pointer to a
    // field of a local passed to a function inside a loop.
    var s = stats_empty();
    var arg = ArgMax(0u, 0u);
    var bad_target = 0u;
    for (var c = begin + first; c < end; c += stride) {
        let i = base + c * params.spatial;
        let x = logit(params.input_off + i);
        var w = class_weight(params.class_offset + c);
        if has_prob_targets() {
            let y = soft_target(i);
            if !is_finite_bits(y) {
                bad_target = ROW_POISON;
                w = 0.0;
            } else {
                w = soft_mass(w, y);
            }
        }
        stats_push(&s, seen(x), w);
        if tracks_argmax() {
            let k = order_key(x);
            if k > arg.key {
                arg = ArgMax(k, params.class_offset + c);
            }
        }
    }
    s.flags |= bad_target;
    return Gathered(s, arg);
}

// A workgroup's share of a row combined across the workgroup (the same in every invocation).
struct Combined {
    tot: RowTotals,
    arg: ArgMax,
}

fn combine(g: Gathered, lid: u32) -> Combined {
    let tot = row_totals(g.s, lid);
    var arg = ArgMax(0u, 0u);
    if tracks_argmax() {
        arg.key = row_extreme_u32(g.arg.key, lid, true);
        arg.index = row_extreme_u32(select(0xffffffffu, g.arg.index, g.arg.key == arg.key), lid, false);
    }
    return Combined(tot, arg);
}

// The classes a row's statistics need: all of them, or none for an ignored or
// out-of-range target unless an extra output wants the row.
fn stats_end(kind: u32) -> u32 {
    let wanted = kind == TARGET_VALID || (params.flags & (FLAG_LSE | FLAG_ARGMAX)) != 0u;
    return select(0u, params.classes, wanted);
}

// Where a row's target sits in this row's memory, if it does.
fn local_target(t: i32) -> u32 {
    return u32(t) - params.class_offset;
}

fn target_in_memory(rt: RowTarget) -> bool {
    return !has_prob_targets() && rt.kind == TARGET_VALID && local_target(rt.t) < params.classes;
}

// The target's class in this row's memory, or 0xffffffff when it is in another shard (or
// there is no class index).
fn target_class_here(rt: RowTarget) -> u32 {
    return select(0xffffffffu, local_target(rt.t), target_in_memory(rt));
}

// A row with no finite logit (and no NaN / +inf) under EmptyPolicy::Zero: loss 0, gradient 0.
fn row_is_empty_zero(t: RowTotals) -> bool {
    return empty_gives_zero() && t.sum_exp == 0.0 && (t.flags & ROW_POISON) == 0u;
}

// Σ_c -m[c]·lp[c] over the classes with mass m (the weights for label smoothing, w·y' for
// probability targets) = Σ m·(lse - max) - Σ m·(x - max) over finite logits; each -inf
// logit adds m[c]·(+inf): +inf, -inf or NaN by the sign of its mass.
fn mass_sum(tot: RowTotals) -> Ext {
    var k = 0u;
    if (tot.flags & NEG_INF_W_POS) != 0u {
        k |= EXT_POS_INF;
    }
    if (tot.flags & NEG_INF_W_NEG) != 0u {
        k |= EXT_NEG_INF;
    }
    if (tot.flags & NEG_INF_W_ZERO) != 0u {
        k |= EXT_NAN;
    }
    if k != 0u {
        return ext_kind(k);
    }
    return ext(tot.w_finite * log(tot.sum_exp) - tot.wx);
}

// The row's loss from its statistics and its (seen) target logit.
fn row_loss_of(rt: RowTarget, tot: RowTotals, x_target: f32) -> Ext {
    let kind = rt.kind;
    if kind == TARGET_IGNORED || (kind == TARGET_VALID && row_is_empty_zero(tot)) {
        return ext(0.0);
    }
    if kind != TARGET_VALID || row_is_poisoned(tot) {
        return ext_kind(EXT_NAN);
    }
    var loss: Ext;
    if has_prob_targets() {
        loss = mass_sum(tot);
    } else {
        var lp_target = ext_kind(EXT_NEG_INF);
        if !is_neg_inf(x_target) {
            lp_target = ext(row_log_prob(tot, x_target));
        }
        loss = ext_scale(lp_target, -class_weight(u32(rt.t)));
        let eps = params.label_smoothing;
        if eps != 0.0 {
            loss = ext_add(ext_scale(loss, 1.0 - eps), ext_scale(mass_sum(tot), eps / f32(params.total_classes)));
        }
    }
    if params.z_loss_scale != 0.0 {
        let lse = finite_lse(tot);
        loss = ext_add(loss, ext(params.z_loss_scale * lse * lse));
    }
    return loss;
}

// row_loss_of for a plain row (class indices, no label smoothing or soft-capping) as an
// f32, with the same bits, computed without a branch on the row's values (a CPU adapter
// runs both sides of a branch its lanes disagree on): the finite loss from finite stand-ins,
// then ±inf and NaN chosen by bits.
fn plain_row_loss(rt: RowTarget, tot: RowTotals, x_target: f32) -> f32 {
    let valid = rt.kind == TARGET_VALID;
    let w = class_weight(u32(select(0, rt.t, valid)));
    let poisoned = row_is_poisoned(tot);
    let x = select(tot.m, x_target, is_finite_bits(x_target));
    let t = RowTotals(tot.m, select(tot.sum_exp, 1.0, poisoned), 0.0, 0.0, 0.0, 0u);
    var loss = row_log_prob(t, x) * -w;
    if params.z_loss_scale != 0.0 {
        let lse = finite_lse(t);
        loss += params.z_loss_scale * lse * lse;
    }
    // -w · -inf: +inf, -inf, or NaN for a zero weight.
    let neg_inf_target = select(select(NEG_INF_BITS, POS_INF_BITS, w > 0.0), NAN_BITS, w == 0.0);
    var bits = select(bitcast<u32>(loss), neg_inf_target, is_neg_inf(x_target));
    bits = select(bits, NAN_BITS, !valid || poisoned);
    let zero = rt.kind == TARGET_IGNORED || (valid && row_is_empty_zero(tot));
    return bitcast<f32>(select(bits, 0u, zero));
}

// Writes a row's loss and the extra outputs asked for.
fn finish_row(row: u32, rt: RowTarget, tot: RowTotals, x_target: f32, argmax: u32) {
    row_loss[params.row_loss_off + row] = ext_to_f32(row_loss_of(rt, tot, x_target));
    finish_extras(row, rt, tot, argmax);
}

// finish_row for a plain row (see plain_row_loss).
fn finish_plain_row(row: u32, rt: RowTarget, tot: RowTotals, x_target: f32) {
    row_loss[params.row_loss_off + row] = plain_row_loss(rt, tot, x_target);
    finish_extras(row, rt, tot, 0u);
}

// Reports a bad target and writes the extra outputs asked for.
fn finish_extras(row: u32, rt: RowTarget, tot: RowTotals, argmax: u32) {
    if rt.kind == TARGET_INVALID {
        report_bad_target(row);
    }
    if (params.flags & FLAG_LSE) != 0u {
        aux[params.lse_off + row] = ext_to_f32(row_lse(tot));
    }
    if tracks_argmax() {
        aux[params.argmax_off + row] = bitcast<f32>(argmax);
    }
}

// How a row's gradient is written: every class `fill` when `filled` (0 for an ignored
// row or, under EmptyPolicy::Zero, an empty one; NaN for a bad target, a poisoned row or a
// non-finite upstream gradient), else g·(softmax·q_sum - q) with q[t] including q_target.
struct RowGrad {
    filled: bool,
    fill: f32,
    g: f32,
    q_target: f32,
    q_sum: f32,
}

fn row_grad(row: u32, rt: RowTarget, tot: RowTotals) -> RowGrad {
    let kind = rt.kind;
    let g = upstream_grad(row);
    if kind == TARGET_IGNORED || (kind == TARGET_VALID && row_is_empty_zero(tot)) {
        return RowGrad(true, 0.0, 0.0, 0.0, 0.0);
    }
    if kind == TARGET_INVALID || row_is_poisoned(tot) || g.k != EXT_FINITE {
        return RowGrad(true, nan_f32(), 0.0, 0.0, 0.0);
    }
    let eps = params.label_smoothing;
    var q_target = 0.0;
    var q_sum = tot.w_all;
    if !has_prob_targets() {
        q_target = (1.0 - eps) * class_weight(u32(rt.t));
        q_sum = q_target + eps / f32(params.total_classes) * tot.w_all;
    }
    if params.z_loss_scale != 0.0 {
        q_sum += 2.0 * params.z_loss_scale * finite_lse(tot);
    }
    return RowGrad(false, 0.0, g.v, q_target, q_sum);
}

// A plain row's gradient as e·scale - at_target·[c = target], e = exp(x - max) (0 for a
// -inf logit), or `fill` everywhere when row_grad says so.
struct PlainGrad {
    scale: f32,
    at_target: f32,
    // The target's class in this row's memory (see target_class_here).
    target_class: u32,
    filled: bool,
    fill: f32,
}

fn plain_grad(row: u32, rt: RowTarget, tot: RowTotals) -> PlainGrad {
    let rg = row_grad(row, rt, tot);
    let target_class = target_class_here(rt);
    if rg.filled {
        return PlainGrad(0.0, 0.0, target_class, true, rg.fill);
    }
    return PlainGrad(rg.g * rg.q_sum / tot.sum_exp, rg.g * rg.q_target, target_class, false, 0.0);
}

// The gradient of four classes `c` (memory-local) from their e = exp(x - max).
fn plain_grad_quad(p: PlainGrad, e: vec4<f32>, c: vec4<u32>) -> vec4<f32> {
    let d = e * p.scale - select(vec4<f32>(0.0), vec4<f32>(p.at_target), c == vec4<u32>(p.target_class));
    return select(d, vec4<f32>(p.fill), p.filled);
}

// Writes the gradient of classes [begin, end) of a row: invocation `first` of `stride`
// writes every stride-th class (the whole workgroup, or one invocation per row).
fn write_segment_grad(row: u32, rt: RowTarget, tot: RowTotals, begin: u32, end: u32, first: u32, stride: u32) {
    let base = row_start(row);
    let sp = params.spatial;
    if is_plain() {
        // Four classes per step; a -inf logit's e is 0, chosen from its bits.
        let p = plain_grad(row, rt, tot);
        var c = begin + first;
        for (; c + 3u * stride < end; c += 4u * stride) {
            let cs = vec4<u32>(c, c + stride, c + 2u * stride, c + 3u * stride);
            let i = vec4<u32>(base) + cs * sp;
            let x = vec4<f32>(logit(params.input_off + i.x), logit(params.input_off + i.y), logit(params.input_off + i.z), logit(params.input_off + i.w));
            let d = plain_grad_quad(p, quad_exp(x, tot.m), cs);
            let o = params.grad_off + i;
            store_grad(o.x, d.x);
            store_grad(o.y, d.y);
            store_grad(o.z, d.z);
            store_grad(o.w, d.w);
        }
        for (; c < end; c += stride) {
            let i = base + c * sp;
            let d = plain_grad_quad(p, quad_exp(vec4<f32>(logit(params.input_off + i)), tot.m), vec4<u32>(c));
            store_grad(params.grad_off + i, d.x);
        }
        return;
    }
    let rg = row_grad(row, rt, tot);
    if rg.filled {
        for (var c = begin + first; c < end; c += stride) {
            store_grad(params.grad_off + base + c * sp, rg.fill);
        }
        return;
    }
    let eps_per_class = params.label_smoothing / f32(params.total_classes);
    let target_here = target_class_here(rt);
    for (var c = begin + first; c < end; c += stride) {
        let i = base + c * sp;
        let x = logit(params.input_off + i);
        let y = seen(x);
        var p = 0.0;
        if !is_neg_inf(y) {
            p = row_prob(tot, y);
        }
        let w = class_weight(params.class_offset + c);
        var q: f32;
        if has_prob_targets() {
            q = soft_mass(w, soft_target(i));
        } else {
            q = eps_per_class * w + select(0.0, rg.q_target, c == target_here);
        }
        var d = p * rg.q_sum - q;
        if params.softcap > 0.0 {
            d *= soft_cap_slope(x);
        }
        store_grad(params.grad_off + i, rg.g * d);
    }
}

fn target_logit(row: u32, rt: RowTarget) -> f32 {
    if target_in_memory(rt) {
        return seen(logit(params.input_off + row_start(row) + local_target(rt.t) * params.spatial));
    }
    return 0.0;
}

// One workgroup per row: the row's loss, and with BACKWARD its gradient.
@compute @workgroup_size(WG)
fn cross_entropy_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    if row >= params.rows { return; }
    let rt = target_of(row);
    // Read before the row's reduction: in place, the gradient overwrites it afterwards.
    let x_target = target_logit(row, rt);
    let r = combine(gather(row, 0u, stats_end(rt.kind), lid, WG), lid);
    if lid == 0u {
        finish_row(row, rt, r.tot, x_target, r.arg.index);
    }
    if BACKWARD {
        write_segment_grad(row, rt, r.tot, 0u, params.classes, lid, WG);
    }
}

// A segment's partial, with the target logit when the target falls in the segment; the
// row's first segment reports a bad target.
fn store_segment_partial(s: Segment, rt: RowTarget, t: RowTotals) {
    let local = local_target(rt.t);
    let here = target_in_memory(rt) && local >= s.begin && local < s.end;
    store_partial_totals(s.partial, t, target_logit(s.row, rt), here);
    if s.begin == 0u && rt.kind == TARGET_INVALID {
        report_bad_target(s.row);
    }
}

// Pass 1 of split rows and shards: one workgroup per (row, segment) writes the segment's
// partial, with the target logit when the target falls in the segment (and its argmax
// candidate to aux when asked).
@compute @workgroup_size(WG)
fn cross_entropy_partials(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let index = workgroup_index(wid, nwg);
    if index >= params.rows * params.segments { return; }
    let s = segment_of(index);
    let rt = target_of(s.row);
    let end = select(s.begin, s.end, stats_end(rt.kind) != 0u);
    let g = gather(s.row, s.begin, end, lid, WG);
    let r = combine(g, lid);
    if lid == 0u {
        store_segment_partial(s, rt, r.tot);
        if tracks_argmax() {
            aux[params.arg_partial_off + 2u * s.partial] = bitcast<f32>(r.arg.key);
            aux[params.arg_partial_off + 2u * s.partial + 1u] = bitcast<f32>(r.arg.index);
        }
    }
}

// The argmax of a split row from its segments' candidates (segments in class order, so
// the strict comparison keeps the first class among equal keys).
fn merged_argmax(first: u32, count: u32) -> u32 {
    var best = ArgMax(0u, 0u);
    for (var i = 0u; i < count; i++) {
        let key = bitcast<u32>(aux[params.arg_partial_off + 2u * (first + i)]);
        if key > best.key {
            best = ArgMax(key, bitcast<u32>(aux[params.arg_partial_off + 2u * (first + i) + 1u]));
        }
    }
    return best.index;
}

// A split row's loss and extra outputs from its merged partials.
fn finish_merged_row(row: u32, rt: RowTarget, merged: MergedRow) {
    var argmax = 0u;
    if tracks_argmax() {
        argmax = merged_argmax(first_partial(row), params.segments);
    }
    finish_row(row, rt, merged.totals, merged.target_logit, argmax);
}

// Pass 2 of split rows: merges the row's partials and writes its loss (one workgroup per row).
@compute @workgroup_size(WG)
fn cross_entropy_merged_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let row = workgroup_index(wid, nwg);
    if row >= params.rows || lid != 0u { return; }
    finish_merged_row(row, target_of(row), merged_row(row));
}

// Pass 2 of split rows and shards: each (row, segment) workgroup merges the row's partials,
// the first segment writes the row's loss, and every segment writes its gradient.
@compute @workgroup_size(WG)
fn cross_entropy_merged_forward_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let index = workgroup_index(wid, nwg);
    if index >= params.rows * params.segments { return; }
    let s = segment_of(index);
    let merged = merged_row(s.row);
    let rt = target_of(s.row);
    if lid == 0u && s.begin == 0u {
        finish_merged_row(s.row, rt, merged);
    }
    write_segment_grad(s.row, rt, merged.totals, s.begin, s.end, lid, WG);
}

// One invocation per short row (or per spatial position): the row without any
// cross-invocation step.
@compute @workgroup_size(SOLO_WG)
fn cross_entropy_forward_solo(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = solo_row_index(gid, nwg);
    if row >= params.rows { return; }
    let rt = target_of(row);
    let x_target = target_logit(row, rt);
    let g = gather(row, 0u, stats_end(rt.kind), 0u, 1u);
    let tot = solo_totals(g.s);
    finish_row(row, rt, tot, x_target, g.arg.index);
    if BACKWARD {
        write_segment_grad(row, rt, tot, 0u, params.classes, 0u, 1u);
    }
}
