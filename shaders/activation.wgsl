// Element-wise activations: ReLU, GELU (erf form), SiLU (the `relu`, `gelu` and `silu` layers).
// Prefixed with shaders/common.wgsl when compiled.

struct UnaryParams {
    len: u32,
    op: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> unary_params: UnaryParams;
@group(0) @binding(1) var<storage, read> unary_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> unary_out: array<f32>;

// Error function, absolute error below 1e-7 in f32 (minimax polynomial on
// |a| <= 0.927734375, 1 - exp(poly) above).
fn erf_approx(a: f32) -> f32 {
    let t = abs(a);
    if (t > 0.927734375) {
        let tc = min(t, 6.0);
        let s = tc * tc;
        var r = -1.72853470e-5 * tc + 3.83197126e-4;
        let u = -3.88396438e-3 * tc + 2.42546219e-2;
        r = r * s + u;
        r = r * tc - 1.06777877e-1;
        r = r * tc - 6.34846687e-1;
        r = r * tc - 1.28717512e-1;
        r = r * tc - tc;
        r = 1.0 - exp(r);
        return select(r, -r, a < 0.0);
    }
    let s = a * a;
    var r = -5.96761703e-4;
    r = r * s + 4.99119423e-3;
    r = r * s - 2.67681349e-2;
    r = r * s + 1.12819925e-1;
    r = r * s - 3.76125336e-1;
    r = r * s + 1.28379166e-1;
    return r * a + a;
}

// op 0 = ReLU, 1 = GELU (erf form), 2 = SiLU.
@compute @workgroup_size(64)
fn unary(@builtin(global_invocation_id) gid: vec3<u32>,
         @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = unary_params;
    let idx = flat_index(gid, nwg);
    if (idx >= p.len) {
        return;
    }
    let v = unary_x[idx];
    var y: f32;
    if (p.op == 0u) {
        y = max(v, 0.0);
    } else if (p.op == 1u) {
        y = 0.5 * v * (1.0 + erf_approx(v / 1.4142135623730951));
    } else {
        y = v / (1.0 + exp(-v));
    }
    unary_out[idx] = y;
}
