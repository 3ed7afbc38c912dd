//! The interpolation passes of the CPU engine: one axis at a time
//! ([`apply_along_scaled`]), or the two leading channel axes of a kernel in one fused pass
//! ([`apply_two_leading`]), each with the parameter's final scaling fused into its last pass.

use std::mem::MaybeUninit;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::inn::Error;
use crate::inn::basis::Basis;
use crate::inn::layout::checked_elements;

/// Interpolate `input` along dimension `dim` with `basis` (whose control count must equal the
/// dimension's length): `out[.., j, ..] = Σ_k w_jk · in[.., tap_jk, ..]`, summed in tap order.
///
/// # Errors
/// The result would exceed [`MAX_ELEMENTS`](crate::inn::MAX_ELEMENTS).
pub fn apply_along(
    input: ArrayViewD<'_, f32>,
    dim: usize,
    basis: &Basis,
) -> Result<ArrayD<f32>, Error> {
    apply_along_scaled(input, dim, basis, None)
}

/// `dst[i] = w0·r0[i] + w1·r1[i] + w2·r2[i] + w3·r3[i]`, summed left to right (ATen's order),
/// written with iterators so that it vectorizes without bounds checks.
#[inline(always)]
fn combine4(dst: &mut [f32], w: [f32; 4], rows: [&[f32]; 4]) {
    let [r0, r1, r2, r3] = rows;
    for ((((d, a), b), c), e) in dst.iter_mut().zip(r0).zip(r1).zip(r2).zip(r3) {
        *d = w[0] * a + w[1] * b + w[2] * c + w[3] * e;
    }
}

/// The scaling of one output row: quadrature per element or for the whole row, `τ`, area.
#[derive(Clone, Copy)]
pub(super) struct RowScale<'a> {
    pub(super) q_elem: Option<&'a [f32]>,
    pub(super) q_row: Option<f32>,
    pub(super) tau: f32,
    pub(super) area: f32,
}

/// `dst[i] = w[0] * r0[i] + w[1] * r1[i] + w[2] * r2[i] + w[3] * r3[i]`, scaled by `scale`
/// in the reference order `((f * q) * τ) * area`, for every slot of `dst`: the float operations
/// of [`combine4`] and the separate scaling passes, in one write.
///
/// # Panics
/// A source row (or per-element quadrature) shorter than `dst`: every slot must be written.
#[inline(always)]
fn write4(dst: &mut [MaybeUninit<f32>], w: [f32; 4], rows: [&[f32]; 4], scale: RowScale<'_>) {
    let n = dst.len();
    let [r0, r1, r2, r3] = rows.map(|r| &r[..n]);
    let sums = r0
        .iter()
        .zip(r1)
        .zip(r2)
        .zip(r3)
        .map(|(((a, b), c), e)| w[0] * a + w[1] * b + w[2] * c + w[3] * e);
    let RowScale {
        q_elem,
        q_row,
        tau,
        area,
    } = scale;
    // One loop per case, so that each is a straight vectorisable pass.
    match (q_elem, q_row, area == 1.0) {
        (Some(q), _, true) => {
            for ((d, f), q) in dst.iter_mut().zip(sums).zip(&q[..n]) {
                d.write((f * q) * tau);
            }
        }
        (Some(q), _, false) => {
            for ((d, f), q) in dst.iter_mut().zip(sums).zip(&q[..n]) {
                d.write(((f * q) * tau) * area);
            }
        }
        (None, Some(q), true) => {
            for (d, f) in dst.iter_mut().zip(sums) {
                d.write((f * q) * tau);
            }
        }
        (None, Some(q), false) => {
            for (d, f) in dst.iter_mut().zip(sums) {
                d.write(((f * q) * tau) * area);
            }
        }
        (None, None, true) => {
            for (d, f) in dst.iter_mut().zip(sums) {
                d.write(f);
            }
        }
        (None, None, false) => {
            for (d, f) in dst.iter_mut().zip(sums) {
                d.write(f * area);
            }
        }
    }
}

/// Lanes interpolated together by [`gather_lanes`]: one vector of them per tap.
const LANE_GROUP: usize = 8;

