// Fully connected layer `x · Wᵀ + b` on (N, F), one invocation per output value (the `linear` layer).
// Prefixed with shaders/common.wgsl when compiled.

struct LinearParams {
    n: u32,
    fin: u32,
    fout: u32,
    has_bias: u32,
}

@group(0) @binding(0) var<uniform> lin_params: LinearParams;
@group(0) @binding(1) var<storage, read> lin_x: array<f32>;
@group(0) @binding(2) var<storage, read> lin_weight: array<f32>;
@group(0) @binding(3) var<storage, read> lin_bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> lin_out: array<f32>;

@compute @workgroup_size(64)
fn linear(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = lin_params;
    let idx = flat_index(gid, nwg);
    let total = p.n * p.fout;
    if (idx >= total) {
        return;
    }
    let o = idx % p.fout;
    let b = idx / p.fout;
    var acc = 0.0;
    for (var i = 0u; i < p.fin; i = i + 1u) {
        acc = acc + lin_x[b * p.fin + i] * lin_weight[o * p.fin + i];
    }
    if (p.has_bias != 0u) {
        acc = acc + lin_bias[o];
    }
    lin_out[idx] = acc;
}
