// Mean over all pixels, (N, C, H, W) -> (N, C) (the `global_avg_pool` layer).
// Prefixed with shaders/common.wgsl when compiled.

struct GapParams {
    n: u32,
    c: u32,
    hw: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> gap_params: GapParams;
@group(0) @binding(1) var<storage, read> gap_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> gap_out: array<f32>;

@compute @workgroup_size(64)
fn global_avg_pool(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = gap_params;
    let idx = flat_index(gid, nwg);
    let total = p.n * p.c;
    if (idx >= total) {
        return;
    }
    let base = idx * p.hw;
    var sum = 0.0;
    for (var k = 0u; k < p.hw; k = k + 1u) {
        sum = sum + gap_x[base + k];
    }
    gap_out[idx] = sum / f32(p.hw);
}
