//! The explorer window driven like a user would: sliders found by their labels, state checked,
//! every panel compared with a snapshot (rendered by wgpu on the machine's adapter; CI pins
//! lavapipe). Refresh snapshots with `UPDATE_SNAPSHOTS=1 cargo test --test ui`.

use egui_kittest::kittest::{NodeT, Queryable};
use egui_kittest::{Harness, SnapshotOptions};
use innscope::app::{InnscopeApp, PanelKind, load_model_file};
use innscope::data::assets;
use innscope::engine::EngineChoice;

/// The window on the TorchIntegral reference model (its shapes are known from the fixtures).
fn harness() -> Option<Harness<'static, InnscopeApp>> {
    harness_with(
        assets::torchintegral_model(),
        "bundled TorchIntegral model",
        EngineChoice::Auto,
    )
}

/// The window on the TorchIntegral reference model with the engine `choice`.
fn harness_with(
    model: innscope::model::Model,
    source: &str,
    choice: EngineChoice,
) -> Option<Harness<'static, InnscopeApp>> {
    harness_full(model, source, None, choice)
}

/// The window on `model`, with `twin` beside it.
fn harness_on(
    model: innscope::model::Model,
    source: &str,
    twin: Option<innscope::model::Model>,
) -> Option<Harness<'static, InnscopeApp>> {
    harness_full(model, source, twin, EngineChoice::Auto)
}

fn harness_full(
    model: innscope::model::Model,
    source: &str,
    twin: Option<innscope::model::Model>,
    choice: EngineChoice,
) -> Option<Harness<'static, InnscopeApp>> {
    if innscope::gpu::context::best_adapter().is_none() {
        assert!(
            std::env::var_os("INNSCOPE_REQUIRE_GPU").is_none(),
            "INNSCOPE_REQUIRE_GPU is set but there is no adapter to render the window"
        );
        eprintln!("skipping UI test: no graphics adapter");
        return None;
    }
    let source = source.to_string();
    let mut h = Harness::builder()
        .with_size(egui::Vec2::new(1440.0, 900.0))
        .wgpu()
        .build_eframe(move |cc| {
            let mut app =
                InnscopeApp::new(cc, model, source, twin, choice, false).expect("the model opens");
            app.show_timings = false;
            app
        });
    h.run();
    Some(h)
}

/// The slider labelled `label` (its value box carries the label too).
fn slider<'a>(h: &'a Harness<'_, InnscopeApp>, label: &'a str) -> egui_kittest::Node<'a> {
    h.get_by_role_and_label(egui::accesskit::Role::Slider, label)
}

fn snapshot(h: &mut Harness<'_, InnscopeApp>, name: &str) {
    // Same software renderer in CI and here; a small colour tolerance absorbs driver rounding.
    h.snapshot_options(name, &SnapshotOptions::new().threshold(1.0));
}

#[test]
fn size_and_resolution_sliders_re_discretize_and_predictions_follow() {
    let Some(mut h) = harness() else { return };
    let reference = h.state().state.reference.clone();
    let before = h.state().state.probs.clone();
    assert_eq!(h.state().state.resolved.partitions[&1].len(), 64);

    slider(&h, "group 1 size").set_value_accesskit(20.0);
    h.run();
    let s = &h.state().state;
    assert_eq!(s.plan.sizes.get(&1), Some(&20));
    assert_eq!(s.resolved.partitions[&1].len(), 20);
    let selected = |s: &innscope::app::state::State| {
        let name = &s.layer().expect("selected layer").name;
        s.engine.weight_shape(name).expect("selected layer weight")
    };
    assert_eq!(selected(s), [32, 16, 5, 5], "conv_2 does not touch group 1");
    assert_ne!(s.probs, before, "predictions follow the partition");
    assert_eq!(s.reference, reference, "the reference stays at full size");

    slider(&h, "keep %").set_value_accesskit(50.0);
    h.run();
    let s = &h.state().state;
    let sizes: Vec<usize> = s.resolved.partitions.values().map(Vec::len).collect();
    assert_eq!(sizes, vec![8, 32, 16]);
    assert_eq!(s.model.param_count(&s.resolved).expect("count"), 16_458);
    assert_eq!(selected(s), [16, 8, 5, 5]);

    slider(&h, "resolution").set_value_accesskit(36.0);
    h.run();
    let s = &h.state().state;
    assert_eq!(s.resolved.resolution, [36, 36]);
    assert_eq!(s.input.shape(), &[1, 1, 36, 36]);
    assert_eq!(s.reference, reference);
    snapshot(&mut h, "window_half_width_36px");
}

