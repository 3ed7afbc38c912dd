// Discretization kernels: separable cubic interpolation along one tensor axis (with the final
// quadrature/area scaling fused into the last pass), and both channel axes in one pass.

// Scaling of a result: ((f * q[(idx / q_stride) % q_len]) * tau) when has_q, then * area
// (has_q = 0 and area = 1 leave f as it is).
struct Scaling {
    has_q: u32,
    q_stride: u32,
    q_len: u32,
    tau: f32,
    area: f32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// Index into q of output element idx.
fn q_index(s: Scaling, idx: u32) -> u32 {
    return (idx / s.q_stride) % s.q_len;
}

// f scaled by s with quadrature weight q, multiplied left to right.
fn scaled(f: f32, s: Scaling, q: f32) -> f32 {
    var g = f;
    if (s.has_q != 0u) {
        g = (g * q) * s.tau;
    }
    return g * s.area;
}

struct InterpParams {
    outer: u32,
    n_in: u32,
    n_out: u32,
    inner: u32,
    scale: Scaling,
}

@group(0) @binding(0) var<uniform> interp_params: InterpParams;
@group(0) @binding(1) var<storage, read> interp_src: array<f32>;
@group(0) @binding(2) var<storage, read> interp_taps: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> interp_weights: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> interp_q: array<f32>;
@group(0) @binding(5) var<storage, read_write> interp_dst: array<f32>;

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
    let f = ((w.x * a + w.y * b) + w.z * c) + w.w * d;
    interp_dst[idx] = scaled(f, p.scale, interp_q[q_index(p.scale, idx)]);
}

// Both leading channel axes of an (N_a, N_b, P) parameter in one pass, with its scaling:
// (N_a, N_b, P) -> (m_a, m_b, P). Each output recomputes the four values along dim 1 it mixes
// (the T values interp_along would write for dim 1), then mixes them along dim 0 and scales:
// the float operations of interp_along on dim 1 then on dim 0, in their order, without the
// intermediate tensor.
struct Interp2Params {
    n_b: u32,
    m_a: u32,
    m_b: u32,
    planes: u32,
    scale: Scaling,
}

@group(0) @binding(0) var<uniform> two_params: Interp2Params;
@group(0) @binding(1) var<storage, read> two_src: array<f32>;
// Taps and weights of dim 0 (m_a entries), then of dim 1 (m_b entries).
@group(0) @binding(2) var<storage, read> two_taps: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read> two_weights: array<vec4<f32>>;
@group(0) @binding(4) var<storage, read> two_q: array<f32>;
@group(0) @binding(5) var<storage, read_write> two_dst: array<f32>;

// λ interpolated along dim 1 at control row r, output column b (taps tb, weights wb), plane p.
fn t_value(r: u32, tb: vec4<u32>, wb: vec4<f32>, p: u32) -> f32 {
    let row = r * two_params.n_b;
    let k = two_params.planes;
    let a = two_src[(row + tb.x) * k + p];
    let b = two_src[(row + tb.y) * k + p];
    let c = two_src[(row + tb.z) * k + p];
    let d = two_src[(row + tb.w) * k + p];
    return ((wb.x * a + wb.y * b) + wb.z * c) + wb.w * d;
}

@compute @workgroup_size(64)
fn interp_two(@builtin(global_invocation_id) gid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = two_params;
    let idx = gid.x + gid.y * (nwg.x * 64u);
    if (idx >= p.m_a * p.m_b * p.planes) {
        return;
    }
    let k = idx % p.planes;
    let b = (idx / p.planes) % p.m_b;
    let a = idx / (p.planes * p.m_b);
    let ta = two_taps[a];
    let wa = two_weights[a];
    let tb = two_taps[p.m_a + b];
    let wb = two_weights[p.m_a + b];
    let f = ((wa.x * t_value(ta.x, tb, wb, k) + wa.y * t_value(ta.y, tb, wb, k))
        + wa.z * t_value(ta.z, tb, wb, k)) + wa.w * t_value(ta.w, tb, wb, k);
    two_dst[idx] = scaled(f, p.scale, two_q[q_index(p.scale, idx)]);
}
