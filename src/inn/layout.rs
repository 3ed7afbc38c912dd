//! How a parameter is laid out: what each of its axes is (discrete, a channel axis of a
//! group, a kernel row or column), its shape at full size, its quadrature, and what follows
//! from them under a plan: discrete shapes, sample points, the order axes are interpolated in
//! and the final scaling.

use serde::{Deserialize, Serialize};

use super::discretize::FinalScale;
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
