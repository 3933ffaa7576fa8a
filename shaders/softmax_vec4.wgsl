// Row-wise log-softmax and softmax for rows held by one workgroup whose classes and
// offsets are multiples of 4: the same results as softmax.wgsl, read and written as
// vec4<f32>. One 16-byte load or store per invocation per step instead of four 4-byte
// ones; on CPU adapters (lavapipe, llvmpipe), where every invocation's access is its own
// memory operation, that is most of the kernel's time.
//
// Layout: the Row bind-group layout, with input / output viewed as vec4 arrays:
// params.input_off, grad_off and classes are multiples of 4 (the host checks).
// Passes: reads the row twice (statistics, then output) and writes it once.

@group(0) @binding(1) var<storage, read> input4: array<vec4<f32>>;
// Unused here, but declared: the statistics helpers need partials' accessors.
@group(0) @binding(5) var<storage, read_write> partials: array<vec4<f32>>;
@group(0) @binding(7) var<storage, read_write> output4: array<vec4<f32>>;

fn load_partial(i: u32) -> vec4<f32> {
    return partials[1u + i];
}

fn store_partial(i: u32, v: vec4<f32>) {
    partials[1u + i] = v;
}

fn softmax_row_vec4(row: u32, lid: u32, log_space: bool) {
    let quads = params.classes / 4u;
    let base = (params.input_off + row * params.classes) / 4u;
    let out = (params.grad_off + row * params.classes) / 4u;
    var s = stats_start();
    for (var q = lid; q < quads; q += WG) {
        stats_push4(&s, input4[base + q]);
    }
    let t = row_totals(s, lid);
    if row_is_poisoned(t) {
        let nan = vec4<f32>(nan_f32());
        for (var q = lid; q < quads; q += WG) {
            output4[out + q] = nan;
        }
        return;
    }
    let log_sum = log(t.sum_exp);
    let inv_sum = 1.0 / t.sum_exp;
    let neg_inf = vec4<f32>(neg_inf_f32());
    for (var q = lid; q < quads; q += WG) {
        let x = input4[base + q];
        let masked = bitcast<vec4<u32>>(x) == vec4<u32>(NEG_INF_BITS);
        // -inf entries: -inf (log space) or 0, chosen from their bits, never computed.
        let finite_x = select(x, vec4<f32>(t.m), masked);
        if log_space {
            output4[out + q] = select((finite_x - t.m) - log_sum, neg_inf, masked);
        } else {
            output4[out + q] = select(exp(finite_x - t.m) * inv_sum, vec4<f32>(0.0), masked);
        }
    }
}

@compute @workgroup_size(WG)
fn log_softmax_forward_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = workgroup_index(wid, nwg);
    if row < params.rows {
        softmax_row_vec4(row, lid, true);
    }
}

@compute @workgroup_size(WG)
fn softmax_forward_vec4(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let row = workgroup_index(wid, nwg);
    if row < params.rows {
        softmax_row_vec4(row, lid, false);
    }
}
