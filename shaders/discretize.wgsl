// Discretization kernels: separable cubic interpolation and quadrature/area scaling along one tensor axis.

struct InterpParams {
    outer: u32,
    n_in: u32,
    n_out: u32,
    inner: u32,
}

@group(0) @binding(0) var<uniform> interp_params: InterpParams;
@group(0) @binding(1) var<storage, read> interp_src: array<f32>;
@group(0) @binding(2) var<storage, read> interp_taps: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> interp_weights: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read_write> interp_dst: array<f32>;

// (outer, n_in, inner) -> (outer, n_out, inner); output point j mixes 4 input points.
@compute @workgroup_size(64)
fn interp_along(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = interp_params;
    let idx = gid.x + gid.y * (nwg.x * 64u);
    let total = p.outer * p.n_out * p.inner;
    if (idx >= total) {
        return;
    }
    let i = idx % p.inner;
    let j = (idx / p.inner) % p.n_out;
    let o = idx / (p.inner * p.n_out);
    let t = interp_taps[j];
    let w = interp_weights[j];
    let base = o * p.n_in;
    let a = interp_src[(base + t.x) * p.inner + i];
    let b = interp_src[(base + t.y) * p.inner + i];
    let c = interp_src[(base + t.z) * p.inner + i];
    let d = interp_src[(base + t.w) * p.inner + i];
    interp_dst[idx] = ((w.x * a + w.y * b) + w.z * c) + w.w * d;
}

struct ScaleParams {
    outer: u32,
    n: u32,
    inner: u32,
    tau: f32,
    area: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

@group(0) @binding(0) var<uniform> scale_params: ScaleParams;
@group(0) @binding(1) var<storage, read> scale_q: array<f32>;
@group(0) @binding(2) var<storage, read_write> scale_buf: array<f32>;

// In place on (outer, n, inner): buf *= q[j] * tau * area (multiplied left to right).
@compute @workgroup_size(64)
fn scale_along(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = scale_params;
    let idx = gid.x + gid.y * (nwg.x * 64u);
    let total = p.outer * p.n * p.inner;
    if (idx >= total) {
        return;
    }
    let j = (idx / p.inner) % p.n;
    scale_buf[idx] = ((scale_buf[idx] * scale_q[j]) * p.tau) * p.area;
}