/// Interpolate whole lanes of `src` (each `n_in` long) along their length into `dst` (whole
/// lanes of `basis.len()`), scaled as [`write4`] scales: `((f * q) * τ) * area`. Compiled for
/// the baseline and for AVX2 like [`two_leading_block`].
#[multiversion::multiversion(targets("x86_64+avx2"))]
pub(super) fn gather_lanes(
    src: &[f32],
    n_in: usize,
    basis: &Basis,
    scale: RowScale<'_>,
    dst: &mut [f32],
) {
    let RowScale {
        q_elem, tau, area, ..
    } = scale;
    match (q_elem, area == 1.0) {
        (Some(q), true) => gather_lanes_with(src, n_in, basis, dst, |f, j| (f * q[j]) * tau),
        (Some(q), false) => {
            gather_lanes_with(src, n_in, basis, dst, |f, j| ((f * q[j]) * tau) * area);
        }
        (None, true) => gather_lanes_with(src, n_in, basis, dst, |f, _| f),
        (None, false) => gather_lanes_with(src, n_in, basis, dst, |f, _| f * area),
    }
}

/// [`gather_lanes`] with the scaling of output `j` of a lane given by `finish`.
///
/// A lane's taps are scattered along it, so one lane does not fill a vector. Groups of
/// [`LANE_GROUP`] lanes are therefore turned on their side first (value `c` of every lane
/// side by side), interpolated a whole vector at a time, and turned back: two scalar copies
/// per value instead of four scalar loads and seven scalar operations per output, with the
/// same float operations per output in the same order. Lanes left over go one by one.
#[inline(always)]
fn gather_lanes_with(
    src: &[f32],
    n_in: usize,
    basis: &Basis,
    dst: &mut [f32],
    finish: impl Fn(f32, usize) -> f32,
) {
    let n_in = n_in.max(1);
    let n_out = basis.len().max(1);
    let lanes = (src.len() / n_in).min(dst.len() / n_out);
    let groups = lanes / LANE_GROUP;
    let (src_groups, src_rest) = src.split_at(groups * LANE_GROUP * n_in);
    let (dst_groups, dst_rest) = dst.split_at_mut(groups * LANE_GROUP * n_out);
    // Scratch only where there is a group (a bias or norm vector is a single lane).
    let scratch = |n: usize| vec![[0.0_f32; LANE_GROUP]; if groups > 0 { n } else { 0 }];
    let (mut side, mut out) = (scratch(n_in), scratch(n_out));
    for (src, dst) in src_groups
        .chunks_exact(LANE_GROUP * n_in)
        .zip(dst_groups.chunks_exact_mut(LANE_GROUP * n_out))
    {
        for (i, lane) in src.chunks_exact(n_in).enumerate() {
            for (s, &x) in side.iter_mut().zip(lane) {
                s[i] = x;
            }
        }
        for (j, ((o, t), w)) in out
            .iter_mut()
            .zip(&basis.taps)
            .zip(&basis.weights)
            .enumerate()
        {
            let [x0, x1, x2, x3] = [
                &side[t[0] as usize],
                &side[t[1] as usize],
                &side[t[2] as usize],
                &side[t[3] as usize],
            ];
            let mut v = [0.0; LANE_GROUP];
            for i in 0..LANE_GROUP {
                v[i] = finish(w[0] * x0[i] + w[1] * x1[i] + w[2] * x2[i] + w[3] * x3[i], j);
            }
            *o = v;
        }
        for (i, lane) in dst.chunks_exact_mut(n_out).enumerate() {
            for (d, o) in lane.iter_mut().zip(&out) {
                *d = o[i];
            }
        }
    }
    for (lane, dst) in src_rest.chunks(n_in).zip(dst_rest.chunks_mut(n_out)) {
        let sums = basis.taps.iter().zip(&basis.weights).map(|(t, w)| {
            let [x0, x1, x2, x3] = t.map(|k| lane[k as usize]);
            w[0] * x0 + w[1] * x1 + w[2] * x2 + w[3] * x3
        });
        for (j, (d, f)) in dst.iter_mut().zip(sums).enumerate() {
            *d = finish(f, j);
        }
    }
}

