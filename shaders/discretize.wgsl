// Discretization of many parameters in one dispatch: each job interpolates one parameter's
// values along one axis, or along two axes at once, cubic weights from the partition's basis;
// a parameter's last job also applies quadrature, τ and the area element.
//
// A job sees its source as (outer, n_a, mid, n_b, inner) and writes (outer, m_a, mid, m_b,
// inner): axis a mixes four source rows chosen by its taps; with two axes, each of those rows
// is first interpolated along axis b (the higher one, as the CPU engine goes from the last
// axis to the first) — the float operations of one pass per axis, in their order, without
// the intermediate tensor. With one axis, n_b = m_b = 1.

// A dispatch of `interp_batch` or `interp_rows`: jobs [first, first + count) of the table,
// the workgroups of all of them, and the output rows (points along axis a) each invocation of
// `interp_rows` computes.
struct BatchParams {
    first: u32,
    count: u32,
    groups: u32,
    rows: u32,
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
// The quadrature runs along axis a, or along axis b (interp_rows then needs no division).
const Q_ON_A: u32 = 8u;
const Q_ON_B: u32 = 16u;

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
    var qi = 0u;
    if ((j.flags & HAS_Q) != 0u) {
        qi = (idx / j.q_stride) % j.q_len;
    }
    store(j, idx, f, qi);
}

// Write output idx of job j: to the temporary, or, for a parameter's last job, scaled by
// quadrature weight qi (with HAS_Q), τ and the area element, multiplied left to right.
fn store(j: Job, idx: u32, f: f32, qi: u32) {
    let dst = j.dst + idx;
    if ((j.flags & FINAL) == 0u) {
        temp_out[dst] = f;
        return;
    }
    var g = f;
    if ((j.flags & HAS_Q) != 0u) {
        let w = j.tail + j.q + qi;
        g = (g * bitcast<f32>(points[w / 4u][w % 4u])) * j.tau;
    }
    weights[dst] = g * j.area;
}

// The index of this workgroup in a dispatch that may be split over two grid dimensions (one
// holds at most 65 535 workgroups).
fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// The job of workgroup wg of a batch dispatch: the last one starting at or before it.
fn job_of(wg: u32) -> u32 {
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
    return lo;
}

// Many jobs: each workgroup finds its own.
@compute @workgroup_size(64)
fn interp_batch(@builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>,
                @builtin(local_invocation_index) lid: u32) {
    let wg = group_index(wid, nwg);
    if (wg >= batch.groups) {
        return;
    }
    // PER_INVOCATION outputs each, 64 apart: the search and the job's load serve them all.
    let j = jobs[job_of(wg)];
    let first = (wg - j.start) * (64u * PER_INVOCATION) + lid;
    for (var e = 0u; e < PER_INVOCATION; e = e + 1u) {
        let idx = first + e * 64u;
        if (idx < j.total) {
            run(j, idx);
        }
    }
}

// One job, from a uniform block: a pass of the per-axis layout, one parameter and axis at a
// time.
@compute @workgroup_size(64)
fn interp_one(@builtin(workgroup_id) wid: vec3<u32>,
              @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let idx = group_index(wid, nwg) * 64u + lid;
    if (idx < one.total) {
        run(one, idx);
    }
}

// Control row c along axis a, at this invocation's point of axis b (tb, wb) and inner offset
// k: mixed along b as `run` mixes it, or, with one axis, the source value itself.
fn control(j: Job, o: u32, m: u32, k: u32, c: u32, tb: vec4<u32>, wb: vec4<f32>) -> f32 {
    let at = j.src + ((o * j.n_a + c) * j.mid + m) * j.n_b * j.inner + k;
    if (j.basis_b == NO_AXIS) {
        return source[at];
    }
    return mix4(wb,
        source[at + tb.x * j.inner],
        source[at + tb.y * j.inner],
        source[at + tb.z * j.inner],
        source[at + tb.w * j.inner]);
}

// Control row c: kept from the previous output row (rows `kept`, values `kept_t`) when it
// used it, else computed. The same value either way, so results do not depend on it.
fn control_kept(j: Job, o: u32, m: u32, k: u32, c: u32, tb: vec4<u32>, wb: vec4<f32>,
                kept: vec4<u32>, kept_t: vec4<f32>) -> f32 {
    if (c == kept.x) {
        return kept_t.x;
    }
    if (c == kept.y) {
        return kept_t.y;
    }
    if (c == kept.z) {
        return kept_t.z;
    }
    if (c == kept.w) {
        return kept_t.w;
    }
    return control(j, o, m, k, c, tb, wb);
}

// Many jobs, each in whole output rows: a job's workgroups cover, for each (outer, mid),
// `batch.rows` points along axis a at a time and 64 points of a row (the (m_b, inner) values
// after it) each. An invocation takes one point of the row through those output rows: its
// position, axis-b basis and quadrature weight are worked out once, every workgroup's rows
// share their axis-a basis, and a control row that the previous output row used is not mixed
// again (neighbouring points of a partition share three of their four). The float operations
// of each output are those of `run`.
@compute @workgroup_size(64)
fn interp_rows(@builtin(workgroup_id) wid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let wg = group_index(wid, nwg);
    if (wg >= batch.groups) {
        return;
    }
    let j = jobs[job_of(wg)];
    let len = j.m_b * j.inner;
    let row_groups = (len + 63u) / 64u;
    let rows = batch.rows;
    let a_groups = (j.m_a + rows - 1u) / rows;
    var w = wg - j.start;
    let e = (w % row_groups) * 64u + lid;
    w = w / row_groups;
    let a0 = (w % a_groups) * rows;
    w = w / a_groups;
    let m = w % j.mid;
    let o = w / j.mid;
    if (e >= len) {
        return;
    }
    let k = e % j.inner;
    let jb = e / j.inner;
    var tb = vec4<u32>(0u);
    var wb = vec4<f32>(0.0);
    if (j.basis_b != NO_AXIS) {
        tb = taps_at(j, j.basis_b + 8u * jb);
        wb = weights_at(j, j.basis_b + 8u * jb);
    }
    var kept = vec4<u32>(NO_AXIS);
    var kept_t = vec4<f32>(0.0);
    let a_end = min(a0 + rows, j.m_a);
    for (var ia = a0; ia < a_end; ia = ia + 1u) {
        let ta = taps_at(j, j.basis_a + 8u * ia);
        let wa = weights_at(j, j.basis_a + 8u * ia);
        let t = vec4<f32>(
            control_kept(j, o, m, k, ta.x, tb, wb, kept, kept_t),
            control_kept(j, o, m, k, ta.y, tb, wb, kept, kept_t),
            control_kept(j, o, m, k, ta.z, tb, wb, kept, kept_t),
            control_kept(j, o, m, k, ta.w, tb, wb, kept, kept_t));
        kept = ta;
        kept_t = t;
        let idx = ((o * j.m_a + ia) * j.mid + m) * len + e;
        var qi = 0u;
        if ((j.flags & Q_ON_A) != 0u) {
            qi = ia;
        } else if ((j.flags & Q_ON_B) != 0u) {
            qi = jb;
        } else if ((j.flags & HAS_Q) != 0u) {
            qi = (idx / j.q_stride) % j.q_len;
        }
        store(j, idx, mix4(wa, t.x, t.y, t.z, t.w), qi);
    }
}
