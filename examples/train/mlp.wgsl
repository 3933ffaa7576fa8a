// The hidden layer's ReLU and the SGD update of the two-layer model in examples/train/mlp.rs:
// everything else — `x·W1ᵀ + b1`, the output layer (plain or fused with its loss) and the
// gradients of both layers — is wgpu-loss's. One invocation per value in a one-dimensional
// dispatch of 64-wide workgroups.

struct Params {
    // Values to update.
    n: u32,
    learning_rate: f32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
// The activations (ReLU) or a layer's parameters (SGD).
@group(0) @binding(1) var<storage, read_write> values: array<f32>;
// Their gradient, laid out the same way.
@group(0) @binding(2) var<storage, read_write> grads: array<f32>;

// values = max(values, 0): the hidden layer's activations from its pre-activations.
@compute @workgroup_size(64)
fn relu_forward(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x < p.n {
        values[id.x] = max(values[id.x], 0.0);
    }
}

// ∂pre = ∂act where the unit was active, else 0 (in place over ∂act).
@compute @workgroup_size(64)
fn relu_backward(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x < p.n && values[id.x] <= 0.0 {
        grads[id.x] = 0.0;
    }
}

// values -= learning_rate · grads.
@compute @workgroup_size(64)
fn sgd_step(@builtin(global_invocation_id) id: vec3<u32>) {
    if id.x < p.n {
        values[id.x] -= p.learning_rate * grads[id.x];
    }
}