/// Scaling applied to each result of the last interpolation pass, in the reference order:
/// `((f * q) * τ) * area` (the quadrature part only with quadrature, the area part only when
/// it is not 1), so fusing it into the pass changes no bit.
#[derive(Clone, Copy, Debug)]
pub struct FinalScale<'a> {
    /// Trapezoid weights, the dimension they run along, and `τ`, with quadrature.
    pub quadrature: Option<(&'a [f32], usize, f32)>,
    /// The spatial area element.
    pub area: f32,
}

/// Where an output row takes its quadrature weight from.
enum QuadSource<'a> {
    None,
    /// One weight per output row, `q[row % q.len()]` (the quadrature axis is the interpolated
    /// one).
    PerRow(&'a [f32]),
    /// One weight per element of a row (the quadrature axis is inside the row).
    PerElement(Vec<f32>),
}

/// [`apply_along`] with the parameter's final scaling fused in; rows run in parallel.
///
/// # Errors
/// The result would exceed [`MAX_ELEMENTS`](crate::inn::MAX_ELEMENTS).
pub fn apply_along_scaled(
    input: ArrayViewD<'_, f32>,
    dim: usize,
    basis: &Basis,
    scale: Option<FinalScale<'_>>,
) -> Result<ArrayD<f32>, Error> {
    use rayon::prelude::*;
    let input = input.as_standard_layout();
    let shape = input.shape().to_vec();
    assert_eq!(
        shape[dim], basis.n_control,
        "basis built for another axis length"
    );
    let outer: usize = shape[..dim].iter().product();
    let inner: usize = shape[dim + 1..].iter().product();
    let n_in = shape[dim];
    let n_out = basis.len();
    let total = checked_elements(&[outer, n_out, inner])?;
    let mut out_shape = shape.clone();
    out_shape[dim] = n_out;
    let (quad, tau) = match scale.and_then(|s| s.quadrature) {
        None => (QuadSource::None, 1.0),
        Some((q, q_dim, tau)) => {
            // Element (o, j, i) has the multi-index whose q_dim component is wanted.
            let stride: usize = out_shape[q_dim + 1..].iter().product();
            let n_q = out_shape[q_dim];
            // The last pass runs along the first continuous dimension and the quadrature
            // dimension is continuous, so q_dim >= dim.
            let source = if q_dim == dim {
                QuadSource::PerRow(q)
            } else {
                QuadSource::PerElement((0..inner).map(|i| q[(i / stride) % n_q]).collect())
            };
            (source, tau)
        }
    };
    let area = scale.map_or(1.0, |s| s.area);
    let src = input.as_slice().expect("standard layout is contiguous");
    let mut out = vec![0.0_f32; total];
    let finish = |r: usize, dst: &mut [f32]| {
        match &quad {
            QuadSource::None => {}
            QuadSource::PerRow(q) => {
                let q = q[r % q.len()];
                dst.iter_mut().for_each(|d| *d = (*d * q) * tau);
            }
            QuadSource::PerElement(q) => {
                dst.iter_mut().zip(q).for_each(|(d, q)| *d = (*d * q) * tau);
            }
        }
        if area != 1.0 {
            dst.iter_mut().for_each(|d| *d *= area);
        }
    };
    if inner == 1 {
        // Interpolating the last axis: one gather per element, scaled in the same pass;
        // parallel over whole lanes. Quadrature runs along this axis (per element of a lane)
        // or along an earlier one, whose weight is then `q[0]` (`inner` is 1).
        let q_lane: Option<Vec<f32>> = match &quad {
            QuadSource::None => None,
            QuadSource::PerRow(q) => Some(q.to_vec()),
            QuadSource::PerElement(q) => Some(vec![q[0]; n_out]),
        };
        let scale = RowScale {
            q_elem: q_lane.as_deref(),
            q_row: None,
            tau,
            area,
        };
        // Whole groups of lanes per task (see `gather_lanes_with`).
        let lanes_per_task = (16_384 / n_out.max(1)).max(1).next_multiple_of(LANE_GROUP);
        out.par_chunks_mut(n_out.max(1) * lanes_per_task)
            .enumerate()
            .for_each(|(c, chunk)| {
                let lanes = &src[c * lanes_per_task * n_in..];
                gather_lanes(lanes, n_in, basis, scale, chunk);
            });
    } else {
        let min_rows = (16_384 / inner).max(1);
        out.par_chunks_mut(inner)
            .with_min_len(min_rows)
            .enumerate()
            .for_each(|(r, dst)| {
                let (o, j) = (r / n_out, r % n_out);
                let src_o = &src[o * n_in * inner..(o + 1) * n_in * inner];
                let (t, w) = (basis.taps[j], basis.weights[j]);
                let row = |k: usize| &src_o[t[k] as usize * inner..(t[k] as usize + 1) * inner];
                combine4(dst, w, [row(0), row(1), row(2), row(3)]);
                finish(r, dst);
            });
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&out_shape), out).expect("length matches shape"))
}

