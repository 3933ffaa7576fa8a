// Cross-entropy from raw logits with class-index targets, fused: log-sum-exp, target
// gather and label-smoothing sum in one read of the row; no rows × classes intermediate.
//
// Short rows (params.classes ≤ SOLO_CLASSES): one invocation per row, SOLO_WG rows per
// workgroup, no cross-invocation reduction (cross_entropy_forward_solo,
// cross_entropy_forward_backward_solo). Longer rows: one workgroup (WG invocations) per row
// (cross_entropy_forward, cross_entropy_forward_backward). Longer rows are split into params.segments segments of
// params.seg_len classes, one workgroup each: cross_entropy_partials writes each segment's
// log-sum-exp partial, and the merged kernels merge a row's partials exactly (online
// log-sum-exp) before the loss and the segment's gradient. The same partials serve rows
// whose classes are sharded across buffers or devices (params.class_offset of
// params.total_classes): the host merges the shards' partials and hands them back.
// Rows (or row × segment pairs) fold into the dispatch's x and y.
//
// Layout: see class_index.wgsl; partials live in batch.partials. Per-row losses go to
// row_loss (the caller's output for reduction none, else scratch that reduce_losses folds).
// Passes: forward reads the logits once; forward+backward reads them twice (statistics,
// then gradient) and writes the gradient once — split or not.
// Numerics: l = (1-ε)·(-w[t]·lp[t]) + (ε/C)·Σ_c(-w[c]·lp[c]) (just -w[t]·lp[t] when ε = 0),
// lp = (x - max) - log Σ exp(x - max), -inf logits carried exactly through Ext (+inf loss
// under smoothing). Gradient: g·(softmax·S - q), q[c] = (1-ε)·w[t]·[c=t] + (ε/C)·w[c],
// S = Σ_c q[c].

// A logit. With FLAG_IN_PLACE the logits are bound as `grad` (same range, same offsets)
// and the gradient overwrites them: every invocation reads an element before it writes it,
// and the target logit is read before the row's reduction, so nothing is read after it
// was overwritten.
fn logit(i: u32) -> f32 {
    if (params.flags & FLAG_IN_PLACE) != 0u {
        return grad[i];
    }
    return input[i];
}

// Partials are two vec4 each in batch.partials (see row_stats.wgsl).
fn load_partial(i: u32) -> vec4<f32> {
    return batch.partials[i];
}

fn store_partial(i: u32, v: vec4<f32>) {
    batch.partials[i] = v;
}

// The statistics of classes [begin, end) of a row (memory-local indices; weights and
// targets are global classes, class_offset + c).
fn segment_stats(row: u32, begin: u32, end: u32, lid: u32) -> RowTotals {
    let base = params.input_off + row * params.classes;
    var s = stats_empty();
    for (var c = begin + lid; c < end; c += WG) {
        stats_push(&s, logit(base + c), class_weight(params.class_offset + c));
    }
    return row_totals(s, lid);
}

// Where a row's target sits in this row's memory, if it does.
fn local_target(t: i32) -> u32 {
    return u32(t) - params.class_offset;
}

fn target_in_memory(t: i32) -> bool {
    return target_kind(t) == TARGET_VALID && local_target(t) < params.classes;
}

// A row with no finite logit (and no NaN / +inf) under EmptyPolicy::Zero: loss 0, gradient 0.
fn row_is_empty_zero(t: RowTotals) -> bool {
    return empty_gives_zero() && t.sum_exp == 0.0 && (t.flags & ROW_POISON) == 0u;
}

