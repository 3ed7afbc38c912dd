//! Discretization: turning a continuous parameter (control values λ) into a discrete tensor.
//!
//! A parameter's λ has one axis per tensor dimension. Discrete axes hold the tensor's own
//! entries; continuous axes hold control values that are interpolated at a partition (channel
//! axes) or at the tap positions of the current resolution (spatial axes). Axes are
//! interpolated from the last continuous dimension to the first, which for a 2-D continuous
//! weight is PyTorch's order (input channels, the `grid_sample` width, before output channels).
//! Then the quadrature weights multiply the quadrature dimension, then `τ`, then the spatial
//! area element: `W = ((F * q) * τ) * (R0 / R)²`.

use ndarray::{ArrayD, ArrayViewD, IxDyn};
use serde::{Deserialize, Serialize};

use super::basis::Basis;
use super::group::GroupId;
use super::plan::Resolved;
use super::quadrature::{Quadrature, trapezoid};
use super::spatial::{tap_count, tap_positions};
use super::{Error, MAX_ELEMENTS};

/// What one dimension of a parameter is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
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
    let src = input.as_slice().expect("standard layout is contiguous");
    let mut out = vec![0.0_f32; total];
    for o in 0..outer {
        let src_o = &src[o * n_in * inner..(o + 1) * n_in * inner];
        let dst_o = &mut out[o * n_out * inner..(o + 1) * n_out * inner];
        for (j, (t, w)) in basis.taps.iter().zip(&basis.weights).enumerate() {
            let row = |k: usize| &src_o[t[k] as usize * inner..(t[k] as usize + 1) * inner];
            let (r0, r1, r2, r3) = (row(0), row(1), row(2), row(3));
            let dst = &mut dst_o[j * inner..(j + 1) * inner];
            for (i, d) in dst.iter_mut().enumerate() {
                *d = w[0] * r0[i] + w[1] * r1[i] + w[2] * r2[i] + w[3] * r3[i];
            }
        }
    }
    let mut out_shape = shape;
    out_shape[dim] = n_out;
    Ok(ArrayD::from_shape_vec(IxDyn(&out_shape), out).expect("length matches shape"))
}

/// Multiply `array` along `dim` by `weights`, then by `tau`: `(f * q) * τ`.
pub fn scale_along(array: &mut ArrayD<f32>, dim: usize, weights: &[f32], tau: f32) {
    for (mut lane, &q) in array.axis_iter_mut(ndarray::Axis(dim)).zip(weights) {
        lane.mapv_inplace(|f| (f * q) * tau);
    }
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
    check_lambda_shape(lambda.shape(), layout)?;
    checked_elements(&layout.discrete_shape(plan)?)?;
    let mut current: Option<ArrayD<f32>> = None;
    for dim in (0..layout.axes.len()).rev() {
        let Some(points) = layout.axis_points(dim, plan)? else {
            continue;
        };
        let basis = Basis::new(&points, lambda.shape()[dim]);
        let next = match &current {
            Some(a) => apply_along(a.view(), dim, &basis)?,
            None => apply_along(lambda.view(), dim, &basis)?,
        };
        current = Some(next);
    }
    let mut out = current.unwrap_or_else(|| lambda.to_owned());
    if let (Some(q), Some(quad)) = (layout.quadrature_weights(plan)?, layout.quadrature) {
        scale_along(&mut out, quad.dim, &q, quad.tau);
    }
    let area = layout.area_factor(plan);
    if area != 1.0 {
        out.mapv_inplace(|v| v * area);
    }
    Ok(out)
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

    /// An independent path: a direct double loop over the 2-D tensor product in f64.
    #[test]
    fn two_axes_match_a_direct_tensor_product() {
        let (na, nb) = (6, 5);
        let lambda: ArrayD<f32> = Array::from_shape_fn((na, nb, 2), |(a, b, p)| {
            ((a * 7 + b * 3 + p) as f32 * 0.37).sin()
        })
        .into_dyn();
        let layout = ParamLayout {
            shape: vec![na, nb, 2],
            axes: vec![
                AxisKind::Channel { group: 0 },
                AxisKind::Channel { group: 1 },
                AxisKind::Discrete,
            ],
            quadrature: Some(Quadrature { dim: 1, tau: 2.0 }),
        };
        let pa = vec![-0.9_f32, -0.2, 0.4, 1.0];
        let pb = vec![-1.0_f32, -0.1, 0.3];
        let plan = resolved(&[(0, pa.clone()), (1, pb.clone())], 1.0);
        let out = discretize(lambda.view(), &layout, &plan).expect("valid");
        assert_eq!(out.shape(), &[4, 3, 2]);
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
        for (ia, &xa) in pa.iter().enumerate() {
            for (ib, &xb) in pb.iter().enumerate() {
                for p in 0..2 {
                    let mut v = 0.0;
                    for (ta, wa) in interp(xa, na) {
                        for (tb, wb) in interp(xb, nb) {
                            v += wa * wb * f64::from(lambda[[ta, tb, p]]);
                        }
                    }
                    let want = v * q[ib] * 2.0;
                    let got = f64::from(out[[ia, ib, p]]);
                    assert!((got - want).abs() < 1e-5, "[{ia},{ib},{p}] {got} vs {want}");
                }
            }
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
