// The linear model of examples/train.rs (not the web demo's softmax_regression.wgsl): a linear layer `logits = x·Wᵀ + b`, its
// weight gradient, the SGD update, and a count of correct predictions. The loss between
// forward and backward (cross-entropy, or binary cross-entropy on one logit, forward and
// gradient in one kernel) is wgpu-loss's, recorded into the same encoder.
//
// Every entry point uses the same bind group. A batch is the rows
// `first_row .. first_row + rows` of a split whose whole `x` and `targets` are bound;
// `logits` and `logit_grad` hold the batch's rows only. One invocation per value computed
// (a logit, a weight or a row) in a one-dimensional dispatch of 64-wide workgroups, so
// `rows × outputs` and the weight count must stay below 65535 × 64.
// Plain f32 sums: rows and features are small here (at most a few thousand terms).

struct BatchParams {
    first_row: u32,
    rows: u32,
    features: u32,
    outputs: u32,
    learning_rate: f32,
    // 1: one output and f32 0/1 targets, predicted positive when the logit is > 0.
    // 0: one output per class and i32 class-index targets, predicted by the largest logit.
    binary: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: BatchParams;
// The split's rows, `features` values each, row-major.
@group(0) @binding(1) var<storage, read> x: array<f32>;
// One target per row of the split: i32 class index or f32 0/1, read as bits.
@group(0) @binding(2) var<storage, read> targets: array<u32>;
// W (`outputs × features`, row-major), then the `outputs` biases b.
@group(0) @binding(3) var<storage, read_write> weights: array<f32>;
// The batch's logits, `rows × outputs`.
@group(0) @binding(4) var<storage, read_write> logits: array<f32>;
// d loss / d logits, `rows × outputs`, written by wgpu-loss (already divided by `rows`).
@group(0) @binding(5) var<storage, read> logit_grad: array<f32>;
// d loss / d weights, laid out as `weights`.
@group(0) @binding(6) var<storage, read_write> weight_grad: array<f32>;
// How many rows were predicted right (added to; the host clears it).
@group(0) @binding(7) var<storage, read_write> correct: atomic<u32>;

// logits[r, o] = b[o] + Σ_f x[first_row + r, f] · W[o, f]: one invocation per logit, one
// pass over a row of x and a row of W.
@compute @workgroup_size(64)
fn linear_forward(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i >= p.rows * p.outputs {
        return;
    }
    let o = i % p.outputs;
    let x_row = (p.first_row + i / p.outputs) * p.features;
    let w_row = o * p.features;
    var sum = weights[p.outputs * p.features + o];
    for (var f = 0u; f < p.features; f++) {
        sum += x[x_row + f] * weights[w_row + f];
    }
    logits[i] = sum;
}

// dW[o, f] = Σ_r g[r, o] · x[first_row + r, f] (gᵀ·x) and db[o] = Σ_r g[r, o]: one
// invocation per weight or bias, one pass down a column of g (and of x).
@compute @workgroup_size(64)
fn linear_weight_grad(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    let w_count = p.outputs * p.features;
    if i >= w_count + p.outputs {
        return;
    }
    var sum = 0.0;
    if i < w_count {
        let o = i / p.features;
        let f = i % p.features;
        for (var r = 0u; r < p.rows; r++) {
            sum += logit_grad[r * p.outputs + o] * x[(p.first_row + r) * p.features + f];
        }
    } else {
        let o = i - w_count;
        for (var r = 0u; r < p.rows; r++) {
            sum += logit_grad[r * p.outputs + o];
        }
    }
    weight_grad[i] = sum;
}

// weights -= learning_rate · weight_grad, one invocation per weight or bias.
@compute @workgroup_size(64)
fn sgd_step(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i >= (p.features + 1u) * p.outputs {
        return;
    }
    weights[i] -= p.learning_rate * weight_grad[i];
}

// Adds 1 to `correct` for every batch row whose prediction matches its target: one
// invocation per row. Ties go to the first largest logit.
@compute @workgroup_size(64)
fn count_correct(@builtin(global_invocation_id) id: vec3<u32>) {
    let r = id.x;
    if r >= p.rows {
        return;
    }
    let label = targets[p.first_row + r];
    let row = r * p.outputs;
    var right: bool;
    if p.binary == 1u {
        right = (logits[row] > 0.0) == (bitcast<f32>(label) > 0.5);
    } else {
        var best = 0u;
        for (var o = 1u; o < p.outputs; o++) {
            if logits[row + o] > logits[row + best] {
                best = o;
            }
        }
        right = best == label;
    }
    if right {
        atomicAdd(&correct, 1u);
    }
}