// The row's loss from its statistics and its target logit.
fn row_loss_of(kind: u32, tot: RowTotals, x_target: f32, w_target: f32) -> Ext {
    if kind == TARGET_IGNORED || (kind == TARGET_VALID && row_is_empty_zero(tot)) {
        return ext(0.0);
    }
    if kind != TARGET_VALID || row_is_poisoned(tot) {
        return ext_kind(EXT_NAN);
    }
    var lp_target = ext_kind(EXT_NEG_INF);
    if !is_neg_inf(x_target) {
        lp_target = ext(row_log_prob(tot, x_target));
    }
    let nll = ext_scale(lp_target, -w_target);
    let eps = params.label_smoothing;
    if eps == 0.0 {
        return nll;
    }
    // Σ_c -w[c]·lp[c] over finite logits = Σ w·(lse - m) - Σ w·(x - m); each -inf logit
    // adds w[c]·(+inf): +inf, -inf or NaN by the sign of its weight.
    var smoothing_sum = ext(tot.w_finite * log(tot.sum_exp) - tot.wx);
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
        smoothing_sum = ext_kind(k);
    }
    return ext_add(ext_scale(nll, 1.0 - eps), ext_scale(smoothing_sum, eps / f32(params.total_classes)));
}

fn write_row_loss(row: u32, kind: u32, loss: Ext) {
    row_loss[params.row_loss_off + row] = ext_to_f32(loss);
    if kind == TARGET_INVALID {
        report_bad_target(row);
    }
}

// Writes the gradient of classes [begin, end) of a row: invocation `first` of `stride`
// writes every stride-th class (the whole workgroup, or one invocation per row).
fn write_segment_grad(row: u32, t: i32, tot: RowTotals, begin: u32, end: u32, first: u32, stride: u32) {
    let kind = target_kind(t);
    let base = params.input_off + row * params.classes;
    let out = params.grad_off + row * params.classes;
    let g = upstream_grad(row);
    if kind == TARGET_IGNORED || (kind == TARGET_VALID && row_is_empty_zero(tot)) {
        for (var c = begin + first; c < end; c += stride) {
            grad[out + c] = 0.0;
        }
        return;
    }
    if kind == TARGET_INVALID || row_is_poisoned(tot) || g.k != EXT_FINITE {
        for (var c = begin + first; c < end; c += stride) {
            grad[out + c] = nan_f32();
        }
        return;
    }
    let eps = params.label_smoothing;
    let eps_per_class = eps / f32(params.total_classes);
    let q_target = (1.0 - eps) * class_weight(u32(t));
    let q_sum = q_target + eps_per_class * tot.w_all;
    // Out of this memory when the target lies in another shard.
    let target_here = local_target(t);
    for (var c = begin + first; c < end; c += stride) {
        let x = logit(base + c);
        var p = 0.0;
        if !is_neg_inf(x) {
            p = row_prob(tot, x);
        }
        let q = eps_per_class * class_weight(params.class_offset + c) + select(0.0, q_target, c == target_here);
        grad[out + c] = g.v * (p * q_sum - q);
    }
}

// The statistics of a whole row held in one workgroup, and its target logit.
fn whole_row(row: u32, lid: u32) -> RowTotals {
    // Ignored and out-of-range rows need no statistics: skip the reads.
    let t = row_target(row);
    let end = select(0u, params.classes, target_kind(t) == TARGET_VALID);
    return segment_stats(row, 0u, end, lid);
}

fn target_logit(row: u32, t: i32) -> f32 {
    if target_in_memory(t) {
        return logit(params.input_off + row * params.classes + local_target(t));
    }
    return 0.0;
}

@compute @workgroup_size(WG)
fn cross_entropy_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = workgroup_index(wid, nwg);
    if row >= params.rows {
        return;
    }
    let tot = whole_row(row, lid);
    if lid == 0u {
        let t = row_target(row);
        let kind = target_kind(t);
        write_row_loss(row, kind, row_loss_of(kind, tot, target_logit(row, t), class_weight(u32(t))));
    }
}

