//! Discretization: turning a continuous parameter (control values λ) into a discrete tensor.
//!
//! A parameter's λ has one axis per tensor dimension. Discrete axes hold the tensor's own
//! entries; continuous axes hold control values that are interpolated at a partition (channel
//! axes) or at the tap positions of the current resolution (spatial axes), in
//! [`ParamLayout::interpolation_order`]; then [`ParamLayout::scaling`]:
//! `W = ((F * q) * τ) * (R0 / R)²`.

use std::mem::MaybeUninit;

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde::{Deserialize, Serialize};

use super::basis::Basis;
use super::group::GroupId;
use super::plan::Resolved;
use super::quadrature::{Quadrature, trapezoid};
use super::spatial::{tap_count, tap_positions};
use super::{Error, MAX_ELEMENTS};

/// What one dimension of a parameter is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AxisKind {
    /// An ordinary discrete axis: λ holds the entries themselves.
    Discrete,
    /// A continuous channel axis sampled at its group's partition.
    Channel {
        /// The group whose partition samples this axis.
        group: GroupId,
    },
    /// A continuous kernel-height axis sampled at the current vertical resolution.
    SpatialH,
    /// A continuous kernel-width axis sampled at the current horizontal resolution.
    SpatialW,
}

impl AxisKind {
    /// Whether λ is interpolated along this axis.
    #[must_use]
    pub fn is_continuous(self) -> bool {
        !matches!(self, Self::Discrete)
    }
}

/// Shape and continuity of one parameter.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamLayout {
    /// Discrete shape at full size and native resolution (e.g. `[C_out, C_in, kh, kw]`).
    pub shape: Vec<usize>,
    /// One entry per dimension.
    pub axes: Vec<AxisKind>,
    /// Trapezoid quadrature, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quadrature: Option<Quadrature>,
}

impl ParamLayout {
    /// A plain discrete parameter of `shape`.
    #[must_use]
    pub fn discrete(shape: Vec<usize>) -> Self {
        let axes = vec![AxisKind::Discrete; shape.len()];
        Self {
            shape,
            axes,
            quadrature: None,
        }
    }

    /// Whether any axis is continuous.
    #[must_use]
    pub fn is_continuous(&self) -> bool {
        self.axes.iter().any(|a| a.is_continuous())
    }

    /// Whether the spatial axes are continuous (the parameter follows the input resolution).
    #[must_use]
    pub fn is_spatially_continuous(&self) -> bool {
        self.axes
            .iter()
            .any(|a| matches!(a, AxisKind::SpatialH | AxisKind::SpatialW))
    }

    /// The discrete shape under a resolved plan.
    ///
    /// # Errors
    /// A channel axis whose group the plan does not have.
    pub fn discrete_shape(&self, plan: &Resolved) -> Result<Vec<usize>, Error> {
        self.axes
            .iter()
            .zip(&self.shape)
            .map(|(axis, &n)| match axis {
                AxisKind::Discrete => Ok(n),
                AxisKind::Channel { group } => plan
                    .partitions
                    .get(group)
                    .map(Vec::len)
                    .ok_or(Error::MissingPartition { group: *group }),
                AxisKind::SpatialH => Ok(tap_count(n, plan.scale[0])),
                AxisKind::SpatialW => Ok(tap_count(n, plan.scale[1])),
            })
            .collect()
    }

    /// The points at which axis `dim` is sampled under `plan` (`None` for discrete axes).
    ///
    /// # Errors
    /// A channel axis whose group the plan does not have.
    pub fn axis_points(&self, dim: usize, plan: &Resolved) -> Result<Option<Vec<f32>>, Error> {
        Ok(match self.axes[dim] {
            AxisKind::Discrete => None,
            AxisKind::Channel { group } => Some(
                plan.partitions
                    .get(&group)
                    .ok_or(Error::MissingPartition { group })?
                    .clone(),
            ),
            AxisKind::SpatialH => Some(tap_positions(self.shape[dim], plan.scale[0])),
            AxisKind::SpatialW => Some(tap_positions(self.shape[dim], plan.scale[1])),
        })
    }

