//! The GPU engine against the CPU engine and TorchIntegral's output, on whatever adapter this
//! machine has (lavapipe in CI). With no adapter the tests say so and skip, unless
//! `INNSCOPE_REQUIRE_GPU` is set (CI sets it), where a missing adapter fails.

mod common;

use std::sync::{Arc, OnceLock};

use common::{expected, import, logit_tolerance, max_abs_diff, plan_steps};
use innscope::engine::cpu::CpuEngine;
use innscope::gpu::{DEFAULT_ROWS, Discretization, GpuContext, GpuEngine, MAX_ROWS};
use innscope::inn::{PartitionKind, Plan, Quadrature};
use innscope::model::{DiscreteWeights, Model, arch};
use ndarray::{Array4, Ix4};

/// The device the tests share (made once: tests run on threads of one process, and a device
/// apiece made them wait on each other's pipeline builds).
fn gpu() -> Option<Arc<GpuContext>> {
    static SHARED: OnceLock<Option<Arc<GpuContext>>> = OnceLock::new();
    SHARED.get_or_init(own_gpu).clone()
}

/// A device of the test's own, for a test that destroys it.
fn own_gpu() -> Option<Arc<GpuContext>> {
    match GpuContext::headless() {
        Ok(ctx) => {
            eprintln!("GPU adapter: {}", ctx.describe());
            Some(Arc::new(ctx))
        }
        Err(e) if std::env::var_os("INNSCOPE_REQUIRE_GPU").is_some() => {
            panic!("INNSCOPE_REQUIRE_GPU is set but there is no usable adapter: {e}")
        }
        Err(e) => {
            eprintln!("skipping GPU test: {e}");
            None
        }
    }
}

/// Every layout of the discretization passes: each must give the CPU engine's weights.
const LAYOUTS: [Discretization; 3] = [
    Discretization::PerAxis,
    Discretization::Pairs,
    Discretization::Rows,
];

/// Output rows an invocation computes in the whole-row layout, besides [`DEFAULT_ROWS`]: one
/// (a row keeps nothing from the one before), three (blocks that do not divide the rows) and
/// sixteen.
const OTHER_ROWS: [u32; 3] = [1, 3, 16];

/// Worst difference of GPU weights from reference weights, relative to each tensor's scale.
fn worst_relative(gpu: &DiscreteWeights, reference: &DiscreteWeights) -> f32 {
    assert_eq!(gpu.len(), reference.len());
    gpu.iter()
        .map(|(k, w)| {
            let r = &reference[k];
            let scale = r.iter().fold(1.0_f32, |a, v| a.max(v.abs()));
            max_abs_diff(w, r) / scale
        })
        .fold(0.0, f32::max)
}

/// How far the GPU engine is from the CPU engine on the same plan: worst weight difference
/// relative to each tensor's scale, the largest logit difference on `batch`, and the logit
/// tolerance for the CPU's logits.
fn disagreement(
    g: &mut GpuEngine,
    c: &CpuEngine,
    model: &Model,
    batch: &Array4<f32>,
) -> (f32, f32, f32) {
    let w = worst_relative(
        &g.read_weights().expect("read"),
        &c.weights().expect("weights"),
    );
    let cl = c.forward(model, batch.view()).expect("CPU").into_dyn();
    let d = max_abs_diff(
        &g.forward(model, batch.view()).expect("GPU").into_dyn(),
        &cl,
    );
    (w, d, logit_tolerance(&cl))
}

/// A deterministic batch of inputs in [-1, 1].
fn inputs(model: &Model, n: usize, res: usize) -> Array4<f32> {
    let c = model.doc.input.channels;
    Array4::from_shape_fn((n, c, res, res), |(b, ch, y, x)| {
        (((b * 31 + ch * 7 + y * 13 + x * 3) % 17) as f32 / 8.0) - 1.0
    })
}