/// A T row of a parameter whose planes hold `P` values: `out[j] = Σ_k w_jk · lam[tap_jk]` per
/// plane, the float operations of [`combine4`] in its order.
#[inline(always)]
fn t_row_fixed<const P: usize>(lam: &[f32], basis: &Basis, out: &mut [f32]) {
    let (lam, _) = lam.as_chunks::<P>();
    let (out, _) = out.as_chunks_mut::<P>();
    for (o, (t, w)) in out.iter_mut().zip(basis.taps.iter().zip(&basis.weights)) {
        let [x0, x1, x2, x3] = t.map(|k| &lam[k as usize]);
        *o = std::array::from_fn(|p| w[0] * x0[p] + w[1] * x1[p] + w[2] * x2[p] + w[3] * x3[p]);
    }
}

/// Everything one block of output rows of [`apply_two_leading`] needs.
struct TwoLeading<'a> {
    /// λ, standard layout.
    src: &'a [f32],
    basis_a: &'a Basis,
    basis_b: &'a Basis,
    /// Control rows along dim 1.
    n_b: usize,
    /// Values per plane (the product of the trailing dimensions).
    planes: usize,
    /// Length of one output row (`m_b * planes`).
    row_len: usize,
    q_elem: Option<&'a [f32]>,
    q_row: Option<&'a [f32]>,
    tau: f32,
    area: f32,
}

impl TwoLeading<'_> {
    /// One T row: λ[r] interpolated along dim 1.
    #[inline(always)]
    fn t_row(&self, r: usize, buf: &mut Vec<f32>) {
        let (planes, row_len) = (self.planes, self.row_len);
        // Every entry is overwritten below, so a reused buffer is not cleared first.
        buf.resize(row_len, 0.0);
        let lam = &self.src[r * self.n_b * planes..(r + 1) * self.n_b * planes];
        // Square kernels of the common sizes with the plane length known at compile time: each
        // entry is a few whole-vector operations instead of a short loop. (One value per plane
        // does not come here: `discretize_with` takes two passes for it.)
        match planes {
            9 => return t_row_fixed::<9>(lam, self.basis_b, buf),
            25 => return t_row_fixed::<25>(lam, self.basis_b, buf),
            49 => return t_row_fixed::<49>(lam, self.basis_b, buf),
            _ => {}
        }
        let basis = self.basis_b;
        for (j, (t, w)) in basis.taps.iter().zip(&basis.weights).enumerate() {
            let x = |k: usize| &lam[t[k] as usize * planes..(t[k] as usize + 1) * planes];
            let (x0, x1, x2, x3) = (x(0), x(1), x(2), x(3));
            combine4(&mut buf[j * planes..(j + 1) * planes], *w, [x0, x1, x2, x3]);
        }
    }
}

