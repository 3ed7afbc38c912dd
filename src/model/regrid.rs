//! Regridding: the same continuous weights on another grid of control values.
//!
//! A continuous channel axis with `n` control values is the cubic interpolation of λ over
//! `[-1, 1]`. Regridding to `m` control values samples that function at `m` evenly spaced
//! points (the new control positions), so the network is, up to the interpolation error of a
//! cubic through cubic samples, unchanged, while it gains (or loses) freedom along the axis.
//! `innscope train --resume --control-ratio R` uses it to continue training a network with
//! finer control grids.

use ndarray::ArrayD;

use super::{Model, ModelError};
use crate::inn::basis::Basis;
use crate::inn::discretize::{AxisKind, apply_along};
use crate::inn::partition::linspace;

/// Control values a group of `size` channels gets at `ratio`: `size · ratio` rounded, at least
/// 2 (a cubic needs two) and at most `size` (or 2).
#[must_use]
pub fn control_count(size: usize, ratio: f64) -> usize {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "sizes are small and the ratio is checked positive"
    )]
    let n = (size as f64 * ratio).round() as usize;
    n.clamp(2, size.max(2))
}

/// `model` with every continuous channel axis of every group resampled to
/// [`control_count`]`(original size, ratio)` control values. Axes already at that count are
/// left bit for bit; spatial and discrete axes are never touched.
///
/// # Errors
/// A ratio outside `(0, 1]`, or a result that does not validate (it always should).
pub fn regrid(model: &Model, ratio: f64) -> Result<Model, ModelError> {
    if !(ratio > 0.0 && ratio <= 1.0) {
        return Err(ModelError::invalid(format!(
            "control ratio {ratio} is outside (0, 1]"
        )));
    }
    let mut tensors = model.tensors.clone();
    for p in &model.doc.params {
        let Some(lambda) = tensors.get_mut(&p.name) else {
            continue;
        };
        for (dim, axis) in p.layout.axes.iter().enumerate() {
            let AxisKind::Channel { group } = *axis else {
                continue;
            };
            let Some(g) = model.doc.groups.iter().find(|g| g.id == group) else {
                return Err(ModelError::invalid(format!(
                    "{}: axis {dim} names group {group}, which the model lacks",
                    p.name
                )));
            };
            let (old, new) = (lambda.shape()[dim], control_count(g.original_size, ratio));
            if old != new {
                let basis = Basis::new(&linspace(new), old);
                let resampled: ArrayD<f32> = apply_along(lambda.view(), dim, &basis)
                    .map_err(|e| ModelError::invalid(format!("{}: {e}", p.name)))?;
                *lambda = resampled;
            }
        }
    }
    Model::new(model.doc.clone(), tensors)
}

/// The largest control count over a model's channel axes divided by its group's size: the
/// control ratio a model was built with (1 when it has no continuous channel axes).
#[must_use]
pub fn control_ratio(model: &Model) -> f64 {
    let mut ratio: f64 = 0.0;
    for p in &model.doc.params {
        for (dim, axis) in p.layout.axes.iter().enumerate() {
            if let AxisKind::Channel { group } = *axis
                && let Some(g) = model.doc.groups.iter().find(|g| g.id == group)
                && let Some(lambda) = model.tensors.get(&p.name)
            {
                #[expect(clippy::cast_precision_loss, reason = "sizes are small")]
                let r = lambda.shape()[dim] as f64 / g.original_size.max(1) as f64;
                ratio = ratio.max(r);
            }
        }
    }
    if ratio > 0.0 { ratio } else { 1.0 }
}
