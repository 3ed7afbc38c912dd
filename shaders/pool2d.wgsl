// Average and max pooling of NCHW images, one invocation per output value (the pooling layers).
// Prefixed with shaders/common.wgsl when compiled.

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