fn check_fixture(name: &str) {
    let Some(ctx) = gpu() else { return };
    let model = import(name);
    let exp = expected(name);
    let batch: Array4<f32> = exp.tensors["inputs"]
        .clone()
        .into_dimensionality::<Ix4>()
        .expect("NCHW");
    let mut engine: Option<GpuEngine> = None;
    let (mut worst_w, mut worst_l) = (0.0_f32, 0.0_f32);
    for cfg in &exp.configs {
        let tag = cfg["tag"].as_str().expect("tag");
        let mut plan = model.default_plan();
        let tuned = cfg["tuned_group"].as_u64();
        for (gid, size) in exp
            .group_order
            .iter()
            .zip(cfg["sizes"].as_array().expect("sizes"))
        {
            if Some(u64::from(*gid)) != tuned {
                plan.sizes
                    .insert(*gid, size.as_u64().expect("size") as usize);
            }
        }
        let plan = model.resolve(&plan).expect("valid");
        // One engine for every configuration: buffers grow and shrink with the plan.
        let e = match engine.as_mut() {
            Some(e) => {
                e.set_plan(&model, &plan).expect("re-discretizes");
                e
            }
            None => {
                engine.insert(GpuEngine::new(Arc::clone(&ctx), &model, &plan).expect("GPU engine"))
            }
        };
        // Every way of laying out the passes, the whole-row one with several row counts.
        let ways = LAYOUTS
            .iter()
            .map(|&layout| (layout, DEFAULT_ROWS))
            .chain(OTHER_ROWS.iter().map(|&rows| (Discretization::Rows, rows)));
        for (layout, rows) in ways {
            let path = format!("{layout:?}, {rows} rows an invocation");
            e.set_discretization(layout);
            e.set_rows_per_invocation(rows).expect("a valid row count");
            e.set_plan(&model, &plan).expect("re-discretizes");
            let weights = e.read_weights().expect("reads back");
            for (param, w) in &weights {
                let d = max_abs_diff(w, &exp.tensors[&format!("{tag}/{param}")]);
                assert!(
                    d <= 1e-6,
                    "{name} {tag} ({path}) {param}: GPU vs TorchIntegral {d:e}"
                );
                worst_w = worst_w.max(d);
            }
            let cpu = CpuEngine::new(&model, &plan).expect("CPU engine");
            assert!(worst_relative(&weights, &cpu.weights().expect("weights")) <= 1e-6);
            let gl = e
                .forward(&model, batch.view())
                .expect("GPU forward")
                .into_dyn();
            let cl = cpu
                .forward(&model, batch.view())
                .expect("CPU forward")
                .into_dyn();
            let d = max_abs_diff(&gl, &cl);
            let reference = max_abs_diff(&gl, &exp.tensors[&format!("{tag}/logits")]);
            eprintln!(
                "{name} {tag} ({path}): GPU vs CPU logits {d:e}, GPU vs TorchIntegral {reference:e}"
            );
            assert!(
                d <= logit_tolerance(&cl),
                "{name} {tag} ({path}): GPU vs CPU logits {d:e}"
            );
            assert!(
                reference <= logit_tolerance(&exp.tensors[&format!("{tag}/logits")]),
                "{name} {tag} ({path}): GPU vs TorchIntegral logits {reference:e}"
            );
            worst_l = worst_l.max(d);
        }
    }
    eprintln!(
        "{name}: worst GPU weight error {worst_w:e}, worst GPU-CPU logit difference {worst_l:e}"
    );
}

/// A row count out of range is refused and changes nothing.
#[test]
fn a_row_count_out_of_range_is_refused() {
    let Some(ctx) = gpu() else { return };
    let model = import("mnist_example");
    let plan = model.resolve(&model.default_plan()).expect("valid");
    let mut g = GpuEngine::new(Arc::clone(&ctx), &model, &plan).expect("GPU");
    let before = g.read_weights().expect("reads back");
    for rows in [0, MAX_ROWS + 1] {
        let err = g.set_rows_per_invocation(rows).expect_err("out of range");
        assert!(err.to_string().contains("output rows"), "{err}");
        assert_eq!(g.rows_per_invocation(), DEFAULT_ROWS);
    }
    // Every parameter redone, with the row count still in effect.
    g.set_discretization(Discretization::Rows);
    g.set_plan(&model, &plan).expect("re-discretizes");
    assert_eq!(g.last_change().0, model.doc.params.len());
    assert_eq!(g.read_weights().expect("reads back"), before);
}

