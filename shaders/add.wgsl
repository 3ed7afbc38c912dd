// Element-wise sum of two values of one shape (the `add` layer).
// Prefixed with shaders/common.wgsl when compiled.

struct AddParams {
    len: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> add_params: AddParams;
@group(0) @binding(1) var<storage, read> add_a: array<f32>;
@group(0) @binding(2) var<storage, read> add_b: array<f32>;
@group(0) @binding(3) var<storage, read_write> add_out: array<f32>;

@compute @workgroup_size(64)
fn add(@builtin(global_invocation_id) gid: vec3<u32>,
       @builtin(num_workgroups) nwg: vec3<u32>) {
    let idx = flat_index(gid, nwg);
    if (idx >= add_params.len) {
        return;
    }
    add_out[idx] = add_a[idx] + add_b[idx];
}