    /// Whether this parameter discretizes to the same values under plans `a` and `b`: each
    /// continuous axis is sampled at the same points (its group's partition, or the same
    /// resolution scale). Quadrature and the area element follow from those points.
    #[must_use]
    pub fn samples_alike(&self, a: &Resolved, b: &Resolved) -> bool {
        self.axes.iter().all(|axis| match axis {
            AxisKind::Discrete => true,
            AxisKind::Channel { group } => a.partitions.get(group) == b.partitions.get(group),
            AxisKind::SpatialH => a.scale[0].to_bits() == b.scale[0].to_bits(),
            AxisKind::SpatialW => a.scale[1].to_bits() == b.scale[1].to_bits(),
        })
    }

    /// The continuous dimensions in the order every engine interpolates them: the last one
    /// first (for a 2-D continuous weight PyTorch's order, input channels, the
    /// `grid_sample` width, before output channels). The CPU engine, the GPU's jobs and
    /// training all take it from here.
    #[must_use]
    pub fn interpolation_order(&self) -> Vec<usize> {
        (0..self.axes.len())
            .rev()
            .filter(|&d| self.axes[d].is_continuous())
            .collect()
    }

    /// What the last interpolation pass multiplies by under `plan`, `W = ((F · q) · τ) ·
    /// area`: the one place the engines and training read it from.
    ///
    /// # Errors
    /// A quadrature axis with fewer than two points, or that is not continuous.
    pub fn scaling(&self, plan: &Resolved) -> Result<Scaling, Error> {
        let quadrature = self.quadrature_weights(plan)?.zip(self.quadrature);
        Ok(Scaling {
            quadrature,
            area: self.area_factor(plan),
        })
    }

    /// The spatial area factor `(R0 / R)²` (1 for parameters without continuous spatial axes).
    #[must_use]
    pub fn area_factor(&self, plan: &Resolved) -> f32 {
        self.axes.iter().fold(1.0, |acc, a| match a {
            AxisKind::SpatialH => acc * (1.0 / plan.scale[0]),
            AxisKind::SpatialW => acc * (1.0 / plan.scale[1]),
            _ => acc,
        })
    }

    /// The quadrature weights `q` (before `τ`) under `plan`, if this parameter has quadrature.
    ///
    /// # Errors
    /// A quadrature axis with fewer than two points, or that is not continuous.
    pub fn quadrature_weights(&self, plan: &Resolved) -> Result<Option<Vec<f32>>, Error> {
        let Some(quad) = self.quadrature else {
            return Ok(None);
        };
        let points = self.axis_points(quad.dim, plan)?.ok_or_else(|| {
            Error::Quadrature(format!("dimension {} is not continuous", quad.dim))
        })?;
        trapezoid(&points).map(Some).map_err(Error::Quadrature)
    }
}

