// Discretization of many parameters in one dispatch: each job interpolates one parameter's
// values along one axis, or along two axes at once, cubic weights from the partition's basis;
// a parameter's last job also applies quadrature, τ and the area element.
//
// A job sees its source as (outer, n_a, mid, n_b, inner) and writes (outer, m_a, mid, m_b,
// inner): axis a mixes four source rows chosen by its taps; with two axes, each of those rows
// is first interpolated along axis b (the higher one, as the CPU engine goes from the last
// axis to the first) — the float operations of one pass per axis, in their order, without
// the intermediate tensor. With one axis, n_b = m_b = 1.

// A dispatch of `interp_batch`: jobs [first, first + count) of the table, and the
// workgroups of all of them.
struct BatchParams {
    first: u32,
    count: u32,
    groups: u32,
    _pad: u32,
}

// One job (the `Job` struct of src/gpu/params.rs): its first workgroup in the dispatch, the
// values it writes, its shapes, the tail words of its bases (four taps, four weights a point;
// basis_b = NO_AXIS with one axis), its first source and destination words, FINAL | HAS_Q,
// the quadrature weights (tail word, stride and count in the output), τ, the area element,
// and the table word where the tail (bases and quadrature weights) begins.
struct Job {
    start: u32,
    total: u32,
    outer: u32,
    n_a: u32,
    mid: u32,
    n_b: u32,
    inner: u32,
    m_a: u32,
    m_b: u32,
    basis_a: u32,
    basis_b: u32,
    src: u32,
    dst: u32,
    flags: u32,
    q: u32,
    q_stride: u32,
    q_len: u32,
    tau: f32,
    area: f32,
    tail: u32,
}

const NO_AXIS: u32 = 0xffffffffu;
// Outputs each invocation of interp_batch computes (a job's workgroups cover 64 times as many).
const PER_INVOCATION: u32 = 4u;
const FINAL: u32 = 2u;
const HAS_Q: u32 = 4u;

// The table: jobs, then the tail, read as jobs and as four words at a time. The source of
// every job of a dispatch is λ in the first pass and the previous pass's temporary after it;
// a job writes the discrete weights if it is its parameter's last, else the temporary of its
// pass.
@group(0) @binding(0) var<uniform> batch: BatchParams;
@group(0) @binding(1) var<storage, read> points: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read> source: array<f32>;
@group(0) @binding(3) var<storage, read_write> temp_out: array<f32>;
@group(0) @binding(4) var<storage, read_write> weights: array<f32>;
@group(0) @binding(5) var<storage, read> jobs: array<Job>;
// The one job of an `interp_one` dispatch.
@group(0) @binding(6) var<uniform> one: Job;

// A point of a basis (tail words are multiples of 4).
fn taps_at(j: Job, word: u32) -> vec4<u32> {
    return points[(j.tail + word) / 4u];
}

fn weights_at(j: Job, word: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(points[(j.tail + word) / 4u + 1u]);
}

// Cubic mix of four values, left to right.
fn mix4(w: vec4<f32>, a: f32, b: f32, c: f32, d: f32) -> f32 {
    return ((w.x * a + w.y * b) + w.z * c) + w.w * d;
}

// Output value idx of job j.
fn run(j: Job, idx: u32) {
    let k = idx % j.inner;
    var f: f32;
    if (j.basis_b == NO_AXIS) {
        // One axis: (outer, n_a, inner) -> (outer, m_a, inner).
        let r = idx / j.inner;
        let basis_a = j.basis_a + 8u * (r % j.m_a);
        let ta = taps_at(j, basis_a);
        let wa = weights_at(j, basis_a);
        let at = j.src + ((r / j.m_a) * j.n_a) * j.inner + k;
        f = mix4(wa,
            source[at + ta.x * j.inner],
            source[at + ta.y * j.inner],
            source[at + ta.z * j.inner],
            source[at + ta.w * j.inner]);
    } else {
        var r = idx / j.inner;
        let basis_b = j.basis_b + 8u * (r % j.m_b);
        r = r / j.m_b;
        let m = r % j.mid;
        r = r / j.mid;
        let basis_a = j.basis_a + 8u * (r % j.m_a);
        let ta = taps_at(j, basis_a);
        let wa = weights_at(j, basis_a);
        let tb = taps_at(j, basis_b);
        let wb = weights_at(j, basis_b);
        // Control row t along a starts at word row + t * mid (in units of n_b * inner).
        let row = ((r / j.m_a) * j.n_a) * j.mid + m;
        var t: array<f32, 4>;
        for (var s = 0u; s < 4u; s = s + 1u) {
            let at = j.src + ((row + ta[s] * j.mid) * j.n_b) * j.inner + k;
            t[s] = mix4(wb,
                source[at + tb.x * j.inner],
                source[at + tb.y * j.inner],
                source[at + tb.z * j.inner],
                source[at + tb.w * j.inner]);
        }
        f = mix4(wa, t[0], t[1], t[2], t[3]);
    }
    let dst = j.dst + idx;
    if ((j.flags & FINAL) == 0u) {
        temp_out[dst] = f;
        return;
    }
    // Quadrature, τ and the area element, multiplied left to right.
    var g = f;
    if ((j.flags & HAS_Q) != 0u) {
        let w = j.tail + j.q + (idx / j.q_stride) % j.q_len;
        g = (g * bitcast<f32>(points[w / 4u][w % 4u])) * j.tau;
    }
    weights[dst] = g * j.area;
}

// Many jobs: each workgroup finds its own, the last one starting at or before it.
@compute @workgroup_size(64)
fn interp_batch(@builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let wg = wid.x + wid.y * nwg.x;
    if (wg >= batch.groups) {
        return;
    }
    var lo = batch.first;
    var hi = batch.first + batch.count - 1u;
    while (lo < hi) {
        let mid = (lo + hi + 1u) / 2u;
        if (jobs[mid].start <= wg) {
            lo = mid;
        } else {
            hi = mid - 1u;
        }
    }
    // PER_INVOCATION outputs each, 64 apart: the search and the job's load serve them all.
    let j = jobs[lo];
    let first = (wg - j.start) * (64u * PER_INVOCATION) + lid;
    for (var e = 0u; e < PER_INVOCATION; e = e + 1u) {
        let idx = first + e * 64u;
        if (idx < j.total) {
            run(j, idx);
        }
    }
}

// One job, from a uniform block: what a CPU device (lavapipe) runs fastest, one parameter and
// axis at a time.
@compute @workgroup_size(64)
fn interp_one(@builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let idx = (wid.x + wid.y * nwg.x) * 64u + lid;
    if (idx < one.total) {
        run(one, idx);
    }
}
