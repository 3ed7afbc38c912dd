//! Numbers the weight panels share: the selected layer's continuous function sampled finely,
//! at its control points and at the current partition, as 2-D planes with their coordinates.

use std::collections::BTreeMap;
use std::rc::Rc;

use ndarray::{Array2, ArrayD, Axis, IxDyn};

use crate::inn::basis::Basis;
use crate::inn::discretize::sample_function;
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

/// The function sampled three ways, for one slice: values of the continuous kernel itself,
/// without quadrature, `τ` or the area element (which only the discrete weights carry).
#[derive(Clone, Debug, Default)]
pub struct LayerPlanes {
    /// Finely sampled: uniform, [`fine_count`] points per continuous channel axis; a spatial
    /// slice also 8x finer in space. Shared with the planes of the next plan where it does
    /// not change (see [`LayerPlanes::fine_key`]).
    pub fine: Rc<Plane>,
    /// What `fine` depends on besides λ and the layer: the slice's kind and the point of the
    /// other two axes it shows (a partition slider moves the samples, not a channel slice's
    /// fine plane). Equal keys of one layer of one model mean equal fine planes.
    pub fine_key: u64,
    /// At the control points (λ itself along channel axes).
    pub control: Plane,
    /// At the current partition and resolution.
    pub samples: Plane,
}

/// Fewest points per continuous channel axis of the fine sampling.
pub const FINE: usize = 48;

/// Most points per continuous channel axis of the fine sampling.
pub const MAX_FINE: usize = 512;

