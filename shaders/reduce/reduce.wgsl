//! import shared/class_index

// Batch reductions of the class-index families, each one workgroup of 256 invocations:
// invocation i folds rows i, i+256, … in order, then a fixed binary tree combines the
// 256 partials, so the result is bit-identical from run to run. They read `rows` values,
// never rows × classes.

const REDUCE_WG: u32 = 256u;

var<workgroup> partial_value: array<f32, 256>;
var<workgroup> partial_kind: array<u32, 256>;

// batch.total_weight = Σ w[t] over the rows whose target is a valid class (mean's divisor;
// the row count for probability targets, as PyTorch).
@compute @workgroup_size(256)
fn target_weight_total(@builtin(local_invocation_index) lid: u32) {
    if (params.flags & FLAG_PROB_TARGETS) != 0u {
        if lid == 0u {
            batch.total_weight = f32(params.rows);
        }
        return;
    }
    var acc = 0.0;
    for (var row = lid; row < params.rows; row += REDUCE_WG) {
        let t = row_target(row);
        if target_kind(t) == TARGET_VALID {
            acc += class_weight(u32(t));
        }
    }
    partial_value[lid] = acc;
    workgroupBarrier();
    for (var stride = REDUCE_WG / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            partial_value[lid] += partial_value[lid + stride];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        batch.total_weight = partial_value[0];
    }
}

// loss_out = Σ row_loss (sum) or Σ row_loss / batch.total_weight (mean), non-finite losses
// carried exactly (a NaN row gives NaN, +inf and -inf rows give NaN, 0/0 gives NaN).
@compute @workgroup_size(256)
fn reduce_losses(@builtin(local_invocation_index) lid: u32) {
    var acc = ext(0.0);
    for (var row = lid; row < params.rows; row += REDUCE_WG) {
        acc = ext_add(acc, ext_from(row_loss[params.row_loss_off + row]));
    }
    partial_value[lid] = acc.v;
    partial_kind[lid] = acc.k;
    workgroupBarrier();
    for (var stride = REDUCE_WG / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            let sum = ext_add(
                Ext(partial_value[lid], partial_kind[lid]),
                Ext(partial_value[lid + stride], partial_kind[lid + stride]),
            );
            partial_value[lid] = sum.v;
            partial_kind[lid] = sum.k;
        }
        workgroupBarrier();
    }
    if lid == 0u {
        var total = Ext(partial_value[0], partial_kind[0]);
        if (params.flags & FLAG_MEAN) != 0u {
            let divisor = batch.total_weight;
            if divisor == 0.0 && empty_gives_zero() {
                total = ext(0.0);
            } else {
                total = ext_div(total, divisor);
            }
        }
        loss_out[params.loss_out_off] = ext_to_f32(total);
    }
}

var<workgroup> partial_count: array<vec2<u32>, 256>;

// aux[accuracy_off] = the share of rows with a valid target whose argmax (aux[argmax_off +
// row]) is that target; NaN (0 under EmptyPolicy::Zero) when no row counts. Counts are
// integers, so the sum is exact in any order.
@compute @workgroup_size(256)
fn reduce_accuracy(@builtin(local_invocation_index) lid: u32) {
    var acc = vec2<u32>(0u, 0u);
    for (var row = lid; row < params.rows; row += REDUCE_WG) {
        let t = row_target(row);
        if target_kind(t) == TARGET_VALID {
            acc.y += 1u;
            if bitcast<u32>(aux[params.argmax_off + row]) == u32(t) {
                acc.x += 1u;
            }
        }
    }
    partial_count[lid] = acc;
    workgroupBarrier();
    for (var stride = REDUCE_WG / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            partial_count[lid] += partial_count[lid + stride];
        }
        workgroupBarrier();
    }
    if lid == 0u {
        let total = partial_count[0];
        var accuracy = ext_div(ext(f32(total.x)), f32(total.y));
        if total.y == 0u && empty_gives_zero() {
            accuracy = ext(0.0);
        }
        aux[params.accuracy_off] = ext_to_f32(accuracy);
    }
}

// The last dispatch of every class-index op: copies the first out-of-range target's value
// into the batch state, so the host learns the row and the value in one readback.
@compute @workgroup_size(1)
fn record_bad_target_value() {
    let key = atomicLoad(&batch.bad_row_key);
    if key != 0u {
        batch.bad_value = row_target(0xffffffffu - key);
    }
}