/// Output rows `first..` of [`apply_two_leading`] into `chunk` (whole rows), keeping a few
/// recently computed T rows. Compiled for the baseline and, where the CPU has it, for AVX2
/// (chosen at run time): the same float operations in the same order on wider registers, so
/// the results are bit-identical on both.
#[multiversion::multiversion(targets("x86_64+avx2"))]
fn two_leading_block(job: &TwoLeading<'_>, first: usize, chunk: &mut [MaybeUninit<f32>]) {
    // A few recently computed T rows, keyed by control row.
    let mut cache: Vec<(u32, Vec<f32>)> = Vec::with_capacity(8);
    let mut next_slot = 0;
    for (k, dst) in chunk.chunks_mut(job.row_len).enumerate() {
        let a = first + k;
        let (t, w) = (job.basis_a.taps[a], job.basis_a.weights[a]);
        let mut idx = [0_usize; 4];
        for k4 in 0..4 {
            let tap = t[k4];
            idx[k4] = if let Some(pos) = cache.iter().position(|(r, _)| *r == tap) {
                pos
            } else if cache.len() < 8 {
                let mut buf = Vec::new();
                job.t_row(tap as usize, &mut buf);
                cache.push((tap, buf));
                cache.len() - 1
            } else {
                // Evict round-robin, never a row this output row already uses.
                while idx[..k4].contains(&next_slot) {
                    next_slot = (next_slot + 1) % 8;
                }
                let mut buf = std::mem::take(&mut cache[next_slot].1);
                job.t_row(tap as usize, &mut buf);
                cache[next_slot] = (tap, buf);
                let used = next_slot;
                next_slot = (next_slot + 1) % 8;
                used
            };
        }
        let rows = idx.map(|i| cache[i].1.as_slice());
        let scale = RowScale {
            q_elem: job.q_elem,
            q_row: job.q_row.map(|q| q[a]),
            tau: job.tau,
            area: job.area,
        };
        write4(dst, w, rows, scale);
    }
}

/// Both channel axes of a `(N_a, N_b, P...)` parameter in one pass: the result of
/// interpolating along dim 1 (T rows) is kept per output row in a small cache instead of being
/// written out, so λ is read and the output written once. Every float operation is the one
/// [`apply_along_scaled`] does along dim 1 then dim 0, so results are bit-identical.
pub(super) fn apply_two_leading(
    lambda: ArrayViewD<'_, f32>,
    basis_a: &Basis,
    basis_b: &Basis,
    scale: FinalScale<'_>,
) -> Result<ArrayD<f32>, Error> {
    use rayon::prelude::*;
    let lambda = lambda.as_standard_layout();
    let shape = lambda.shape().to_vec();
    let planes: usize = shape[2..].iter().product();
    let (m_a, m_b) = (basis_a.len(), basis_b.len());
    let row_len = m_b * planes;
    let mut out_shape = shape.clone();
    out_shape[0] = m_a;
    out_shape[1] = m_b;
    let total = checked_elements(&out_shape)?;
    // Quadrature along dim 1 is per element of an output row; along dim 0 per row.
    let (q_elem, q_row, tau): (Option<Vec<f32>>, Option<&[f32]>, f32) = match scale.quadrature {
        Some((q, 1, tau)) => (
            Some((0..row_len).map(|i| q[i / planes]).collect()),
            None,
            tau,
        ),
        Some((q, 0, tau)) => (None, Some(q), tau),
        Some((q, d, tau)) => {
            let stride: usize = out_shape[d + 1..].iter().product();
            let n_q = out_shape[d];
            (
                Some((0..row_len).map(|i| q[(i / stride) % n_q]).collect()),
                None,
                tau,
            )
        }
        None => (None, None, 1.0),
    };
    let job = TwoLeading {
        src: lambda.as_slice().expect("standard layout is contiguous"),
        basis_a,
        basis_b,
        n_b: shape[1],
        planes,
        row_len,
        q_elem: q_elem.as_deref(),
        q_row,
        tau,
        area: scale.area,
    };
    // Every element is written exactly once below, so the output is not zeroed first (that was
    // a second pass over the largest buffer of the call).
    let mut out: Vec<f32> = Vec::with_capacity(total);
    let threads = rayon::current_num_threads().max(1);
    let block = m_a.div_ceil(threads * 4).max(1);
    out.spare_capacity_mut()[..total]
        .par_chunks_mut(block * row_len)
        .enumerate()
        .for_each(|(blk, chunk)| two_leading_block(&job, blk * block, chunk));
    #[expect(unsafe_code, reason = "skips zeroing the largest buffer of the call")]
    // SAFETY: the chunks above partition `out`'s first `total` slots, and `write4` writes every
    // slot of its destination (it checks that the sources are as long), so all `total`
    // elements are initialised.
    unsafe {
        out.set_len(total);
    }
    Ok(ArrayD::from_shape_vec(IxDyn(&out_shape), out).expect("length matches shape"))
}
