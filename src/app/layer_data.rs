//! Numbers the weight panels share: the selected layer's continuous function sampled finely,
//! at its control points and at the current partition, as 2-D planes with their coordinates.

use std::collections::BTreeMap;
use std::rc::Rc;

use ndarray::{Array2, ArrayD, Axis};

use crate::inn::discretize::discretize;
use crate::inn::partition::linspace;
use crate::inn::{AxisKind, ParamLayout, Resolved};
use crate::model::ParamSpec;

/// Which 2-D slice of a 4-D kernel is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slice {
    /// Output × input channels at spatial tap `(r, s)` (for 2-D weights: the whole matrix).
    Channels {
        /// Kernel row.
        r: usize,
        /// Kernel column.
        s: usize,
    },
    /// Kernel rows × columns for the channel pair `(a, b)`.
    Spatial {
        /// Output channel.
        a: usize,
        /// Input channel.
        b: usize,
    },
}

/// A plane of values with the position of every row and column in `[-1, 1]`.
#[derive(Clone, Debug, Default)]
pub struct Plane {
    /// Values, rows × columns.
    pub values: Array2<f32>,
    /// Position of each row.
    pub rows: Vec<f32>,
    /// Position of each column.
    pub cols: Vec<f32>,
}

/// The function sampled three ways, for one slice.
#[derive(Clone, Debug, Default)]
pub struct LayerPlanes {
    /// Finely sampled (uniform, `FINE` points per continuous axis), without quadrature.
    pub fine: Plane,
    /// At the control points (λ itself).
    pub control: Plane,
    /// At the current partition, without quadrature (the function's values).
    pub samples: Plane,
}

/// Points per continuous axis of the fine sampling.
pub const FINE: usize = 48;

fn without_quadrature(layout: &ParamLayout) -> ParamLayout {
    ParamLayout {
        quadrature: None,
        ..layout.clone()
    }
}

/// Positions of the entries along `dim` under `plan` (discrete axes spread over `[-1, 1]`).
fn positions(layout: &ParamLayout, dim: usize, n: usize, plan: &Resolved) -> Vec<f32> {
    layout
        .axis_points(dim, plan)
        .ok()
        .flatten()
        .filter(|p| p.len() == n)
        .unwrap_or_else(|| linspace(n))
}

/// A plan sampling every group of this parameter at `FINE` uniform points, spatial axes 8x finer.
fn fine_plan(layout: &ParamLayout, plan: &Resolved) -> Resolved {
    let mut partitions: BTreeMap<u32, Vec<f32>> = plan.partitions.clone();
    for a in &layout.axes {
        if let AxisKind::Channel { group } = a {
            partitions.insert(*group, linspace(FINE));
        }
    }
    Resolved {
        partitions,
        resolution: plan.resolution,
        scale: [8.0, 8.0],
    }
}

fn slice(values: &ArrayD<f32>, which: Slice) -> Array2<f32> {
    let v = values.view();
    match (values.ndim(), which) {
        (4, Slice::Channels { r, s }) => {
            let r = r.min(values.shape()[2] - 1);
            let s = s.min(values.shape()[3] - 1);
            v.index_axis(Axis(3), s)
                .index_axis(Axis(2), r)
                .to_owned()
                .into_dimensionality()
                .unwrap_or_default()
        }
        (4, Slice::Spatial { a, b }) => {
            let a = a.min(values.shape()[0] - 1);
            let b = b.min(values.shape()[1] - 1);
            v.index_axis(Axis(0), a)
                .index_axis(Axis(0), b)
                .to_owned()
                .into_dimensionality()
                .unwrap_or_default()
        }
        (2, _) => v.to_owned().into_dimensionality().unwrap_or_default(),
        (1, _) => v
            .insert_axis(Axis(1))
            .to_owned()
            .into_dimensionality()
            .unwrap_or_default(),
        _ => Array2::zeros((0, 0)),
    }
}