#[test]
fn every_panel_maximised_matches_its_snapshot() {
    let Some(mut h) = harness() else { return };
    snapshot(&mut h, "window");
    for (i, name) in [
        "panel_surface",
        "panel_partitions",
        "panel_spectrum",
        "panel_predictions",
        "panel_sweeps",
    ]
    .iter()
    .enumerate()
    {
        // Buttons in drawing order: predictions, spectrum (right column), sweeps, partitions,
        // surface.
        let order = [4, 3, 1, 0, 2];
        let buttons = h.get_all_by_label("maximise").collect::<Vec<_>>();
        assert_eq!(buttons.len(), 5);
        buttons[order[i]].click_accesskit();
        h.run();
        snapshot(&mut h, name);
        h.get_by_label("restore").click_accesskit();
        h.run();
    }
    // The heatmap view of the surface panel, with the pointer-free legend.
    h.get_by_label("heatmap").click_accesskit();
    h.run();
    snapshot(&mut h, "panel_surface_heatmap");
}

/// A broken file through the same path as File → Open: the error is shown and the model,
/// plan and predictions stay as they were.
#[test]
fn a_broken_model_file_leaves_the_current_model() {
    let Some(mut h) = harness() else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let bad = dir.path().join("broken.inn.safetensors");
    std::fs::write(
        &bad,
        &assets::TORCHINTEGRAL_MODEL[..assets::TORCHINTEGRAL_MODEL.len() / 2],
    )
    .expect("write");
    let before_probs = h.state().state.probs.clone();
    let before_name = h.state().state.model.doc.name.clone();
    let result = load_model_file(&bad, None).map(|m| (m, bad.display().to_string()));
    assert!(result.is_err());
    h.state_mut().apply_model(result);
    h.run();
    let s = &h.state().state;
    assert_eq!(s.model.doc.name, before_name);
    assert_eq!(s.probs, before_probs);
    let err = s.error.clone().expect("an error is shown");
    assert!(err.contains("broken.inn.safetensors"), "{err}");
    assert!(
        h.query_by_label_contains("broken.inn.safetensors")
            .is_some(),
        "the error is on screen"
    );

    // A checkpoint without its manifest is refused with a reason, too.
    let pt = dir.path().join("model.pt");
    std::fs::write(&pt, b"not a zip").expect("write");
    let err = load_model_file(&pt, None).expect_err("needs a manifest");
    assert!(err.contains("manifest"), "{err}");
}

/// The data behind the panels, as the CSV export writes it.
#[test]
fn panels_export_the_numbers_behind_them_as_csv() {
    let Some(h) = harness() else { return };
    let app = h.state();
    let predictions = app.panel_csv(PanelKind::Predictions);
    let rows: Vec<&str> = predictions.lines().collect();
    assert_eq!(rows.len(), 11, "{predictions}");
    let total: f64 = rows[1..]
        .iter()
        .map(|r| {
            r.split(',')
                .nth(1)
                .and_then(|v| v.parse::<f64>().ok())
                .expect("probability")
        })
        .sum();
    assert!((total - 1.0).abs() < 1e-5, "{total}");

    // Full size on uniform partitions: q·τ is 1 inside and 0.5 at both ends (the fixture
    // README's statement about TorchIntegral's trapezoid rule), for every group with quadrature.
    let partitions = app.panel_csv(PanelKind::Partitions);
    let rows: Vec<Vec<&str>> = partitions
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    assert_eq!(rows.len(), 16 + 64 + 32);
    for r in rows.iter().filter(|r| !r[4].is_empty()) {
        let (i, w): (usize, f64) = (r[1].parse().expect("index"), r[4].parse().expect("weight"));
        let n = rows.iter().filter(|x| x[0] == r[0]).count();
        let want = if i == 0 || i + 1 == n { 0.5 } else { 1.0 };
        assert!((w - want).abs() < 1e-5, "group {} point {i}: {w}", r[0]);
    }

    // The surface follows conv_2.weight: one row per (output, input) channel pair at the tap.
    let surface = app.panel_csv(PanelKind::Surface);
    assert_eq!(surface.lines().count(), 1 + 32 * 16);
}

