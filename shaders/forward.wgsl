// Forward-pass kernels for a batch of NCHW images: conv2d, linear, activations, pooling, batch norm, add, pixel select, softmax.

fn flat_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * (nwg.x * 64u);
}

// ---------------------------------------------------------------- conv2d

struct ConvParams {
    n: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    dh: u32,
    dw: u32,
    groups: u32,
    replicate: u32,
    has_bias: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> conv_params: ConvParams;
@group(0) @binding(1) var<storage, read> conv_x: array<f32>;
@group(0) @binding(2) var<storage, read> conv_weight: array<f32>;
@group(0) @binding(3) var<storage, read> conv_bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> conv_out: array<f32>;

@compute @workgroup_size(64)
fn conv2d(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = conv_params;
    let idx = flat_index(gid, nwg);
    let total = p.n * p.cout * p.oh * p.ow;
    if (idx >= total) {
        return;
    }
    let ox = idx % p.ow;
    let oy = (idx / p.ow) % p.oh;
    let co = (idx / (p.ow * p.oh)) % p.cout;
    let b = idx / (p.ow * p.oh * p.cout);
    let cpg = p.cin / p.groups;
    let opg = p.cout / p.groups;
    let g = co / opg;
    let hi = i32(p.h);
    let wi = i32(p.w);
    var acc = 0.0;
    for (var ci = 0u; ci < cpg; ci = ci + 1u) {
        let x_plane = (b * p.cin + g * cpg + ci) * p.h;
        let w_plane = (co * cpg + ci) * p.kh;
        for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
            var iy = i32(oy * p.sh + ky * p.dh) - i32(p.ph);
            if (p.replicate != 0u) {
                iy = clamp(iy, 0, hi - 1);
            } else if (iy < 0 || iy >= hi) {
                continue;
            }
            for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
                var ix = i32(ox * p.sw + kx * p.dw) - i32(p.pw);
                if (p.replicate != 0u) {
                    ix = clamp(ix, 0, wi - 1);
                } else if (ix < 0 || ix >= wi) {
                    continue;
                }
                let xv = conv_x[(x_plane + u32(iy)) * p.w + u32(ix)];
                let wv = conv_weight[(w_plane + ky) * p.kw + kx];
                acc = acc + xv * wv;
            }
        }
    }
    if (p.has_bias != 0u) {
        acc = acc + conv_bias[co];
    }
    conv_out[idx] = acc;
}

// ---------------------------------------------------------------- linear

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

// ---------------------------------------------------------------- unary activations

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

// ---------------------------------------------------------------- pool2d

struct PoolParams {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    is_max: u32,
    count_include_pad: u32,
    _pad0: u32,
    _pad1: u32,
}

@group(0) @binding(0) var<uniform> pool_params: PoolParams;
@group(0) @binding(1) var<storage, read> pool_x: array<f32>;
@group(0) @binding(2) var<storage, read_write> pool_out: array<f32>;

@compute @workgroup_size(64)
fn pool2d(@builtin(global_invocation_id) gid: vec3<u32>,
          @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = pool_params;
    let idx = flat_index(gid, nwg);
    let total = p.n * p.c * p.oh * p.ow;
    if (idx >= total) {
        return;
    }
    let ox = idx % p.ow;
    let oy = (idx / p.ow) % p.oh;
    let plane = idx / (p.ow * p.oh); // b * c + ch
    let hi = i32(p.h);
    let wi = i32(p.w);
    let base = plane * p.h;
    var mx = bitcast<f32>(0xff800000u);
    var sum = 0.0;
    var count = 0u;
    for (var ky = 0u; ky < p.kh; ky = ky + 1u) {
        let iy = i32(oy * p.sh + ky) - i32(p.ph);
        if (iy < 0 || iy >= hi) {
            continue;
        }
        for (var kx = 0u; kx < p.kw; kx = kx + 1u) {
            let ix = i32(ox * p.sw + kx) - i32(p.pw);
            if (ix < 0 || ix >= wi) {
                continue;
            }
            let v = pool_x[(base + u32(iy)) * p.w + u32(ix)];
            mx = max(mx, v);
            sum = sum + v;
            count = count + 1u;
        }
    }
    var y: f32;
    if (p.is_max != 0u) {
        y = mx;
    } else if (p.count_include_pad != 0u) {
        y = sum / f32(p.kh * p.kw);
    } else {
        y = sum / f32(count);
    }
    pool_out[idx] = y;
}

// ---------------------------------------------------------------- global_avg_pool

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

// ---------------------------------------------------------------- batch_norm (inference)

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

// ---------------------------------------------------------------- add

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

// ---------------------------------------------------------------- select_pixel

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

// ---------------------------------------------------------------- softmax (one invocation per row)

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