#[test]
fn gpu_matches_torchintegral_mnist_example() {
    check_fixture("mnist_example");
}

#[test]
fn gpu_matches_torchintegral_mnist_tuned_learned_grid() {
    check_fixture("mnist_tuned");
}

/// Learned partitions resampled by quantiles to other sizes, and uniform ones, on both engines.
/// A device whose storage bindings hold less than the model: λ and the discrete weights are
/// spread over several buffers, one dispatch per buffer and pass, and the numbers do not move.
#[test]
fn a_model_larger_than_one_binding_is_spread_over_buffers() {
    let Some(full) = gpu() else { return };
    drop(full);
    let model = arch::resnet18(5).expect("model");
    let mut plan = model.default_plan();
    plan.set_keep(&model.doc.groups, 0.25);
    plan.resolution = [64, 64];
    let plan = model.resolve(&plan).expect("valid");
    // Room for the largest parameter (λ or discrete, with alignment), not for all of them.
    let c = CpuEngine::new(&model, &plan).expect("CPU");
    let largest = model
        .doc
        .params
        .iter()
        .map(|p| {
            let discrete = c
                .weight_shape(&p.name)
                .expect("shape")
                .iter()
                .product::<usize>();
            model.tensors[&p.name].len().max(discrete)
        })
        .max()
        .expect("parameters");
    let total: usize = model.tensors.values().map(ndarray::ArrayBase::len).sum();
    let binding = ((largest + 64) * 4) as u64;
    assert!(
        total * 4 > 2 * binding as usize,
        "the model fits in one binding"
    );
    let ctx = Arc::new(GpuContext::headless_limited(binding).expect("a small device"));
    let mut g = GpuEngine::new(Arc::clone(&ctx), &model, &plan).expect("GPU");
    assert!(g.weight_buffers() >= 2, "{} buffers", g.weight_buffers());
    let batch = inputs(&model, 1, 64);
    for layout in LAYOUTS {
        g.set_discretization(layout);
        g.set_plan(&model, &plan).expect("re-discretizes");
        let (w, d, tol) = disagreement(&mut g, &c, &model, &batch);
        eprintln!(
            "{} buffers of at most {binding} bytes ({layout:?}): weights {w:e}, logits {d:e}",
            g.weight_buffers()
        );
        assert!(w <= 1e-6, "{layout:?}");
        assert!(d <= tol, "{layout:?}: logits {d:e}");
    }
}

#[test]
fn gpu_matches_cpu_on_resampled_learned_partitions() {
    let Some(ctx) = gpu() else { return };
    let model = import("mnist_tuned");
    let batch = inputs(&model, 3, 28);
    for (size, kind) in [
        (12, PartitionKind::Learned),
        (24, PartitionKind::Learned),
        (9, PartitionKind::Uniform),
    ] {
        let mut plan = model.default_plan();
        plan.partition = kind;
        plan.sizes.insert(2, size);
        let plan = model.resolve(&plan).expect("valid");
        let mut g = GpuEngine::new(Arc::clone(&ctx), &model, &plan).expect("GPU");
        let c = CpuEngine::new(&model, &plan).expect("CPU");
        for layout in LAYOUTS {
            g.set_discretization(layout);
            g.set_plan(&model, &plan).expect("re-discretizes");
            let (w, d, tol) = disagreement(&mut g, &c, &model, &batch);
            assert!(w <= 1e-6, "{kind} {size} ({layout:?})");
            assert!(d <= tol, "{kind} {size} ({layout:?}): logits {d:e}");
        }
    }
}