/// Interpolate `input` along dimension `dim` with `basis` (whose control count must equal the
/// dimension's length): `out[.., j, ..] = Σ_k w_jk · in[.., tap_jk, ..]`, summed in tap order.
///
/// # Errors
/// The result would exceed [`MAX_ELEMENTS`].
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
struct RowScale<'a> {
    q_elem: Option<&'a [f32]>,
    q_row: Option<f32>,
    tau: f32,
    area: f32,
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
fn gather_lanes(src: &[f32], n_in: usize, basis: &Basis, scale: RowScale<'_>, dst: &mut [f32]) {
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

/// The factors of a parameter's discrete values after interpolation: each value is
/// `((f · q) · τ) · area`, in that order (TorchIntegral's), where `q` is the trapezoid weight
/// of its point along the quadrature axis. See [`ParamLayout::scaling`].
#[derive(Clone, Debug, PartialEq)]
pub struct Scaling {
    /// The trapezoid weights `q` and the quadrature (its axis and `τ`), with quadrature.
    pub quadrature: Option<(Vec<f32>, Quadrature)>,
    /// The spatial area element `(R0 / R)²`.
    pub area: f32,
}

impl Scaling {
    /// The borrowed form the CPU's interpolation passes fuse into their last pass.
    #[must_use]
    pub fn fused(&self) -> FinalScale<'_> {
        FinalScale {
            quadrature: self
                .quadrature
                .as_ref()
                .map(|(q, spec)| (q.as_slice(), spec.dim, spec.tau)),
            area: self.area,
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
/// The result would exceed [`MAX_ELEMENTS`].
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
fn apply_two_leading(
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

/// Product of `dims`, refused past [`MAX_ELEMENTS`].
///
/// # Errors
/// The product overflows or exceeds [`MAX_ELEMENTS`].
pub fn checked_elements(dims: &[usize]) -> Result<usize, Error> {
    dims.iter()
        .try_fold(1_usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| Error::TooLarge {
            shape: dims.to_vec(),
            max: MAX_ELEMENTS,
        })
}

/// Interpolation bases of one plan, one per (continuous axis, its native length, control
/// count) — what decides the points and the basis: the parameters
/// of a model share a handful (every parameter touching a group samples its partition), so a
/// model is discretized with each computed once instead of once per parameter and axis.
#[derive(Debug, Default)]
pub struct BasisCache {
    bases: std::collections::HashMap<(AxisKind, usize, usize), Basis>,
}

impl BasisCache {
    /// The bases every continuous axis of `params` (layout and λ shape) needs under `plan`.
    ///
    /// # Errors
    /// A channel axis whose group the plan does not have.
    pub fn new<'a>(
        params: impl IntoIterator<Item = (&'a ParamLayout, &'a [usize])>,
        plan: &Resolved,
    ) -> Result<Self, Error> {
        let mut bases = std::collections::HashMap::new();
        for (layout, shape) in params {
            // A parameter that does not fit its layout gets its error from `discretize`.
            if check_lambda_shape(shape, layout).is_err() {
                continue;
            }
            for (dim, (&axis, &n)) in layout.axes.iter().zip(shape).enumerate() {
                let key = (axis, layout.shape[dim], n);
                if axis.is_continuous() && !bases.contains_key(&key) {
                    let points = layout.axis_points(dim, plan)?.unwrap_or_default();
                    bases.insert(key, Basis::new(&points, n));
                }
            }
        }
        Ok(Self { bases })
    }
}

impl BasisCache {
    /// The basis of axis `dim` of `layout` against `n_control` values under `plan` (the plan
    /// the cache was made for): the cached one, else computed.
    ///
    /// # Errors
    /// A channel axis whose group the plan does not have.
    pub fn basis(
        &self,
        layout: &ParamLayout,
        dim: usize,
        n_control: usize,
        plan: &Resolved,
    ) -> Result<std::borrow::Cow<'_, Basis>, Error> {
        basis_of(layout, dim, n_control, plan, Some(self))
    }
}

/// The basis of axis `dim` of `layout` against `n_control` values: from `cache` when it has
/// it, else computed.
fn basis_of<'c>(
    layout: &ParamLayout,
    dim: usize,
    n_control: usize,
    plan: &Resolved,
    cache: Option<&'c BasisCache>,
) -> Result<std::borrow::Cow<'c, Basis>, Error> {
    let key = (layout.axes[dim], layout.shape[dim], n_control);
    if let Some(b) = cache.and_then(|c| c.bases.get(&key)) {
        return Ok(std::borrow::Cow::Borrowed(b));
    }
    let points = layout.axis_points(dim, plan)?.unwrap_or_default();
    Ok(std::borrow::Cow::Owned(Basis::new(&points, n_control)))
}

/// Discretize one parameter: interpolate λ along every continuous axis under `plan`, then apply
/// quadrature, `τ` and the area element.
///
/// # Errors
/// λ's shape disagrees with the layout, a group is missing from the plan, the quadrature axis
/// has fewer than two points, or the result would be too large.
pub fn discretize(
    lambda: ArrayViewD<'_, f32>,
    layout: &ParamLayout,
    plan: &Resolved,
) -> Result<ArrayD<f32>, Error> {
    discretize_with(lambda, layout, plan, None)
}

/// [`discretize`] taking the bases from `cache` where it has them (it must belong to `plan`).
///
/// # Errors
/// As [`discretize`].
pub fn discretize_with(
    lambda: ArrayViewD<'_, f32>,
    layout: &ParamLayout,
    plan: &Resolved,
    cache: Option<&BasisCache>,
) -> Result<ArrayD<f32>, Error> {
    check_lambda_shape(lambda.shape(), layout)?;
    checked_elements(&layout.discrete_shape(plan)?)?;
    let scaling = layout.scaling(plan)?;
    interpolate(lambda, layout, plan, cache, scaling.fused())
}