/// Points of the fine sampling along a channel axis with `n_control` control values: a point
/// between every two control points as well as on each (`2n - 1`), so that the finest detail
/// λ can hold shows (the spectrum's reference is not aliased); at least [`FINE`], at most
/// [`MAX_FINE`].
#[must_use]
pub fn fine_count(n_control: usize) -> usize {
    (2 * n_control).saturating_sub(1).clamp(FINE, MAX_FINE)
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

/// A plan sampling every group of this parameter at [`fine_count`] uniform points for the
/// control values along its axis (λ's shape `lambda_shape`). Spatial axes stay at the plan's
/// taps for a channel slice, so that its tap `(r, s)` is the same position as the samples' (a
/// finer kernel has more taps, and its tap `(r, s)` lies elsewhere); a spatial slice is sampled
/// 8x finer than the native kernel.
fn fine_plan(
    layout: &ParamLayout,
    lambda_shape: &[usize],
    plan: &Resolved,
    which: Slice,
) -> Resolved {
    let mut partitions: BTreeMap<u32, Vec<f32>> = plan.partitions.clone();
    for (a, &n) in layout.axes.iter().zip(lambda_shape) {
        if let AxisKind::Channel { group } = a {
            partitions.insert(*group, linspace(fine_count(n)));
        }
    }
    let scale = match which {
        Slice::Channels { .. } => plan.scale,
        Slice::Spatial { .. } => [8.0, 8.0],
    };
    Resolved {
        partitions,
        resolution: plan.resolution,
        scale,
    }
}

/// λ of a 4-D kernel at one point of two of its axes (`dims`, the spatial pair or the channel
/// pair), the `index`-th sample of each under `plan`: those axes interpolated at that point, or
/// the entry itself where they are discrete, and made discrete of size 1 in the returned
/// layout. Every plane of a slice comes from it, so all three show the kernel at the same
/// point (the fine sampling's own `index`-th point lies elsewhere), and a slider tick
/// interpolates one slice of the kernel, not all of it.
fn at_point(
    layout: &ParamLayout,
    lambda: &ArrayD<f32>,
    dims: [usize; 2],
    index: [usize; 2],
    plan: &Resolved,
) -> Option<(ParamLayout, ArrayD<f32>, u64)> {
    let shape = lambda.shape();
    // The weight of each λ entry along `dim` at the `index`-th sample's position.
    let along = |dim: usize, index: usize| -> Option<Vec<f32>> {
        let n = shape[dim];
        let mut w = vec![0.0; n];
        match layout.axis_points(dim, plan).ok()? {
            Some(points) => {
                let x = *points.get(index.min(points.len().checked_sub(1)?))?;
                let basis = Basis::new(&[x], n);
                for (&t, &wt) in basis.taps.first()?.iter().zip(basis.weights.first()?) {
                    *w.get_mut(t as usize)? += wt;
                }
            }
            None => *w.get_mut(index.min(n.checked_sub(1)?))? = 1.0,
        }
        Some(w)
    };
    let (w0, w1) = (along(dims[0], index[0])?, along(dims[1], index[1])?);
    let key = {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        dims.hash(&mut h);
        for w in w0.iter().chain(&w1) {
            w.to_bits().hash(&mut h);
        }
        h.finish()
    };
    let kept: Vec<usize> = (0..4).filter(|d| !dims.contains(d)).collect();
    let lambda = lambda
        .view()
        .into_dimensionality::<ndarray::Ix4>()
        .ok()?
        .permuted_axes([kept[0], kept[1], dims[0], dims[1]]);
    let mut reduced = Array2::<f32>::zeros((shape[kept[0]], shape[kept[1]]));
    // At a control point (and for discrete axes) a single weight is non-zero, 1.
    for (i, &x) in w0.iter().enumerate() {
        for (j, &y) in w1.iter().enumerate() {
            if x * y != 0.0 {
                reduced.scaled_add(x * y, &lambda.index_axis(Axis(3), j).index_axis(Axis(2), i));
            }
        }
    }
    let mut one = ParamLayout {
        quadrature: None,
        ..layout.clone()
    };
    let mut reduced_shape = shape.to_vec();
    for dim in dims {
        one.axes[dim] = AxisKind::Discrete;
        one.shape[dim] = 1;
        reduced_shape[dim] = 1;
    }
    let reduced = reduced.into_shape_with_order(IxDyn(&reduced_shape)).ok()?;
    Some((one, reduced, key))
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
///
/// `previous`: the planes of the same layer of the same model under an earlier plan, whose
/// fine plane is reused where it has not changed.
pub fn planes(
    param: &ParamSpec,
    lambda: &ArrayD<f32>,
    which: Slice,
    plan: &Resolved,
    previous: Option<&LayerPlanes>,
) -> LayerPlanes {
    // A slice of a 4-D kernel: everything from the one point of the other two axes it shows.
    let reduced = if lambda.ndim() == 4 && param.layout.axes.len() == 4 {
        match which {
            Slice::Channels { r, s } => at_point(&param.layout, lambda, [2, 3], [r, s], plan)
                .map(|(l, x, k)| (l, x, Slice::Channels { r: 0, s: 0 }, k)),
            Slice::Spatial { a, b } => at_point(&param.layout, lambda, [0, 1], [a, b], plan)
                .map(|(l, x, k)| (l, x, Slice::Spatial { a: 0, b: 0 }, k)),
        }
    } else {
        None
    };
    let (layout, lambda, which, fine_key) = match &reduced {
        Some((layout, lambda, which, key)) => (layout, lambda, *which, *key),
        // Sampled along its channel axes only, at fixed points: λ alone decides.
        None => (&param.layout, lambda, which, 0),
    };
    let fine = match previous.filter(|p| p.fine_key == fine_key) {
        Some(p) => Rc::clone(&p.fine),
        None => {
            let fine_plan = fine_plan(layout, lambda.shape(), plan, which);
            Rc::new(
                sample_function(lambda.view(), layout, &fine_plan)
                    .map(|f| plane(&f, layout, which, &fine_plan))
                    .unwrap_or_default(),
            )
        }
    };
    let samples = sample_function(lambda.view(), layout, plan)
        .map(|f| plane(&f, layout, which, plan))
        .unwrap_or_default();
    // Control values sit at linspace(N) along each continuous axis: λ's own channels, or the
    // native taps of a spatial slice.
    let control_values = slice(lambda, which);
    let (rd, cd) = slice_dims(lambda.ndim(), which);
    let at = |d: usize, n: usize| {
        if layout.axes[d].is_continuous() {
            linspace(n)
        } else {
            positions(layout, d, n, plan)
        }
    };
    let control = Plane {
        rows: at(rd, control_values.nrows()),
        cols: cd.map_or_else(|| vec![0.0], |cd| at(cd, control_values.ncols())),
        values: control_values,
    };
    LayerPlanes {
        fine,
        fine_key,
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
    entry: Option<CachedPlanes>,
}

/// The planes of one (model, layer, slice, plan).
struct CachedPlanes {
    generation: u64,
    layer: String,
    slice: Slice,
    plan: u64,
    planes: Rc<LayerPlanes>,
}

impl PlanesCache {
    /// The planes of the selected layer for `slice` under the state's plan.
    pub fn get(&mut self, state: &super::state::State, slice: Slice) -> Option<Rc<LayerPlanes>> {
        let param = state.layer()?;
        let plan = plan_key(state);
        // The same layer of the same model: its fine plane may carry over to the new plan.
        let same_layer = self
            .entry
            .as_ref()
            .filter(|e| e.generation == state.generation && e.layer == param.name);
        if let Some(e) = same_layer.filter(|e| e.slice == slice && e.plan == plan) {
            return Some(Rc::clone(&e.planes));
        }
        let lambda = &state.model.tensors[&param.name];
        let previous = same_layer.map(|e| &*e.planes);
        let planes = Rc::new(planes(param, lambda, slice, &state.resolved, previous));
        self.entry = Some(CachedPlanes {
            generation: state.generation,
            layer: param.name.clone(),
            slice,
            plan,
            planes: Rc::clone(&planes),
        });
        Some(planes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inn::quadrature::Quadrature;

    /// A 3×3 conv continuous in both channel axes (groups 0 and 1) and in space, with
    /// quadrature on its input channels, as the demo's convolutions are.
    fn conv() -> ParamSpec {
        ParamSpec {
            name: "conv.weight".into(),
            layout: ParamLayout {
                shape: vec![8, 6, 3, 3],
                axes: vec![
                    AxisKind::Channel { group: 0 },
                    AxisKind::Channel { group: 1 },
                    AxisKind::SpatialH,
                    AxisKind::SpatialW,
                ],
                quadrature: Some(Quadrature { dim: 1, tau: 2.5 }),
            },
        }
    }

    /// Seven points for group 0, a non-uniform five for group 1, at `scale` times the native
    /// resolution of 28 px.
    fn plan(scale: f32) -> Resolved {
        let mut partitions = BTreeMap::new();
        partitions.insert(0, linspace(7));
        partitions.insert(1, vec![-1.0, -0.7, 0.1, 0.4, 1.0]);
        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let px = (28.0 * scale) as usize;
        Resolved {
            partitions,
            resolution: [px, px],
            scale: [scale, scale],
        }
    }

    fn all_close(p: &Plane, want: f32, what: &str) {
        assert!(!p.values.is_empty(), "{what}: empty plane");
        for v in &p.values {
            assert!((v - want).abs() < 1e-5, "{what}: {v}, want {want}");
        }
    }

    /// Cubic convolution reproduces a constant exactly (its weights sum to 1), so every plane
    /// of a constant kernel is that constant: with no quadrature, τ or area element in it, at
    /// the native resolution and at twice it, in either slice.
    #[test]
    fn a_constant_kernel_is_its_constant_on_every_plane() {
        let lambda = ArrayD::from_elem(IxDyn(&[5, 4, 3, 3]), 0.37_f32);
        for scale in [1.0, 2.0] {
            for which in [
                Slice::Channels { r: 1, s: 1 },
                Slice::Spatial { a: 2, b: 1 },
            ] {
                let p = planes(&conv(), &lambda, which, &plan(scale), None);
                let what = format!("scale {scale}, {which:?}");
                all_close(&p.fine, 0.37, &format!("fine, {what}"));
                all_close(&p.control, 0.37, &format!("control, {what}"));
                all_close(&p.samples, 0.37, &format!("samples, {what}"));
            }
        }
    }

    /// A kernel that varies only in space, `λ[o, i, r, s] = 3r + s`: a channel slice at tap
    /// `(r, s)` is the kernel's value at that tap's position on all three planes. At twice the
    /// native resolution the taps are at -1, -½, 0, ½, 1, so tap (2, 4) sits on the control
    /// point (1, 2), where the value is 5; at the native resolution tap (0, 2) is the control
    /// point (0, 2), value 2.
    #[test]
    fn a_channel_slice_shows_the_tap_it_names() {
        let lambda = ArrayD::from_shape_fn(IxDyn(&[5, 4, 3, 3]), |i| {
            #[expect(clippy::cast_precision_loss)]
            let v = (3 * i[2] + i[3]) as f32;
            v
        });
        for (scale, r, s, want) in [(1.0, 0, 2, 2.0), (2.0, 2, 4, 5.0)] {
            let p = planes(
                &conv(),
                &lambda,
                Slice::Channels { r, s },
                &plan(scale),
                None,
            );
            let what = format!("scale {scale}, tap ({r}, {s})");
            all_close(&p.fine, want, &format!("fine, {what}"));
            all_close(&p.control, want, &format!("control, {what}"));
            all_close(&p.samples, want, &format!("samples, {what}"));
            assert_eq!(p.fine.values.dim(), (FINE, FINE), "{what}");
            assert_eq!(p.control.values.dim(), (5, 4), "{what}");
            assert_eq!(p.samples.values.dim(), (7, 5), "{what}");
        }
    }

    /// A kernel that varies only along output channels, `λ[o, i, r, s] = o`, with group 0
    /// sampled at its five control points: a spatial slice at output channel 3 is the control
    /// value 3 at every tap of all three planes (the fourth of the fine sampling's own points
    /// lies near -1, where F is about 0.2).
    #[test]
    fn a_spatial_slice_shows_the_channels_it_names() {
        let lambda = ArrayD::from_shape_fn(IxDyn(&[5, 4, 3, 3]), |i| {
            #[expect(clippy::cast_precision_loss)]
            let v = i[0] as f32;
            v
        });
        for scale in [1.0, 2.0] {
            let mut plan = plan(scale);
            plan.partitions.insert(0, linspace(5));
            let p = planes(&conv(), &lambda, Slice::Spatial { a: 3, b: 2 }, &plan, None);
            let what = format!("scale {scale}");
            all_close(&p.fine, 3.0, &format!("fine, {what}"));
            all_close(&p.control, 3.0, &format!("control, {what}"));
            all_close(&p.samples, 3.0, &format!("samples, {what}"));
            let taps = if scale == 1.0 { 3 } else { 5 };
            assert_eq!(p.control.values.dim(), (3, 3), "{what}");
            assert_eq!(p.samples.values.dim(), (taps, taps), "{what}");
            assert!(
                p.fine.values.nrows() > 8,
                "{what}: {:?}",
                p.fine.values.dim()
            );
        }
    }

    /// λ alternating ±1 along 40 output-channel controls, the finest detail it can hold: the
    /// fine plane samples that axis at 79 points, every other one a control point, where F is
    /// λ itself (48 points would fall between the controls and miss the alternation).
    #[test]
    fn the_fine_plane_resolves_every_control_value() {
        let lambda = ArrayD::from_shape_fn(IxDyn(&[40, 4, 3, 3]), |i| {
            if i[0] % 2 == 0 { 1.0 } else { -1.0 }
        });
        let mut plan = plan(1.0);
        plan.partitions.insert(0, linspace(8));
        let p = planes(
            &conv(),
            &lambda,
            Slice::Channels { r: 1, s: 1 },
            &plan,
            None,
        );
        assert_eq!(p.fine.values.nrows(), 79);
        for (k, row) in p.fine.values.rows().into_iter().step_by(2).enumerate() {
            let want = if k % 2 == 0 { 1.0 } else { -1.0 };
            for v in row {
                assert!(
                    (v - want).abs() < 1e-5,
                    "fine row {}: {v}, want {want}",
                    2 * k
                );
            }
        }
        assert_eq!(fine_count(1000), MAX_FINE);
    }

    /// A partition change keeps a channel slice's fine plane (the same one, not recomputed);
    /// another tap, or a spatial slice whose channel points moved, gets a new one, equal to one
    /// computed afresh.
    #[test]
    fn the_fine_plane_carries_over_only_where_it_cannot_change() {
        let lambda = ArrayD::from_shape_fn(IxDyn(&[5, 4, 3, 3]), |i| {
            #[expect(clippy::cast_precision_loss)]
            let v = ((i[0] * 7 + i[1] * 3 + i[2] * 2 + i[3]) % 5) as f32;
            v
        });
        let (a, mut b) = (plan(1.0), plan(1.0));
        b.partitions.insert(0, linspace(4));
        b.partitions.insert(1, vec![-1.0, -0.2, 0.5, 1.0]);
        let tap = Slice::Channels { r: 1, s: 2 };
        let first = planes(&conv(), &lambda, tap, &a, None);
        let moved = planes(&conv(), &lambda, tap, &b, Some(&first));
        assert!(Rc::ptr_eq(&first.fine, &moved.fine));
        assert_eq!(moved.samples.values.dim(), (4, 4));

        let other = Slice::Channels { r: 0, s: 0 };
        let other_tap = planes(&conv(), &lambda, other, &b, Some(&first));
        assert!(!Rc::ptr_eq(&first.fine, &other_tap.fine));
        assert_eq!(
            other_tap.fine.values,
            planes(&conv(), &lambda, other, &b, None).fine.values
        );

        // Output channel 1 sits at -2/3 under `a` and at -1/3 under `b`.
        let space = Slice::Spatial { a: 1, b: 1 };
        let under_a = planes(&conv(), &lambda, space, &a, None);
        let under_b = planes(&conv(), &lambda, space, &b, Some(&under_a));
        assert!(!Rc::ptr_eq(&under_a.fine, &under_b.fine));
        assert_eq!(
            under_b.fine.values,
            planes(&conv(), &lambda, space, &b, None).fine.values
        );
        assert_ne!(under_a.fine.values, under_b.fine.values);
    }
}
