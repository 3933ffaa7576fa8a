// Softmax regression around wgpu-loss's cross-entropy kernel: the logits of a batch, and
// one gradient-descent step on the weights from the gradient of the loss with respect to
// those logits (which `encode_cross_entropy` writes between the two dispatches).
//
// Layout: `x` is `rows × features` row-major; `w` is `(features + 1) × classes` row-major,
// its last row the biases; `logits` and `grad_logits` are `rows × classes` row-major.
// Plain f32 sums in index order; the inputs are finite, so no non-finite handling.

struct Dims {
    rows: u32,
    features: u32,
    classes: u32,
    learning_rate: f32,
}

@group(0) @binding(0) var<uniform> dims: Dims;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> logits: array<f32>;
@group(0) @binding(4) var<storage, read> grad_logits: array<f32>;

// One invocation per logit (r, c), flat index r·classes + c:
// logits[r, c] = w[features, c] + Σ_k x[r, k]·w[k, c]. Reads one row of x and one column of w.
@compute @workgroup_size(64)
fn logits_forward(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i >= dims.rows * dims.classes {
        return;
    }
    let r = i / dims.classes;
    let c = i % dims.classes;
    var acc = w[dims.features * dims.classes + c];
    for (var k = 0u; k < dims.features; k++) {
        acc += x[r * dims.features + k] * w[k * dims.classes + c];
    }
    logits[i] = acc;
}

// One invocation per weight (k, c), flat index k·classes + c: its gradient
// g = Σ_r x̃[r, k]·grad_logits[r, c], where x̃[r, features] = 1 (the bias), then
// w[k, c] -= learning_rate·g. Each invocation owns its weight, so no two write the same one.
@compute @workgroup_size(64)
fn gradient_descent_step(@builtin(global_invocation_id) id: vec3<u32>) {
    let i = id.x;
    if i >= (dims.features + 1u) * dims.classes {
        return;
    }
    let k = i / dims.classes;
    let c = i % dims.classes;
    var g = 0.0;
    for (var r = 0u; r < dims.rows; r++) {
        var input = 1.0;
        if k < dims.features {
            input = x[r * dims.features + k];
        }
        g += input * grad_logits[r * dims.classes + c];
    }
    w[i] -= dims.learning_rate * g;
}