/// The continuous function itself at `plan`'s points: λ interpolated along every continuous
/// axis, without the quadrature weights, `τ` or the spatial area element that [`discretize`]
/// applies. At a continuous spatial axis this is the kernel's value at each tap position,
/// whatever the resolution (where [`discretize`] also scales by `(R0 / R)²`).
///
/// # Errors
/// As [`discretize`].
pub fn sample_function(
    lambda: ArrayViewD<'_, f32>,
    layout: &ParamLayout,
    plan: &Resolved,
) -> Result<ArrayD<f32>, Error> {
    check_lambda_shape(lambda.shape(), layout)?;
    checked_elements(&layout.discrete_shape(plan)?)?;
    let scale = FinalScale {
        quadrature: None,
        area: 1.0,
    };
    interpolate(lambda, layout, plan, None, scale)
}

/// λ interpolated along every continuous axis under `plan`, `scale` applied by the last pass.
fn interpolate(
    lambda: ArrayViewD<'_, f32>,
    layout: &ParamLayout,
    plan: &Resolved,
    cache: Option<&BasisCache>,
    scale: FinalScale<'_>,
) -> Result<ArrayD<f32>, Error> {
    let dims = layout.interpolation_order();
    let planes: usize = lambda.shape().iter().skip(2).product();
    if dims == [1, 0] && lambda.ndim() >= 2 && planes > 1 {
        // The common case (conv weights continuous in both channel axes). With one value per
        // plane (1×1 convolutions, linear layers) the two passes below are faster: the first
        // interpolates groups of whole lanes at a time, and what it writes out is small.
        let basis_a = basis_of(layout, 0, lambda.shape()[0], plan, cache)?;
        let basis_b = basis_of(layout, 1, lambda.shape()[1], plan, cache)?;
        return apply_two_leading(lambda, &basis_a, &basis_b, scale);
    }
    let mut current: Option<ArrayD<f32>> = None;
    for (step, &dim) in dims.iter().enumerate() {
        let basis = basis_of(layout, dim, lambda.shape()[dim], plan, cache)?;
        let last = (step + 1 == dims.len()).then_some(scale);
        let view = current.as_ref().map_or_else(|| lambda.view(), |a| a.view());
        current = Some(apply_along_scaled(view, dim, &basis, last)?);
    }
    Ok(current.unwrap_or_else(|| lambda.to_owned()))
}