/// A model with continuous spatial axes at several resolutions: kernels resampled at the new
/// pixel pitch, GELU, SiLU, max pooling with padding, global average pooling.
#[test]
fn gpu_matches_cpu_with_continuous_spatial_axes_at_several_resolutions() {
    let Some(ctx) = gpu() else { return };
    let model = arch::spatial_demo(7).expect("model");
    let mut engine: Option<GpuEngine> = None;
    for res in [14, 20, 28, 36, 56] {
        let mut plan = Plan::native(model.native());
        plan.resolution = [res, res];
        plan.sizes.insert(0, 6);
        let plan = model.resolve(&plan).expect("valid");
        let e = match engine.as_mut() {
            Some(e) => {
                e.set_plan(&model, &plan).expect("re-discretizes");
                e
            }
            None => engine.insert(GpuEngine::new(Arc::clone(&ctx), &model, &plan).expect("GPU")),
        };
        let c = CpuEngine::new(&model, &plan).expect("CPU");
        let kernel = c.weight("conv2.weight").expect("weight");
        let want_taps = 2 * ((2.0 * res as f32 / 28.0 + 1e-4).floor() as usize) + 1;
        assert_eq!(
            kernel.shape()[2],
            if res == 28 { 5 } else { want_taps },
            "taps at {res}"
        );
        let batch = inputs(&model, 2, res);
        let (w, d, tol) = disagreement(e, &c, &model, &batch);
        assert!(w <= 1e-6, "weights at {res}");
        eprintln!("resolution {res}: GPU vs CPU logits {d:e}");
        assert!(d <= tol, "logits at {res}: {d:e}");
    }
}

/// Plan changes on the GPU re-discretize only the parameters they touch (counted by hand in
/// `plan_steps`), and every weight, redone or kept, matches the CPU engine's fresh
/// discretization, on both ways of discretizing.
#[test]
fn the_gpu_engine_redoes_only_the_parameters_a_plan_change_touches() {
    let Some(ctx) = gpu() else { return };
    let model = arch::spatial_demo(5).expect("model");
    let start = model.resolve(&Plan::native(model.native())).expect("valid");
    for layout in LAYOUTS {
        let mut g = GpuEngine::new(Arc::clone(&ctx), &model, &start).expect("GPU");
        g.set_discretization(layout);
        g.set_plan(&model, &start).expect("re-discretizes");
        for (step, plan, changed) in plan_steps(&model) {
            g.set_plan(&model, &plan).expect("re-discretizes");
            assert_eq!(g.last_change(), (changed.len(), 6), "{step} ({layout:?})");
            let cpu = CpuEngine::new(&model, &plan).expect("CPU");
            let d = worst_relative(
                &g.read_weights().expect("read"),
                &cpu.weights().expect("weights"),
            );
            assert!(d <= 1e-6, "{step} ({layout:?}): {d:e}");
        }
    }
}

/// Quadrature along other axes than the input channels: along the axis a pass ends on (for a
/// weight continuous in both channel axes, and for one continuous in its output channels
/// only) and along a spatial axis that pass does not touch. Each layout of the passes takes
/// the quadrature weight its own way; all must give the CPU engine's weights.
#[test]
fn quadrature_along_any_continuous_axis_matches_the_cpu() {
    let Some(ctx) = gpu() else { return };
    let with_quadrature = |mut model: Model, param: &str, dim: usize| {
        let p = model
            .doc
            .params
            .iter_mut()
            .find(|p| p.name == param)
            .expect("parameter");
        assert!(p.layout.axes[dim].is_continuous(), "{param} dim {dim}");
        p.layout.quadrature = Some(Quadrature { dim, tau: 2.5 });
        model
    };
    let resnet = arch::resnet18(4).expect("model");
    let cases = [
        // Both channel axes continuous, quadrature on the output channels.
        (
            with_quadrature(resnet.clone(), "layer1.0.conv1.weight", 0),
            0.25,
        ),
        // Output channels alone continuous (rows of 3 x 7 x 7 values), quadrature on them.
        (with_quadrature(resnet, "conv1.weight", 0), 0.25),
        // Continuous in every axis, quadrature along the kernel's height.
        (
            with_quadrature(arch::spatial_demo(6).expect("model"), "conv2.weight", 2),
            0.5,
        ),
    ];
    for (model, keep) in cases {
        let mut plan = model.default_plan();
        plan.set_keep(&model.doc.groups, keep);
        plan.resolution = [model.native()[0] + 4, model.native()[1] + 4];
        let plan = model.resolve(&plan).expect("valid");
        let cpu = CpuEngine::new(&model, &plan).expect("CPU");
        let cpu_weights = cpu.weights().expect("weights");
        let mut g = GpuEngine::new(Arc::clone(&ctx), &model, &plan).expect("GPU");
        for layout in LAYOUTS {
            g.set_discretization(layout);
            g.set_plan(&model, &plan).expect("re-discretizes");
            let d = worst_relative(&g.read_weights().expect("read"), &cpu_weights);
            assert!(d <= 1e-6, "{} ({layout:?}): {d:e}", model.doc.name);
        }
    }
}

