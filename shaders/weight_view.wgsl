// Views of discrete weights that stay on the GPU: a 2-D slice of a weight buffer coloured into
// a texture the window draws directly, the slice's colour range, and per-output-channel sums
// of a 4-D kernel (for the spectra). See shaders/README.md.

struct SliceParams {
    offset: u32,
    rows: u32,
    cols: u32,
    row_stride: u32,
    col_stride: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
    // Diverging map, 0-255 sRGB: the colour at 0, at -max|v| and at +max|v|.
    mid: vec4<f32>,
    neg: vec4<f32>,
    pos: vec4<f32>,
}

// Index of entry (r, c) of the slice in the weight buffer.
fn slice_index(p: SliceParams, r: u32, c: u32) -> u32 {
    return p.offset + r * p.row_stride + c * p.col_stride;
}

// Finite (not NaN, not ±inf): comparisons with NaN are false.
fn is_finite(v: f32) -> bool {
    return abs(v) <= 3.40282347e38;
}

// ---- slice_range: max |v| over the finite values of the slice -----------------------------

@group(0) @binding(0) var<uniform> range_params: SliceParams;
@group(0) @binding(1) var<storage, read> range_w: array<f32>;
// Bits of max |v| (non-negative floats order like their bits); cleared to 0 before.
@group(0) @binding(2) var<storage, read_write> range_max: array<atomic<u32>>;

@compute @workgroup_size(64)
fn slice_range(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = range_params;
    let idx = gid.x + gid.y * (nwg.x * 64u);
    if (idx >= p.rows * p.cols) {
        return;
    }
    let v = range_w[slice_index(p, idx / p.cols, idx % p.cols)];
    if (is_finite(v)) {
        atomicMax(&range_max[0], bitcast<u32>(abs(v)));
    }
}

// ---- colorize: one texel per entry of the slice, rows down, columns across ----------------

@group(0) @binding(0) var<uniform> color_params: SliceParams;
@group(0) @binding(1) var<storage, read> color_w: array<f32>;
@group(0) @binding(2) var<storage, read> color_max: array<u32>;
@group(0) @binding(3) var color_out: texture_storage_2d<rgba8unorm, write>;

@compute @workgroup_size(8, 8)
fn colorize(@builtin(global_invocation_id) gid: vec3<u32>) {
    let p = color_params;
    if (gid.x >= p.cols || gid.y >= p.rows) {
        return;
    }
    let v = color_w[slice_index(p, gid.y, gid.x)];
    let m = max(bitcast<f32>(color_max[0]), 1e-12);
    var t = v / m;
    if (!is_finite(t)) {
        t = 0.0;
    }
    t = clamp(t, -1.0, 1.0);
    var end = p.pos.rgb;
    if (t < 0.0) {
        end = p.neg.rgb;
    }
    let f = abs(t);
    // Rounded half away from zero, as the window's own colouring does.
    let c = floor(p.mid.rgb + (end - p.mid.rgb) * f + vec3<f32>(0.5));
    textureStore(color_out, vec2<u32>(gid.x, gid.y), vec4<f32>(c / 255.0, 1.0));
}

// ---- channel_sums: Σ over input channels of the first output channels' kernels -----------

struct SumParams {
    // Output channels summed (at most the kernel's), input channels, values per kernel plane.
    n_out: u32,
    cin: u32,
    plane: u32,
    _pad0: u32,
}

@group(0) @binding(0) var<uniform> sum_params: SumParams;
@group(0) @binding(1) var<storage, read> sum_w: array<f32>;
@group(0) @binding(2) var<storage, read_write> sum_out: array<f32>;

@compute @workgroup_size(64)
fn channel_sums(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let p = sum_params;
    let idx = gid.x + gid.y * (nwg.x * 64u);
    if (idx >= p.n_out * p.plane) {
        return;
    }
    let a = idx / p.plane;
    let q = idx % p.plane;
    var s = 0.0;
    for (var b = 0u; b < p.cin; b++) {
        s += sum_w[(a * p.cin + b) * p.plane + q];
    }
    sum_out[idx] = s;
}