/// Check that λ's shape fits the layout: same rank, discrete axes of the layout's size,
/// continuous axes with at least one control value.
///
/// # Errors
/// Any disagreement, described.
pub fn check_lambda_shape(lambda: &[usize], layout: &ParamLayout) -> Result<(), Error> {
    let bad = |detail: String| Error::Shape {
        detail: format!(
            "{detail} (control values {lambda:?}, layout {:?})",
            layout.shape
        ),
    };
    if lambda.len() != layout.shape.len() || layout.axes.len() != layout.shape.len() {
        return Err(bad("rank differs".into()));
    }
    for (d, (axis, (&n, &full))) in layout
        .axes
        .iter()
        .zip(lambda.iter().zip(&layout.shape))
        .enumerate()
    {
        match axis {
            AxisKind::Discrete if n != full => {
                return Err(bad(format!(
                    "discrete dimension {d} has {n} entries, expected {full}"
                )));
            }
            AxisKind::SpatialH | AxisKind::SpatialW if full < 3 || full % 2 == 0 => {
                return Err(bad(format!(
                    "continuous spatial dimension {d} needs an odd native kernel size >= 3, got {full}"
                )));
            }
            _ if n == 0 => return Err(bad(format!("dimension {d} is empty"))),
            _ => {}
        }
    }
    if let Some(q) = layout.quadrature {
        if !layout.axes.get(q.dim).is_some_and(|a| a.is_continuous()) {
            return Err(bad(format!(
                "quadrature dimension {} is not continuous",
                q.dim
            )));
        }
        if !q.tau.is_finite() {
            return Err(bad("quadrature tau is not finite".into()));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inn::partition::linspace;
    use ndarray::{Array, ArrayD};
    use std::collections::BTreeMap;

    fn resolved(parts: &[(GroupId, Vec<f32>)], scale: f32) -> Resolved {
        Resolved {
            partitions: parts.iter().cloned().collect::<BTreeMap<_, _>>(),
            resolution: [28, 28],
            scale: [scale, scale],
        }
    }

    /// An independent path: a direct double loop over the 2-D tensor product in f64. Covered:
    /// kernels with several taps per channel pair, with one (1x1 kernels, fully connected
    /// layers), and a layer continuous in its input axis only (a classifier).
    #[test]
    fn two_axes_match_a_direct_tensor_product() {
        // 13 rows: one group of 8 lanes and 5 left over where lanes are interpolated.
        let (na, nb) = (13, 5);
        let pa = vec![-0.9_f32, -0.2, 0.4, 1.0];
        let pb = vec![-1.0_f32, -0.1, 0.3];
        let keys = |s: f64| -> f64 {
            let a = -0.75;
            let s = s.abs();
            if s <= 1.0 {
                (a + 2.0) * s.powi(3) - (a + 3.0) * s * s + 1.0
            } else if s < 2.0 {
                a * s.powi(3) - 5.0 * a * s * s + 8.0 * a * s - 4.0 * a
            } else {
                0.0
            }
        };
        let interp = |x: f32, n: usize| -> Vec<(usize, f64)> {
            let u = (f64::from(x) + 1.0) * (n as f64 - 1.0) / 2.0;
            let i0 = u.floor();
            (-1..=2)
                .map(|j| {
                    let idx = (i0 as i64 + j).clamp(0, n as i64 - 1) as usize;
                    (idx, keys(u - (i0 + j as f64)))
                })
                .collect()
        };
        let q = [0.45, 0.65, 0.2]; // (x1-x0)/2, (x2-x0)/2, (x2-x1)/2 by hand
        for (taps, first_continuous) in [(2, true), (1, true), (1, false)] {
            let lambda: ArrayD<f32> = Array::from_shape_fn((na, nb, taps), |(a, b, p)| {
                ((a * 7 + b * 3 + p) as f32 * 0.37).sin()
            })
            .into_dyn();
            let lambda = if taps == 1 {
                lambda
                    .into_shape_with_order(IxDyn(&[na, nb]))
                    .expect("rank 2")
            } else {
                lambda
            };
            let mut axes = vec![
                if first_continuous {
                    AxisKind::Channel { group: 0 }
                } else {
                    AxisKind::Discrete
                },
                AxisKind::Channel { group: 1 },
            ];
            if taps > 1 {
                axes.push(AxisKind::Discrete);
            }
            let layout = ParamLayout {
                shape: lambda.shape().to_vec(),
                axes,
                quadrature: Some(Quadrature { dim: 1, tau: 2.0 }),
            };
            let plan = resolved(&[(0, pa.clone()), (1, pb.clone())], 1.0);
            let out = discretize(lambda.view(), &layout, &plan).expect("valid");
            let m_a = if first_continuous { pa.len() } else { na };
            assert_eq!(out.shape()[..2], [m_a, 3]);
            let row_taps: Vec<Vec<(usize, f64)>> = if first_continuous {
                pa.iter().map(|&x| interp(x, na)).collect()
            } else {
                (0..na).map(|i| vec![(i, 1.0)]).collect()
            };
            assert_eq!(row_taps.len(), m_a);
            for (ia, rows) in row_taps.iter().enumerate() {
                for (ib, &xb) in pb.iter().enumerate() {
                    for p in 0..taps {
                        let mut v = 0.0;
                        for &(ta, wa) in rows {
                            for (tb, wb) in interp(xb, nb) {
                                let at: Vec<usize> =
                                    [ta, tb, p].into_iter().take(lambda.ndim()).collect();
                                v += wa * wb * f64::from(lambda[at.as_slice()]);
                            }
                        }
                        let want = v * q[ib] * 2.0;
                        let at: Vec<usize> = [ia, ib, p].into_iter().take(out.ndim()).collect();
                        let got = f64::from(out[at.as_slice()]);
                        assert!(
                            (got - want).abs() < 1e-5,
                            "taps {taps}, [{ia},{ib},{p}] {got} vs {want}"
                        );
                    }
                }
            }
        }
    }

    /// The fused two-axis pass does the float operations of two separate passes (dim 1, then
    /// dim 0 with the scaling), in the same order: the results agree to the bit.
    #[test]
    fn the_fused_two_axis_pass_is_bit_identical_to_two_passes() {
        for (taps, q_dim, area) in [
            (9, 1, 1.0),
            (1, 1, 1.0),
            (4, 0, 0.7),
            (9, 2, 1.3),
            (25, 1, 1.0),
            (49, 0, 1.0),
        ] {
            let (na, nb) = (13, 11);
            let shape: Vec<usize> = [na, nb]
                .into_iter()
                .chain([taps].into_iter().filter(|&t| t > 1))
                .collect();
            let lambda = ArrayD::from_shape_fn(IxDyn(&shape), |i| {
                ((i[0] * 31 + i[1] * 7 + if shape.len() > 2 { i[2] } else { 0 }) as f32 * 0.173)
                    .sin()
            });
            let q_dim = q_dim.min(shape.len() - 1);
            let pa: Vec<f32> = (0..9)
                .map(|i| -1.0 + 2.0 * (i as f32 / 8.0).powf(1.3))
                .collect();
            let pb: Vec<f32> = (0..17).map(|i| -1.0 + i as f32 / 8.0).collect();
            let q: Vec<f32> = (0..[pa.len(), pb.len(), taps][q_dim])
                .map(|i| 0.5 + i as f32 * 0.01)
                .collect();
            let scale = FinalScale {
                quadrature: Some((&q, q_dim, 3.5)),
                area,
            };
            let (ba, bb) = (Basis::new(&pa, na), Basis::new(&pb, nb));
            let fused = apply_two_leading(lambda.view(), &ba, &bb, scale).expect("fused");
            let along_b = apply_along_scaled(lambda.view(), 1, &bb, None).expect("dim 1");
            let two = apply_along_scaled(along_b.view(), 0, &ba, Some(scale)).expect("dim 0");
            assert_eq!(fused.shape(), two.shape());
            let bits = |a: &ArrayD<f32>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(
                bits(&fused),
                bits(&two),
                "taps {taps}, q_dim {q_dim}, area {area}"
            );
        }
    }

    /// Lanes interpolated in groups (turned on their side) get, to the bit, what the
    /// written-out formula gives, and what each lane gets alone (the one-by-one path).
    #[test]
    fn lanes_in_groups_match_the_formula_and_lanes_alone() {
        let (lanes, n_in) = (19, 11); // two groups of 8 and 3 left over
        let src: Vec<f32> = (0..lanes * n_in).map(|i| (i as f32 * 0.37).sin()).collect();
        let points: Vec<f32> = (0..7)
            .map(|i| -1.0 + 2.0 * (i as f32 / 6.0).powf(1.2))
            .collect();
        let basis = Basis::new(&points, n_in);
        let q: Vec<f32> = (0..points.len()).map(|j| 0.3 + j as f32 * 0.05).collect();
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        for (q_elem, area) in [
            (None, 1.0),
            (Some(q.as_slice()), 1.0),
            (Some(q.as_slice()), 0.6),
            (None, 0.6),
        ] {
            let scale = RowScale {
                q_elem,
                q_row: None,
                tau: 1.7,
                area,
            };
            let mut together = vec![0.0; lanes * points.len()];
            gather_lanes(&src, n_in, &basis, scale, &mut together);
            let mut alone = Vec::new();
            let mut formula = Vec::new();
            for lane in src.chunks(n_in) {
                let mut d = vec![0.0; points.len()];
                gather_lanes(lane, n_in, &basis, scale, &mut d);
                alone.extend(d);
                for (j, (t, w)) in basis.taps.iter().zip(&basis.weights).enumerate() {
                    let x = t.map(|k| lane[k as usize]);
                    let f = w[0] * x[0] + w[1] * x[1] + w[2] * x[2] + w[3] * x[3];
                    let f = q_elem.map_or(f, |q| (f * q[j]) * 1.7);
                    formula.push(if area == 1.0 { f } else { f * area });
                }
            }
            assert_eq!(bits(&together), bits(&formula), "q {q_elem:?}, area {area}");
            assert_eq!(bits(&together), bits(&alone), "q {q_elem:?}, area {area}");
        }
    }

    #[test]
    fn native_spatial_kernel_equals_its_control_values() {
        let lambda: ArrayD<f32> = Array::from_shape_fn((2, 3, 5, 5), |(a, b, h, w)| {
            (a + 2 * b + 3 * h + 5 * w) as f32
        })
        .into_dyn();
        let layout = ParamLayout {
            shape: vec![2, 3, 5, 5],
            axes: vec![
                AxisKind::Channel { group: 0 },
                AxisKind::Discrete,
                AxisKind::SpatialH,
                AxisKind::SpatialW,
            ],
            quadrature: None,
        };
        let plan = resolved(&[(0, linspace(2))], 1.0);
        let out = discretize(lambda.view(), &layout, &plan).expect("valid");
        assert_eq!(out, lambda);
        // At twice the resolution a spatially constant kernel stays constant at the 9x9 new
        // taps (the weights sum to one) and is scaled by the area element (1/2)^2; the old
        // taps reappear at every other new tap.
        let constant = lambda
            .mapv(|v| (v as i32 % 7) as f32)
            .map_axis(ndarray::Axis(3), |l| l[0]);
        let constant =
            ndarray::Array::from_shape_fn((2, 3, 5, 5), |(a, b, _, _)| constant[[a, b, 0]])
                .into_dyn();
        let plan2 = resolved(&[(0, linspace(2))], 2.0);
        let out2 = discretize(constant.view(), &layout, &plan2).expect("valid");
        assert_eq!(out2.shape(), &[2, 3, 9, 9]);
        for h in 0..9 {
            for w in 0..9 {
                let want = constant[[1, 2, 0, 0]] / 4.0;
                assert!((out2[[1, 2, h, w]] - want).abs() < 1e-5);
            }
        }
        let out_lin = discretize(lambda.view(), &layout, &plan2).expect("valid");
        for h in 0..5 {
            for w in 0..5 {
                assert!((out_lin[[1, 0, 2 * h, 2 * w]] - lambda[[1, 0, h, w]] / 4.0).abs() < 1e-5);
            }
        }
    }

    /// Bases shared through a cache: parameters sampling the same group, and spatial axes that
    /// share a control count but not a native kernel size (their taps differ at 1.4x), get
    /// exactly what each computes alone.
    #[test]
    fn cached_bases_change_nothing() {
        let spatial = |native: usize| ParamLayout {
            shape: vec![4, 2, native, native],
            axes: vec![
                AxisKind::Channel { group: 0 },
                AxisKind::Discrete,
                AxisKind::SpatialH,
                AxisKind::SpatialW,
            ],
            quadrature: None,
        };
        let (a, b) = (spatial(5), spatial(3));
        let lambda: ArrayD<f32> = Array::from_shape_fn((4, 2, 5, 5), |(o, i, h, w)| {
            ((o * 7 + i * 3 + h * 5 + w) % 11) as f32 - 5.0
        })
        .into_dyn();
        let plan = resolved(&[(0, vec![-1.0, -0.4, 0.3, 0.9, 1.0])], 1.4);
        let cache =
            BasisCache::new([(&a, lambda.shape()), (&b, lambda.shape())], &plan).expect("bases");
        for layout in [&a, &b] {
            let alone = discretize(lambda.view(), layout, &plan).expect("valid");
            let shared =
                discretize_with(lambda.view(), layout, &plan, Some(&cache)).expect("valid");
            assert_eq!(alone, shared);
        }
        // The two spatial layouts do sample differently, so a shared key would have shown.
        assert_ne!(
            discretize(lambda.view(), &a, &plan).expect("valid").shape(),
            discretize(lambda.view(), &b, &plan).expect("valid").shape()
        );
    }

    #[test]
    fn wrong_shapes_and_huge_results_are_errors() {
        let lambda = ArrayD::<f32>::zeros(IxDyn(&[3, 4]));
        let layout = ParamLayout::discrete(vec![3, 5]);
        assert!(matches!(
            discretize(lambda.view(), &layout, &resolved(&[], 1.0)),
            Err(Error::Shape { .. })
        ));
        assert!(checked_elements(&[1 << 20, 1 << 20]).is_err());
        assert!(checked_elements(&[usize::MAX, 2]).is_err());
    }
}