/// The ResNet-18-sized network (batch norm, residual adds, strided and 1x1 convolutions,
/// max pooling): GPU and CPU agree on weights and on logits at a reduced resolution.
#[test]
fn gpu_matches_cpu_on_a_resnet18_sized_network() {
    let Some(ctx) = gpu() else { return };
    let model = arch::resnet18(3).expect("model");
    let mut plan = model.default_plan();
    plan.set_keep(&model.doc.groups, 0.25);
    plan.resolution = [64, 64];
    let plan = model.resolve(&plan).expect("valid");
    let mut g = GpuEngine::new(Arc::clone(&ctx), &model, &plan).expect("GPU");
    let c = CpuEngine::new(&model, &plan).expect("CPU");
    let cpu_weights = c.weights().expect("weights");
    for layout in LAYOUTS {
        g.set_discretization(layout);
        g.set_plan(&model, &plan).expect("re-discretizes");
        // The same plan, but other passes: every weight is made again.
        let (changed, all) = g.last_change();
        assert_eq!(changed, all, "{layout:?}");
        assert!(
            worst_relative(&g.read_weights().expect("read"), &cpu_weights) <= 1e-6,
            "{layout:?}"
        );
    }
    let batch = inputs(&model, 1, 64);
    let gl = g.forward(&model, batch.view()).expect("GPU").into_dyn();
    let cl = c.forward(&model, batch.view()).expect("CPU").into_dyn();
    let scale = cl.iter().fold(1.0_f32, |a, v| a.max(v.abs()));
    let d = max_abs_diff(&gl, &cl);
    eprintln!("resnet18 at 25% width, 64 px: GPU vs CPU logits {d:e} (max |logit| {scale:.2})");
    assert!(d <= 1e-4 * scale, "logits {d:e}");
}

/// The window's state on a GPU whose device is then destroyed (as a driver reset would): the
/// next slider change hands the work to the CPU engine, says why, and shows the CPU engine's
/// numbers, with no error left on screen.
#[test]
fn a_lost_device_hands_the_window_over_to_the_cpu_engine() {
    let Some(ctx) = own_gpu() else { return };
    let model = innscope::data::assets::demo_model();
    let (image, name) = innscope::app::input::sample(3).expect("a sample");
    let mut state =
        innscope::app::state::State::new(model.clone(), "demo".into(), Some(&ctx), image, name)
            .expect("opens");
    assert!(
        state.engine.describe().starts_with("gpu"),
        "{}",
        state.engine.describe()
    );
    ctx.device.destroy();
    state.set_keep(0.5);
    assert_eq!(state.engine.describe(), "cpu");
    let note = state.engine_note.clone().expect("a reason");
    assert!(note.contains("GPU"), "{note}");
    assert!(state.error.is_none(), "{:?}", state.error);
    let plan = model.resolve(&state.plan).expect("plan");
    let cpu = CpuEngine::new(&model, &plan).expect("cpu");
    let logits = cpu.forward(&model, state.input.view()).expect("forward");
    for (a, b) in logits.row(0).iter().zip(&state.logits) {
        assert!((a - b).abs() < 1e-5, "{a} vs {b}");
    }
}

