// Cross-entropy from raw logits with class-index targets, fused: log-sum-exp, target
// gather and label-smoothing sum in one read of the row; no rows × classes intermediate.
// One workgroup (WG invocations) per row, rows folded into the dispatch's x and y.
//
// Layout: see class_index.wgsl. Per-row losses go to row_loss (the caller's output for
// reduction none, else scratch that reduce_losses folds).
// Passes: forward reads the logits once; forward+backward reads them twice (statistics,
// then gradient) and writes the gradient once.
// Numerics: l = (1-ε)·(-w[t]·lp[t]) + (ε/C)·Σ_c(-w[c]·lp[c]) (just -w[t]·lp[t] when ε = 0),
// lp = (x - max) - log Σ exp(x - max), with -inf logits carried exactly through Ext (+inf loss under smoothing).
// Gradient: g·(softmax·S - q), q[c] = (1-ε)·w[t]·[c=t] + (ε/C)·w[c], S = Σ_c q[c].

struct RowLoss {
    totals: RowTotals,
    target_class: u32,
    target_kind: u32,
    loss: Ext,
}

// Reads the row once and returns its statistics and loss (all invocations get the same).
fn cross_entropy_row(row: u32, lid: u32) -> RowLoss {
    let classes = params.classes;
    let base = params.input_off + row * classes;
    let t = row_target(row);
    let kind = target_kind(t);
    // Ignored and out-of-range rows need no statistics: skip the reads.
    let n = select(0u, classes, kind == TARGET_VALID);
    var s = stats_empty();
    for (var c = lid; c < n; c += WG) {
        stats_push(&s, input[base + c], class_weight(c));
    }
    let tot = row_totals(s, lid);
    var loss = ext_kind(EXT_NAN);
    if kind == TARGET_IGNORED || (kind == TARGET_VALID && row_is_empty_zero(tot)) {
        loss = ext(0.0);
    } else if kind == TARGET_VALID && !row_is_poisoned(tot) {
        loss = smoothed_nll(tot, input[base + u32(t)], class_weight(u32(t)));
    }
    return RowLoss(tot, u32(t), kind, loss);
}

// A row with no finite logit (and no NaN / +inf) under EmptyPolicy::Zero: loss 0, gradient 0.
fn row_is_empty_zero(t: RowTotals) -> bool {
    return empty_gives_zero() && t.sum_exp == 0.0 && (t.flags & ROW_POISON) == 0u;
}

fn smoothed_nll(tot: RowTotals, x_target: f32, w_target: f32) -> Ext {
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
    return ext_add(ext_scale(nll, 1.0 - eps), ext_scale(smoothing_sum, eps / f32(params.classes)));
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
    let r = cross_entropy_row(row, lid);
    if lid == 0u {
        row_loss[params.row_loss_off + row] = ext_to_f32(r.loss);
        if r.target_kind == TARGET_INVALID {
            report_bad_target(row);
        }
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
    let r = cross_entropy_row(row, lid);
    if lid == 0u {
        row_loss[params.row_loss_off + row] = ext_to_f32(r.loss);
        if r.target_kind == TARGET_INVALID {
            report_bad_target(row);
        }
    }
    let classes = params.classes;
    let base = params.input_off + row * classes;
    let out = params.grad_off + row * classes;
    let g = upstream_grad(row);
    if r.target_kind == TARGET_IGNORED || (r.target_kind == TARGET_VALID && row_is_empty_zero(r.totals)) {
        for (var c = lid; c < classes; c += WG) {
            grad[out + c] = 0.0;
        }
        return;
    }
    if r.target_kind == TARGET_INVALID || row_is_poisoned(r.totals) || g.k != EXT_FINITE {
        for (var c = lid; c < classes; c += WG) {
            grad[out + c] = nan_f32();
        }
        return;
    }
    let eps = params.label_smoothing;
    let eps_per_class = eps / f32(classes);
    let w_target = class_weight(r.target_class);
    let q_target = (1.0 - eps) * w_target;
    let q_sum = q_target + eps_per_class * r.totals.w_all;
    for (var c = lid; c < classes; c += WG) {
        let x = input[base + c];
        var p = 0.0;
        if !is_neg_inf(x) {
            p = row_prob(r.totals, x);
        }
        let q = eps_per_class * class_weight(c) + select(0.0, q_target, c == r.target_class);
        grad[out + c] = g.v * (p * q_sum - q);
    }
}
