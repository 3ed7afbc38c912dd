// One pixel of every channel, (N, C, H, W) -> (N, C) (the `select` layer).
// Prefixed with shaders/common.wgsl when compiled.

struct SelectParams {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    y: u32,
    x: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> sel_params: SelectParams;
@group(0) @binding(1) var<storage, read> sel_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> sel_out: array<f32>;

@compute @workgroup_size(64)
fn select_pixel(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = sel_params;
    let idx = flat_index(gid, nwg); // b * c + ch
    let total = p.n * p.c;
    if (idx >= total) {
        return;
    }
    sel_out[idx] = sel_x[(idx * p.h + p.y) * p.w + p.x];
}