/// The weight view colours a slice of the discrete weights on the GPU, where they are, as the
/// window's CPU heatmap colours the same slice of the CPU engine's weights: the same colour
/// range (max |w| of the slice) and, texel by texel, the same colours (to one step of 255 where
/// float round-off moves a value across a rounding edge). Two slices of every 4-D kernel
/// (channels at one tap, taps of one channel pair) and the 2-D weights, on a learned partition
/// and on continuous spatial kernels away from their native resolution.
#[test]
fn weight_view_colours_slices_like_the_cpu_heatmap() {
    use innscope::app::heatmap::{Scale, color};
    use innscope::app::theme::DIVERGING;
    use innscope::gpu::weight_view::{SliceSpec, WeightView};
    use ndarray::{ArrayView2, Axis};

    let Some(ctx) = gpu() else { return };
    let mut view = WeightView::new(Arc::clone(&ctx)).expect("pipelines");
    let tuned = import("mnist_tuned");
    let mut learned = tuned.default_plan();
    learned.partition = PartitionKind::Learned;
    learned.set_keep(&tuned.doc.groups, 0.7);
    let spatial = arch::spatial_demo(5).expect("model");
    let mut at_20 = Plan::native(spatial.native());
    at_20.resolution = [20, 20];
    let mut checked = 0;
    for (model, plan) in [(&tuned, learned), (&spatial, at_20)] {
        let plan = model.resolve(&plan).expect("valid");
        let g = GpuEngine::new(Arc::clone(&ctx), model, &plan).expect("GPU");
        let c = CpuEngine::new(model, &plan).expect("CPU");
        for p in &model.doc.params {
            let w = c.weight(&p.name).expect("weight");
            let shape = w.shape().to_vec();
            // (slice spec, the same slice taken by ndarray from the CPU weights)
            let mut cases: Vec<(SliceSpec, ndarray::Array2<f32>)> = Vec::new();
            match *shape.as_slice() {
                [o, i, kh, kw] => {
                    let (r, s) = (kh / 2, kw - 1);
                    cases.push((
                        SliceSpec {
                            offset: r * kw + s,
                            rows: o,
                            cols: i,
                            row_stride: i * kh * kw,
                            col_stride: kh * kw,
                        },
                        w.index_axis(Axis(3), s)
                            .index_axis(Axis(2), r)
                            .to_owned()
                            .into_dimensionality()
                            .expect("2-D"),
                    ));
                    let (a, b) = (o - 1, i / 2);
                    cases.push((
                        SliceSpec {
                            offset: (a * i + b) * kh * kw,
                            rows: kh,
                            cols: kw,
                            row_stride: kw,
                            col_stride: 1,
                        },
                        w.index_axis(Axis(0), a)
                            .index_axis(Axis(0), b)
                            .to_owned()
                            .into_dimensionality()
                            .expect("2-D"),
                    ));
                }
                [o, i] => cases.push((
                    SliceSpec {
                        offset: 0,
                        rows: o,
                        cols: i,
                        row_stride: i,
                        col_stride: 1,
                    },
                    w.clone().into_dimensionality().expect("2-D"),
                )),
                _ => continue,
            }
            for (spec, want) in cases {
                let (max, _) = view
                    .render(&g, &p.name, spec, DIVERGING)
                    .unwrap_or_else(|e| panic!("{}: {e}", p.name));
                let want_max = want.iter().fold(0.0_f32, |m, v| m.max(v.abs()));
                assert!(
                    (max - want_max).abs() <= 1e-6 * want_max.max(1e-12),
                    "{}: range {max} against {want_max}",
                    p.name
                );
                let texels = view.read_texture().expect("texels");
                assert_eq!(texels.len(), want.len());
                let cpu: ArrayView2<'_, f32> = want.view();
                let hi = want_max.max(1e-12);
                for ((r, col), &v) in cpu.indexed_iter() {
                    let expect = color(v, -hi, hi, Scale::Signed).to_array();
                    let got = texels[r * spec.cols + col];
                    let step = expect
                        .iter()
                        .zip(got)
                        .map(|(e, g)| e.abs_diff(g))
                        .max()
                        .unwrap_or(0);
                    assert!(
                        step <= 1,
                        "{} ({r}, {col}) = {v}: GPU {got:?}, CPU heatmap {expect:?}",
                        p.name
                    );
                }
                // The value under the pointer, read where it is.
                let (r, col) = (spec.rows - 1, spec.cols / 2);
                let v = view
                    .value_at(&g, &p.name, spec.index(r, col))
                    .expect("value");
                assert!((v - want[[r, col]]).abs() <= 1e-6 * hi, "{}: hover", p.name);
                checked += 1;
            }
        }
    }
    assert!(checked >= 6, "only {checked} slices checked");
    // A slice reaching past the tensor is refused, not drawn.
    let plan = spatial
        .resolve(&Plan::native(spatial.native()))
        .expect("valid");
    let g = GpuEngine::new(Arc::clone(&ctx), &spatial, &plan).expect("GPU");
    let name = &spatial.doc.params[0].name;
    let len: usize = g.weight_shape(name).expect("shape").iter().product();
    let past = SliceSpec {
        offset: len - 1,
        rows: 2,
        cols: 1,
        row_stride: 1,
        col_stride: 1,
    };
    assert!(view.render(&g, name, past, DIVERGING).is_err());
}

