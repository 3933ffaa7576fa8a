//! import shared/common
//! import format

// Bindings and helpers shared by the class-index families (nll, cross_entropy, reduce):
// one bind-group layout serves every kernel of an op, so one bind group per recording.

// Binding 1 `input` (logits or log-probabilities, rows × classes or N × C × spatial, from
// params.input_off) and binding 7 `grad` (the gradient, laid out as the input, from
// params.grad_off) are declared by the element-format file the module is built with
// (shaders/shared/format/*.wgsl), with load_input / store_grad.
// One class index per row, from params.target_off; with FLAG_PROB_TARGETS, f32
// probabilities laid out as the input (read through soft_target).
@group(0) @binding(2) var<storage, read> targets: array<i32>;
// The workspace's auxiliary buffer: one weight per class from 0 (read only when
// FLAG_WEIGHT is set), then the extra outputs of cross-entropy at the params' offsets
// (per-row log-sum-exp, per-row argmax as i32 bits, the argmax partials of split rows as
// (order key, class) pairs, and the batch accuracy), which the host copies out.
@group(0) @binding(3) var<storage, read_write> aux: array<f32>;
// Upstream gradient: one per row (reduction none) or one value, from grad_output_off.
@group(0) @binding(4) var<storage, read> grad_output: array<f32>;
// Per-recording batch state, cleared before each op: mean's divisor and the first
// out-of-range target (the status the host reads back).
struct BatchState {
    // Σ w[t] over the rows whose target is a valid class.
    total_weight: f32,
    // 0xffffffff - (the first row with an out-of-range target), 0 when there is none:
    // atomicMax keeps the first row whatever order the rows run in.
    bad_row_key: atomic<u32>,
    // That row's target (written by record_bad_target_value).
    bad_value: i32,
    pad: u32,
    // Log-sum-exp partials of split or sharded rows (see row_stats.wgsl), two vec4 each.
    partials: array<vec4<f32>>,
}
@group(0) @binding(5) var<storage, read_write> batch: BatchState;
// One loss per row, from params.row_loss_off.
@group(0) @binding(6) var<storage, read_write> row_loss: array<f32>;
// The reduced loss (sum or mean), at params.loss_out_off.
@group(0) @binding(8) var<storage, read_write> loss_out: array<f32>;

const TARGET_VALID: u32 = 0u;
const TARGET_IGNORED: u32 = 1u;
const TARGET_INVALID: u32 = 2u;

fn row_target(row: u32) -> i32 {
    return targets[params.target_off + row];
}

fn target_kind(t: i32) -> u32 {
    if t == params.ignore_index {
        return TARGET_IGNORED;
    }
    if t < 0 || u32(t) >= params.total_classes {
        return TARGET_INVALID;
    }
    return TARGET_VALID;
}

// Notes an out-of-range target in the batch state (the first row wins).
fn report_bad_target(row: u32) {
    atomicMax(&batch.bad_row_key, 0xffffffffu - (params.row_base + row));
}

fn empty_gives_zero() -> bool {
    return (params.flags & FLAG_EMPTY_ZERO) != 0u;
}

fn class_weight(c: u32) -> f32 {
    if (params.flags & FLAG_WEIGHT) != 0u {
        return aux[c];
    }
    return 1.0;
}

fn has_prob_targets() -> bool {
    return (params.flags & FLAG_PROB_TARGETS) != 0u;
}

// A probability target at element i of the targets matrix (same layout as the input).
fn soft_target(i: u32) -> f32 {
    return bitcast<f32>(targets[params.target_off + i]);
}

// The upstream gradient of a row (÷ the total target weight for mean). NaN when it is
// not finite, or when mean's total weight is 0 (0 under EmptyPolicy::Zero).
fn upstream_grad(row: u32) -> Ext {
    var g = params.grad_scale;
    if (params.flags & FLAG_GRAD_BUFFER) != 0u {
        let per_row = (params.flags & (FLAG_MEAN | FLAG_SUM)) == 0u;
        g = grad_output[params.grad_output_off + select(0u, row, per_row)];
    }
    if !is_finite_bits(g) {
        return ext_kind(EXT_NAN);
    }
    if (params.flags & FLAG_MEAN) != 0u {
        let total = batch.total_weight;
        if total == 0.0 {
            if empty_gives_zero() {
                return ext(0.0);
            }
            return ext_kind(EXT_NAN);
        }
        return ext(g / total);
    }
    return ext(g);
}