/// The dims a slice shows (row dim, column dim).
fn slice_dims(ndim: usize, which: Slice) -> (usize, Option<usize>) {
    match (ndim, which) {
        (4, Slice::Spatial { .. }) => (2, Some(3)),
        (1, _) => (0, None),
        _ => (0, Some(1)),
    }
}

fn plane(values: &ArrayD<f32>, layout: &ParamLayout, which: Slice, plan: &Resolved) -> Plane {
    let v = slice(values, which);
    let (rd, cd) = slice_dims(values.ndim(), which);
    let rows = positions(layout, rd, v.nrows(), plan);
    let cols = cd.map_or_else(|| vec![0.0], |cd| positions(layout, cd, v.ncols(), plan));
    Plane {
        values: v,
        rows,
        cols,
    }
}

/// The slice `which` of discrete weights `w` of `param` under `plan`, with positions.
#[must_use]
pub fn discrete_plane(param: &ParamSpec, w: &ArrayD<f32>, which: Slice, plan: &Resolved) -> Plane {
    plane(w, &param.layout, which, plan)
}

/// Sample `param` (control values `lambda`) for `which` under `plan`.
#[must_use]
pub fn planes(
    param: &ParamSpec,
    lambda: &ArrayD<f32>,
    which: Slice,
    plan: &Resolved,
) -> LayerPlanes {
    let layout = without_quadrature(&param.layout);
    let fine_plan = fine_plan(&layout, plan);
    let fine = discretize(lambda.view(), &layout, &fine_plan)
        .map(|f| plane(&f, &layout, which, &fine_plan))
        .unwrap_or_default();
    let samples = discretize(lambda.view(), &layout, plan)
        .map(|f| plane(&f, &layout, which, plan))
        .unwrap_or_default();
    // Control values sit at linspace(N) along each continuous axis.
    let control_values = slice(lambda, which);
    let (rd, cd) = slice_dims(lambda.ndim(), which);
    let at = |d: usize, n: usize| {
        if layout.axes[d].is_continuous() {
            linspace(n)
        } else {
            positions(&layout, d, n, plan)
        }
    };
    let control = Plane {
        rows: at(rd, control_values.nrows()),
        cols: cd.map_or_else(|| vec![0.0], |cd| at(cd, control_values.ncols())),
        values: control_values,
    };
    LayerPlanes {
        fine,
        control,
        samples,
    }
}

/// Axis names of a slice, for labels.
#[must_use]
pub fn axis_names(ndim: usize, which: Slice) -> (&'static str, &'static str) {
    match (ndim, which) {
        (4, Slice::Spatial { .. }) => ("kernel row", "kernel column"),
        (2, _) => ("output feature", "input feature"),
        _ => ("output channel", "input channel"),
    }
}

/// A cheap fingerprint of the state's resolved plan (every partition point, the resolution).
#[must_use]
pub fn plan_key(state: &super::state::State) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for (g, p) in &state.resolved.partitions {
        g.hash(&mut h);
        for v in p {
            v.to_bits().hash(&mut h);
        }
    }
    state.resolved.resolution.hash(&mut h);
    h.finish()
}

/// The selected layer's [`LayerPlanes`] for one slice, computed once per (layer, slice, plan)
/// and shared by the surface and spectrum panels.
#[derive(Default)]
pub struct PlanesCache {
    entry: Option<(String, Slice, u64, Rc<LayerPlanes>)>,
}

impl PlanesCache {
    /// The planes of the selected layer for `slice` under the state's plan.
    pub fn get(&mut self, state: &super::state::State, slice: Slice) -> Option<Rc<LayerPlanes>> {
        let param = state.layer()?;
        let key = plan_key(state);
        match &self.entry {
            Some((name, s, k, p)) if *name == param.name && *s == slice && *k == key => {
                Some(Rc::clone(p))
            }
            _ => {
                let lambda = &state.model.tensors[&param.name];
                let p = Rc::new(planes(param, lambda, slice, &state.resolved));
                self.entry = Some((param.name.clone(), slice, key, Rc::clone(&p)));
                Some(p)
            }
        }
    }
}
