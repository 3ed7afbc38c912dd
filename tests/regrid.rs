//! Regridding control values (`model::regrid`), checked against an independent evaluation of
//! the interpolated function (PyTorch's bicubic `grid_sample` along one axis, written here from
//! its formula in f64): the new control values are the old function at the new positions; and
//! a ratio the model already has changes nothing.

use innscope::inn::discretize::AxisKind;
use innscope::inn::partition::linspace;
use innscope::model::arch;
use innscope::model::regrid::{control_count, control_ratio, regrid};

/// Keys' cubic convolution kernel with PyTorch's `A = -0.75`.
fn keys(s: f64) -> f64 {
    const A: f64 = -0.75;
    let s = s.abs();
    if s <= 1.0 {
        ((A + 2.0) * s - (A + 3.0)) * s * s + 1.0
    } else if s < 2.0 {
        ((A * s - 5.0 * A) * s + 8.0 * A) * s - 4.0 * A
    } else {
        0.0
    }
}

/// The function with control values `c` (over [-1, 1], `align_corners`, border-clamped taps)
/// at `x`.
fn interpolate(c: &[f64], x: f64) -> f64 {
    let n = c.len();
    let u = (x + 1.0) * (n - 1) as f64 / 2.0;
    let i0 = u.floor();
    let t = u - i0;
    (-1..=2)
        .map(|k: i64| {
            let i = (i0 as i64 + k).clamp(0, n as i64 - 1) as usize;
            c[i] * keys(t - k as f64)
        })
        .sum()
}

#[test]
fn new_control_values_are_the_old_function_at_the_new_positions() {
    // widths 8, 12, 16 at ratio 0.5: 4, 6, 8 control values per channel axis.
    let mut model = arch::fashion_cnn(3, [8, 12, 16], None, true, 0.5).expect("model");
    assert!((control_ratio(&model) - 0.5).abs() < 1e-12);
    // conv2.weight: (out 6 controls, in 4 controls, 5, 5). Along the output axis an uneven
    // profile, times a second one along the input axis.
    let prof_out = [0.3, -0.7, 0.2, 0.9, -0.1, 0.4];
    let prof_in = [1.0, -0.5, 0.25, 2.0];
    let w = model.tensors.get_mut("conv2.weight").expect("conv2");
    assert_eq!(&w.shape()[..2], &[6, 4]);
    for ((o, i, _, _), v) in w
        .view_mut()
        .into_dimensionality::<ndarray::Ix4>()
        .expect("4-D")
        .indexed_iter_mut()
    {
        *v = (prof_out[o] * prof_in[i]) as f32;
    }
    let finer = regrid(&model, 1.0).expect("regrid");
    // Every channel axis now has one control value per channel; spatial axes keep 5.
    let w = &finer.tensors["conv2.weight"];
    assert_eq!(w.shape(), &[12, 8, 5, 5]);
    assert_eq!(finer.tensors["conv1.weight"].shape()[0], 8);
    assert_eq!(finer.tensors["conv3.weight"].shape()[..2], [16, 12]);
    assert!((control_ratio(&finer) - 1.0).abs() < 1e-12);
    let (x_out, x_in) = (linspace(12), linspace(8));
    for (o, &xo) in x_out.iter().enumerate() {
        for (i, &xi) in x_in.iter().enumerate() {
            let want = interpolate(&prof_out, f64::from(xo)) * interpolate(&prof_in, f64::from(xi));
            for v in w.slice(ndarray::s![o, i, .., ..]) {
                assert!(
                    (f64::from(*v) - want).abs() < 1e-5,
                    "({o}, {i}): {v} vs {want}"
                );
            }
        }
    }
    // Back to the coarse grid: the same points as before only where old and new positions
    // coincide (both ends), the rest is interpolation of an interpolation.
    let coarse = regrid(&finer, 0.5).expect("regrid back");
    let back = &coarse.tensors["conv2.weight"];
    assert_eq!(&back.shape()[..2], &[6, 4]);
    assert!((f64::from(back[[0, 0, 0, 0]]) - prof_out[0] * prof_in[0]).abs() < 1e-5);
    assert!((f64::from(back[[5, 3, 4, 4]]) - prof_out[5] * prof_in[3]).abs() < 1e-5);
}

#[test]
fn the_ratio_a_model_has_changes_nothing_and_bad_ratios_are_refused() {
    let model = arch::fashion_cnn(4, [8, 12, 16], None, true, 0.5).expect("model");
    let same = regrid(&model, 0.5).expect("regrid");
    assert_eq!(same.tensors, model.tensors);
    for bad in [0.0, -0.5, 1.5, f64::NAN] {
        assert!(regrid(&model, bad).is_err(), "{bad}");
    }
    // Only channel axes of groups change; the twin (no continuous axes) is left alone.
    let twin = arch::fashion_cnn(4, [8, 12, 16], None, false, 1.0).expect("twin");
    assert_eq!(regrid(&twin, 0.5).expect("regrid").tensors, twin.tensors);
    assert!(
        model
            .doc
            .params
            .iter()
            .any(|p| p.layout.axes.contains(&AxisKind::SpatialH))
    );
    assert_eq!(control_count(32, 0.75), 24);
    assert_eq!(control_count(3, 0.1), 2);
}
