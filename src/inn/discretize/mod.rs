//! Discretization: turning a continuous parameter (control values λ) into a discrete tensor.
//!
//! A parameter's λ has one axis per tensor dimension. Discrete axes hold the tensor's own
//! entries; continuous axes hold control values that are interpolated at a partition (channel
//! axes) or at the tap positions of the current resolution (spatial axes), in
//! [`ParamLayout::interpolation_order`]; then [`ParamLayout::scaling`]:
//! `W = ((F * q) * τ) * (R0 / R)²`. The layout types live in [`crate::inn::layout`]; the
//! passes that do the work in `passes`.

mod passes;

pub use crate::inn::layout::{
    AxisKind, ParamLayout, Scaling, check_lambda_shape, checked_elements,
};
pub use passes::{FinalScale, apply_along, apply_along_scaled};

use ndarray::{ArrayD, ArrayViewD};

use crate::inn::Error;
use crate::inn::basis::Basis;
use crate::inn::plan::Resolved;
use passes::apply_two_leading;

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

#[cfg(test)]
mod tests {
    use super::passes::{RowScale, gather_lanes};
    use super::*;
    use crate::inn::partition::linspace;
    use crate::inn::{GroupId, Quadrature};
    use ndarray::IxDyn;
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
