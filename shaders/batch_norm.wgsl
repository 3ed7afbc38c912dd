// Inference batch norm per channel of NCHW images (the `batch_norm2d` layer).
// Prefixed with shaders/common.wgsl when compiled.

struct BnParams {
    n: u32,
    c: u32,
    hw: u32,
    eps: f32,
    has_weight: u32,
    has_bias: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> bn_params: BnParams;
@group(0) @binding(1) var<storage, read> bn_x: array<f32>;
@group(0) @binding(2) var<storage, read> bn_mean: array<f32>;
@group(0) @binding(3) var<storage, read> bn_var: array<f32>;
@group(0) @binding(4) var<storage, read> bn_weight: array<f32>;
@group(0) @binding(5) var<storage, read> bn_bias: array<f32>;
@group(0) @binding(6) var<storage, read_write> bn_out: array<f32>;

@compute @workgroup_size(64)
fn batch_norm(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = bn_params;
    let idx = flat_index(gid, nwg);
    let total = p.n * p.c * p.hw;
    if (idx >= total) {
        return;
    }
    let ch = (idx / p.hw) % p.c;
    var y = (bn_x[idx] - bn_mean[ch]) * (1.0 / sqrt(bn_var[ch] + p.eps));
    if (p.has_weight != 0u) {
        y = y * bn_weight[ch];
    }
    if (p.has_bias != 0u) {
        y = y + bn_bias[ch];
    }
    bn_out[idx] = y;
}