@compute @workgroup_size(WG)
fn cross_entropy_forward_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = workgroup_index(wid, nwg);
    if row >= params.rows {
        return;
    }
    let t = row_target(row);
    // Read before the row's reduction: in place, the gradient overwrites it afterwards.
    let x_target = target_logit(row, t);
    let tot = whole_row(row, lid);
    if lid == 0u {
        let kind = target_kind(t);
        write_row_loss(row, kind, row_loss_of(kind, tot, x_target, class_weight(u32(t))));
    }
    write_segment_grad(row, t, tot, 0u, params.classes, lid, WG);
}

// Pass 1 of split rows and shards: one workgroup per (row, segment) writes the segment's
// partial, with the target logit when the target falls in the segment.
@compute @workgroup_size(WG)
fn cross_entropy_partials(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let index = workgroup_index(wid, nwg);
    if index >= params.rows * params.segments {
        return;
    }
    let s = segment_of(index);
    let t = row_target(s.row);
    let end = select(s.begin, s.end, target_kind(t) == TARGET_VALID);
    let tot = segment_stats(s.row, s.begin, end, lid);
    if lid == 0u {
        let here = target_in_memory(t) && local_target(t) >= s.begin && local_target(t) < s.end;
        store_partial_totals(s.partial, tot, target_logit(s.row, t), here);
        if s.begin == 0u && target_kind(t) == TARGET_INVALID {
            report_bad_target(s.row);
        }
    }
}

// Pass 2 of split rows: merges the row's partials and writes its loss (one workgroup per row).
@compute @workgroup_size(WG)
fn cross_entropy_merged_forward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = workgroup_index(wid, nwg);
    if row >= params.rows || lid != 0u {
        return;
    }
    let merged = merge_partials((params.row_base + row) * params.segments, params.segments);
    let t = row_target(row);
    let kind = target_kind(t);
    write_row_loss(row, kind, row_loss_of(kind, merged.totals, merged.target_logit, class_weight(u32(t))));
}

// Pass 2 of split rows and shards: each (row, segment) workgroup merges the row's partials,
// the first segment writes the row's loss, and every segment writes its gradient.
@compute @workgroup_size(WG)
fn cross_entropy_merged_forward_backward(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let index = workgroup_index(wid, nwg);
    if index >= params.rows * params.segments {
        return;
    }
    let s = segment_of(index);
    let merged = merge_partials((params.row_base + s.row) * params.segments, params.segments);
    let t = row_target(s.row);
    if lid == 0u && s.begin == 0u {
        let kind = target_kind(t);
        write_row_loss(s.row, kind, row_loss_of(kind, merged.totals, merged.target_logit, class_weight(u32(t))));
    }
    write_segment_grad(s.row, t, merged.totals, s.begin, s.end, lid, WG);
}

// One invocation per short row: the row's statistics without any cross-invocation step.
fn solo_row(row: u32) -> RowTotals {
    let base = params.input_off + row * params.classes;
    let end = select(0u, params.classes, target_kind(row_target(row)) == TARGET_VALID);
    var s = stats_empty();
    for (var c = 0u; c < end; c++) {
        stats_push(&s, logit(base + c), class_weight(c));
    }
    return solo_totals(s);
}

@compute @workgroup_size(SOLO_WG)
fn cross_entropy_forward_solo(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = solo_row_index(gid, nwg);
    if row >= params.rows {
        return;
    }
    let tot = solo_row(row);
    let t = row_target(row);
    let kind = target_kind(t);
    write_row_loss(row, kind, row_loss_of(kind, tot, target_logit(row, t), class_weight(u32(t))));
}

@compute @workgroup_size(SOLO_WG)
fn cross_entropy_forward_backward_solo(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let row = solo_row_index(gid, nwg);
    if row >= params.rows {
        return;
    }
    let tot = solo_row(row);
    let t = row_target(row);
    let kind = target_kind(t);
    write_row_loss(row, kind, row_loss_of(kind, tot, target_logit(row, t), class_weight(u32(t))));
    write_segment_grad(row, t, tot, 0u, params.classes, 0u, 1u);
}
