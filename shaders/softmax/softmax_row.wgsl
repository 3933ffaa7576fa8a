//! import shared/row_stats

// What every softmax kernel shares: whether it works in log space, the split rows'
// partials, and how a row's output is written from its totals.

// log-softmax rather than softmax: set per pipeline by the kernel table (forward and
// backward kernels alike), so one entry point serves both.
override LOG_SPACE: bool = false;

// The workspace's batch state: a 16-byte header (unused here), then the partials of split
// rows (see row_stats.wgsl), two vec4 each.
@group(0) @binding(5) var<storage, read_write> partials: array<vec4<f32>>;

fn load_partial(i: u32) -> vec4<f32> {
    return partials[1u + i];
}

fn store_partial(i: u32, v: vec4<f32>) {
    partials[1u + i] = v;
}

// How a log-softmax / softmax row is written from its totals: all NaN when poisoned.
struct SoftmaxRow {
    m: f32,
    log_sum: f32,
    inv_sum: f32,
    poisoned: bool,
}

fn softmax_row_of(t: RowTotals) -> SoftmaxRow {
    let poisoned = row_is_poisoned(t);
    if poisoned {
        return SoftmaxRow(t.m, 0.0, 0.0, true);
    }
    return SoftmaxRow(t.m, log(t.sum_exp), 1.0 / t.sum_exp, false);
}

// A quad of log-softmax (-inf for -inf logits, chosen from their bits) or softmax, from
// the logits x and their e = exp(x - max).
fn softmax_quad(r: SoftmaxRow, x: vec4<f32>, e: vec4<f32>) -> vec4<f32> {
    var v: vec4<f32>;
    if LOG_SPACE {
        v = select(vec4<f32>(neg_inf_f32()), (x - r.m) - r.log_sum, is_finite4(x));
    } else {
        v = e * r.inv_sum;
    }
    return select(v, vec4<f32>(nan_f32()), r.poisoned);
}
