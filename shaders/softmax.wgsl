// Softmax over the last axis, one invocation per row (the `softmax` layer).
// Prefixed with shaders/common.wgsl when compiled.

struct SoftmaxParams {
    rows: u32,
    cols: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> sm_params: SoftmaxParams;
@group(0) @binding(1) var<storage, read> sm_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> sm_out: array<f32>;

@compute @workgroup_size(64)
fn softmax(@builtin(global_invocation_id) gid: vec3<u32>,
           @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = sm_params;
    let row = flat_index(gid, nwg);
    if (row >= p.rows) {
        return;
    }
    let base = row * p.cols;
    var m = bitcast<f32>(0xff800000u);
    for (var k = 0u; k < p.cols; k = k + 1u) {
        m = max(m, sm_x[base + k]);
    }
    var s = 0.0;
    for (var k = 0u; k < p.cols; k = k + 1u) {
        s = s + exp(sm_x[base + k] - m);
    }
    for (var k = 0u; k < p.cols; k = k + 1u) {
        sm_out[base + k] = exp(sm_x[base + k] - m) / s;
    }
}
