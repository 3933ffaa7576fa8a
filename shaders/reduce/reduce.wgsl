//! import shared/class_index

// Batch reductions of the class-index families. reduce_blocks takes a workgroup of 256
// invocations per block of REDUCE_BLOCK rows (invocation i folds rows i, i + 256, … of its
// block in order, then a fixed binary tree combines the 256), and reduce_totals combines
// the blocks' partials in one workgroup the same way; a batch of one block has its totals
// from reduce_blocks alone. Blocks are fixed runs of the batch's rows, so every result is
// bit-identical from run to run and however the rows are chunked. Blocks are large: on a
// CPU adapter each workgroup that meets a barrier costs tens of microseconds (measured on
// lavapipe: blocks of 16384 rows made a 65536-row mean slower than one block did), and a
// batch of up to 65536 rows reduces exactly as a single workgroup over its rows would.
// They read `rows` values, never rows × classes.
//
// Partials: the workspace's row losses hold, after the batch's rows, each block's Σ loss
// (an Ext written as f32: ±inf and NaN by their bits) and then each block's Σ weight.
// LOSSES (set per pipeline): the blocks' losses as well as their weights.

override LOSSES: bool = false;

const REDUCE_WG: u32 = 256u;
const REDUCE_BLOCK: u32 = 65536u;

var<workgroup> partial_value: array<f32, 256>;
var<workgroup> partial_kind: array<u32, 256>;
var<workgroup> partial_weight: array<f32, 256>;

fn reduce_blocks_count() -> u32 {
    return (params.rows + REDUCE_BLOCK - 1u) / REDUCE_BLOCK;
}

fn loss_partial(block: u32) -> u32 {
    return params.row_loss_off + params.rows + block;
}

fn weight_partial(block: u32) -> u32 {
    return loss_partial(reduce_blocks_count() + block);
}

// Whether the mean's divisor is summed from the targets (the row count for probability
// targets, as PyTorch).
fn sums_weights() -> bool {
    return (params.flags & FLAG_MEAN) != 0u && !has_prob_targets();
}

// A row's part of the mean's divisor: w[t] for a valid target, else 0.
fn row_weight(row: u32) -> f32 {
    let t = row_target(row);
    return select(0.0, class_weight(u32(max(t, 0))), target_kind(t) == TARGET_VALID);
}

// A row loss added into a running sum: ext_add(acc, ext_from(x)) without its branch on the
// kinds (finite values are added in order, the kinds OR-ed; once the kind is not finite
// the value is never read).
fn ext_fold(acc: Ext, x: f32) -> Ext {
    let e = ext_from(x);
    return Ext(acc.v + e.v, acc.k | e.k);
}

// Combines the workgroup's (loss, weight) pairs in a fixed binary tree; the result is in
// invocation 0's slot.
fn combine_partials(lid: u32, acc: Ext, weight: f32) {
    partial_value[lid] = acc.v;
    partial_kind[lid] = acc.k;
    partial_weight[lid] = weight;
    workgroupBarrier();
    for (var stride = REDUCE_WG / 2u; stride > 0u; stride = stride / 2u) {
        if lid < stride {
            let sum = ext_add(
                Ext(partial_value[lid], partial_kind[lid]),
                Ext(partial_value[lid + stride], partial_kind[lid + stride]),
            );
            partial_value[lid] = sum.v;
            partial_kind[lid] = sum.k;
            partial_weight[lid] += partial_weight[lid + stride];
        }
        workgroupBarrier();
    }
}

// One workgroup per block of rows: its Σ w[t] (mean) and, with LOSSES, its Σ row_loss,
// non-finite losses carried exactly. A batch of one block has its totals here.
@compute @workgroup_size(256)
fn reduce_blocks(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let block = workgroup_index(wid, nwg);
    if block >= reduce_blocks_count() { return; }
    let weights = sums_weights();
    var acc = ext(0.0);
    var weight = 0.0;
    for (var k = 0u; k < REDUCE_BLOCK / REDUCE_WG; k++) {
        let row = block * REDUCE_BLOCK + k * REDUCE_WG + lid;
        if row < params.rows {
            if weights {
                weight += row_weight(row);
            }
            if LOSSES {
                acc = ext_fold(acc, row_loss[params.row_loss_off + row]);
            }
        }
    }
    combine_partials(lid, acc, weight);
    if lid != 0u { return; }
    if reduce_blocks_count() == 1u {
        finish_totals();
        return;
    }
    row_loss[weight_partial(block)] = partial_weight[0];
    if LOSSES {
        row_loss[loss_partial(block)] = ext_to_f32(Ext(partial_value[0], partial_kind[0]));
    }
}

// One workgroup: the totals from the blocks' partials (batches of more than one block).
@compute @workgroup_size(256)
fn reduce_totals(@builtin(local_invocation_index) lid: u32) {
    let weights = sums_weights();
    var acc = ext(0.0);
    var weight = 0.0;
    for (var block = lid; block < reduce_blocks_count(); block += REDUCE_WG) {
        if weights {
            weight += row_loss[weight_partial(block)];
        }
        if LOSSES {
            acc = ext_fold(acc, row_loss[loss_partial(block)]);
        }
    }
    combine_partials(lid, acc, weight);
    if lid == 0u {
        finish_totals();
    }
}

// From the combined partials (invocation 0's slot): batch.total_weight = Σ w[t] over the
// rows whose target is a valid class (mean's divisor; the row count for probability
// targets); with LOSSES, loss_out = Σ row_loss (sum) or Σ row_loss / batch.total_weight
// (mean), non-finite losses carried exactly (a NaN row gives NaN, +inf and -inf rows give
// NaN, 0/0 gives NaN), and, this being the op's last pass over the rows' results, the bad
// target's value (as record_bad_target_value).
fn finish_totals() {
    let divisor = select(f32(params.rows), partial_weight[0], sums_weights());
    batch.total_weight = divisor;
    if !LOSSES { return; }
    var total = Ext(partial_value[0], partial_kind[0]);
    if (params.flags & FLAG_MEAN) != 0u {
        if divisor == 0.0 && empty_gives_zero() {
            total = ext(0.0);
        } else {
            total = ext_div(total, divisor);
        }
    }
    loss_out[params.loss_out_off] = ext_to_f32(total);
    record_bad_target();
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
    record_bad_target();
}

fn record_bad_target() {
    let key = atomicLoad(&batch.bad_row_key);
    if key != 0u {
        batch.bad_value = row_target(0xffffffffu - key);
    }
}