/// The demo INN with its discrete twin: the twin follows the INN's widths (L1-pruned) in the
/// predictions panel, and a resolution sweep runs in the background, can be cancelled, and
/// draws one INN and one twin point per resolution. The twin's full-width point is checked
/// against the twin run directly on the CPU engine.
#[test]
fn the_twin_follows_the_sliders_and_sweeps_run_in_the_background() {
    let Some(mut h) = harness_on(
        assets::demo_model(),
        "bundled demo",
        Some(assets::demo_twin()),
    ) else {
        return;
    };
    let twin = h.state().state.twin.as_ref().expect("a twin");
    let full = twin.widths.clone();
    let total: f32 = twin.probs.iter().sum();
    assert!((total - 1.0).abs() < 1e-5, "{total}");
    slider(&h, "keep %").set_value_accesskit(50.0);
    h.run();
    let s = &h.state().state;
    let halves: Vec<usize> = full.iter().map(|w| w / 2).collect();
    assert_eq!(s.twin.as_ref().expect("twin").widths, halves);
    let inn_sizes: Vec<usize> = s.resolved.partitions.values().map(Vec::len).collect();
    assert_eq!(inn_sizes, halves, "the twin is pruned to the INN's widths");

    // Cancel: nothing is kept. (All 1 000 bundled images, so that it cannot finish first.)
    h.state_mut().sweeps.limit = None;
    h.get_by_label("Run sweep").click_accesskit();
    h.run();
    assert!(h.state().sweeps.is_running());
    h.get_by_label("Cancel").click_accesskit();
    // The background thread asks for repaints until it sees the cancel (after the image it is
    // on): step until the window settles.
    let start = std::time::Instant::now();
    while h.try_run().is_err() {
        assert!(
            start.elapsed().as_secs() < 60,
            "the window did not settle after Cancel"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(!h.state().sweeps.is_running());
    assert!(h.state().sweeps.rows().is_empty());

    // A full run on 40 images, back at full width. (It may finish within the frames that
    // `run` steps, so it is not required to be still running here.)
    h.state_mut().sweeps.limit = Some(40);
    slider(&h, "keep %").set_value_accesskit(100.0);
    h.run();
    h.get_by_label("Run sweep").click_accesskit();
    h.run();
    let start = std::time::Instant::now();
    while h.state().sweeps.is_running() {
        assert!(start.elapsed().as_secs() < 600, "the sweep did not finish");
        std::thread::sleep(std::time::Duration::from_millis(50));
        h.run();
    }
    assert_eq!(h.state().sweeps.error(), None);
    let rows = h.state().sweeps.rows().to_vec();
    let inn = rows
        .iter()
        .filter(|r| r.net == innscope::sweep::Net::Inn)
        .count();
    let twin_rows: Vec<_> = rows
        .iter()
        .filter(|r| r.net == innscope::sweep::Net::Twin)
        .collect();
    assert!(inn >= 7 && inn == twin_rows.len(), "{rows:?}");
    assert!(rows.iter().all(|r| r.score.examples == 40));

    // The twin at 28 px, full width, on the first 40 bundled images, run directly.
    let model = assets::demo_twin();
    let plan = model.resolve(&model.default_plan()).expect("plan");
    let engine = innscope::engine::cpu::CpuEngine::new(&model, &plan).expect("engine");
    let data = assets::eval_subset().expect("subset");
    let imgs: Vec<&[u8]> = (0..40).map(|i| data.images.image(i)).collect();
    let x = innscope::data::input::grey_batch(&imgs, 28, 28, &model.doc.input, [28, 28]);
    let logits = engine.forward(&model, x.view()).expect("forward");
    let correct = innscope::eval::argmax_rows(&logits)
        .into_iter()
        .zip(&data.labels)
        .filter(|(k, l)| *k == usize::from(**l))
        .count();
    let at_native = twin_rows
        .iter()
        .find(|r| r.resolution == 28)
        .expect("a 28 px point");
    assert_eq!(at_native.score.correct, correct);
    h.run();
    assert!(
        h.query_by_label_contains("40 images").is_some(),
        "the data is named"
    );
}

/// With the GPU engine the heatmap of discrete weights is coloured on the GPU and drawn from
/// its texture, with no weights read back on a slider tick; on screen it is the CPU engine's
/// heatmap of the same slice, and the CSV export (which does read the weight back) has the
/// same numbers.
#[test]
fn the_gpu_heatmap_shows_what_the_cpu_heatmap_shows() {
    let model = assets::torchintegral_model();
    let Some(mut gpu) = harness_with(model.clone(), "reference", EngineChoice::Gpu) else {
        return;
    };
    let Some(mut cpu) = harness_with(model, "reference", EngineChoice::Cpu) else {
        return;
    };
    assert!(matches!(
        gpu.state().state.engine,
        innscope::engine::Engine::Gpu(_)
    ));
    let mut images = Vec::new();
    for h in [&mut gpu, &mut cpu] {
        slider(h, "keep %").set_value_accesskit(60.0);
        h.run();
        // Surface panel maximised (the last "maximise" button in drawing order), heatmap view.
        let buttons = h.get_all_by_label("maximise").collect::<Vec<_>>();
        buttons[4].click_accesskit();
        h.run();
        h.get_by_label("heatmap").click_accesskit();
        h.run();
        h.run();
        images.push(h.render().expect("rendered"));
    }
    assert!(!gpu.state().state.weight_on_host(), "nothing read back");
    // The band between the heatmap's caption and the hint under it: heatmap and legend.
    let band = |h: &Harness<'_, InnscopeApp>| {
        let top = h.get_by_label_contains("discrete weights W").rect();
        let bottom = h.get_by_label("hover for exact values").rect();
        (top.left(), top.bottom() + 2.0, bottom.top() - 2.0)
    };
    let (gb, cb) = (band(&gpu), band(&cpu));
    assert_eq!(gb, cb, "the heatmaps sit at the same place");
    let (left, top, bottom) = gb;
    let ppp = gpu.ctx.pixels_per_point();
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "on screen"
    )]
    let (x0, y0, y1) = (
        (left * ppp) as u32,
        (top * ppp).ceil() as u32,
        (bottom * ppp) as u32,
    );
    assert!(y1 > y0 + 100, "a heatmap of some size");
    let (a, b) = (&images[0], &images[1]);
    let mut differing = 0;
    let mut coloured = 0;
    for y in y0..y1 {
        for x in x0..a.width() {
            let (p, q) = (a.get_pixel(x, y).0, b.get_pixel(x, y).0);
            if p.iter().zip(q).any(|(u, v)| u.abs_diff(v) > 2) {
                differing += 1;
            }
            if p[0].abs_diff(p[2]) > 40 {
                coloured += 1;
            }
        }
    }
    assert_eq!(
        differing, 0,
        "GPU and CPU heatmaps differ in {differing} pixels"
    );
    assert!(
        coloured > 1000,
        "the band shows coloured weights ({coloured} pixels)"
    );

    // The value under the pointer, read where the weight is.
    let mut labels = Vec::new();
    for h in [&mut gpu, &mut cpu] {
        let at = egui::pos2(left + 200.0, (top + bottom) / 2.0);
        h.hover_at(at);
        h.run();
        let node = h.get_by_label_contains("W[");
        let label = node
            .accesskit_node()
            .label()
            .or_else(|| node.value())
            .expect("a value label");
        labels.push(label);
    }
    assert_eq!(labels[0], labels[1]);

    // The CSV export reads the GPU's weight back: the CPU engine's numbers.
    let (g, c) = (
        gpu.state().panel_csv(PanelKind::Surface),
        cpu.state().panel_csv(PanelKind::Surface),
    );
    assert_eq!(g.lines().count(), c.lines().count());
    assert!(g.lines().count() > 100);
    for (x, y) in g.lines().zip(c.lines()).skip(1) {
        let value = |l: &str| l.rsplit(',').next().and_then(|v| v.parse::<f32>().ok());
        let (x, y) = (value(x).expect("number"), value(y).expect("number"));
        assert!((x - y).abs() <= 1e-6 * y.abs().max(1.0), "{x} vs {y}");
    }
}
