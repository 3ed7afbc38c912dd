// Direct 2-D convolution of NCHW images, one invocation per output value (the `conv2d` layer).
// Prefixed with shaders/common.wgsl when compiled.

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