/// Per-output-channel kernel sums for the spectra, computed on the GPU, against ndarray's sum
/// over the input channels of the CPU engine's weights.
#[test]
fn channel_sums_on_the_gpu_match_the_cpu() {
    use innscope::gpu::weight_view::WeightView;
    use ndarray::Axis;

    let Some(ctx) = gpu() else { return };
    let view = WeightView::new(Arc::clone(&ctx)).expect("pipelines");
    let model = arch::spatial_demo(5).expect("model");
    let mut plan = Plan::native(model.native());
    plan.resolution = [36, 36];
    let plan = model.resolve(&plan).expect("valid");
    let g = GpuEngine::new(Arc::clone(&ctx), &model, &plan).expect("GPU");
    let c = CpuEngine::new(&model, &plan).expect("CPU");
    let mut checked = 0;
    for p in &model.doc.params {
        let w = c.weight(&p.name).expect("weight");
        if w.ndim() != 4 {
            continue;
        }
        let sums = view.channel_sums(&g, &p.name, 16).expect("sums");
        let n = w.shape()[0].min(16);
        assert_eq!(sums.shape(), &[n, w.shape()[2], w.shape()[3]]);
        for a in 0..n {
            let want = w.index_axis(Axis(0), a).sum_axis(Axis(0));
            let scale = want.iter().fold(1e-12_f32, |m, v| m.max(v.abs()));
            for (x, y) in sums.index_axis(Axis(0), a).iter().zip(want.iter()) {
                assert!(
                    (x - y).abs() <= 1e-5 * scale,
                    "{} channel {a}: {x} vs {y}",
                    p.name
                );
            }
        }
        checked += 1;
    }
    assert!(checked >= 2, "only {checked} kernels checked");
    assert!(view.channel_sums(&g, "no such", 16).is_err());
}

/// One decision of where innscope computes: `cpu` never takes a GPU; `gpu` takes whatever
/// adapter the tests have; `auto` passes over a software adapter, naming it, and takes a
/// hardware one. `Engine::create` follows the same decision.
#[test]
fn the_engine_choice_is_one_decision() {
    use innscope::engine::{Engine, EngineChoice, choose_gpu};
    let Some(ctx) = gpu() else {
        return;
    };
    assert_eq!(
        choose_gpu(EngineChoice::Cpu, None).err().as_deref(),
        Some("--engine cpu")
    );
    let forced = choose_gpu(EngineChoice::Gpu, None).expect("the adapter the tests use");
    assert_eq!(forced.adapter.name, ctx.adapter.name);
    let software = ctx.adapter.device_type == eframe::egui_wgpu::wgpu::DeviceType::Cpu;
    let auto = choose_gpu(EngineChoice::Auto, None);
    if software {
        let why = auto.err().expect("auto passes over a software adapter");
        assert!(
            why.contains(&ctx.adapter.name) && why.contains("software"),
            "{why}"
        );
    } else {
        assert!(auto.is_ok(), "auto takes a hardware adapter");
    }
    let model = import("mnist_example");
    let plan = model.resolve(&model.default_plan()).expect("plan");
    let (engine, why) = Engine::create(EngineChoice::Auto, &model, &plan).expect("engine");
    assert_eq!(matches!(engine, Engine::Cpu(_)), software);
    assert_eq!(why.is_some(), software);
    let (engine, why) = Engine::create(EngineChoice::Gpu, &model, &plan).expect("engine");
    assert!(matches!(engine, Engine::Gpu(_)) && why.is_none());
}
