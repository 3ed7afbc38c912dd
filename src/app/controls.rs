//! The controls: a partition-size slider per group, keep %, partition kind, input resolution,
//! the engine in use and the frame time.

use eframe::egui;

use super::state::State;
use crate::inn::PartitionKind;

/// Draw the controls and apply what the user changed (in the same frame).
pub fn show(ui: &mut egui::Ui, state: &mut State, frame_ms: Option<f32>) {
    ui.heading("Partitions");
    let mut plan = state.plan.clone();
    let counts = state
        .model
        .group_param_counts(&state.resolved)
        .unwrap_or_default();
    let mut keep_pct = (state.mean_keep() * 100.0).round();
    let keep = ui
        .add(
            egui::Slider::new(&mut keep_pct, 5.0..=150.0)
                .suffix(" %")
                .text("keep %"),
        )
        .on_hover_text("Scale every group's partition size together (100 % = the trained width).");
    if keep.changed() {
        plan.set_keep(&state.model.doc.groups, keep_pct / 100.0);
    }
    for g in &state.model.doc.groups {
        let mut n = plan.size_of(g);
        let max = (g.original_size * 3 / 2).max(4);
        let label = format!("group {} size", g.id);
        let r = ui
            .add(egui::Slider::new(&mut n, 2..=max).text(label))
            .on_hover_text(format!(
                "Partition size of group {} ({}): original {}, {} parameters kept now.",
                g.id,
                g.label,
                g.original_size,
                counts.get(&g.id).copied().unwrap_or(0)
            ));
        ui.label(
            egui::RichText::new(format!(
                "  original {} · {} params{}",
                g.original_size,
                counts.get(&g.id).copied().unwrap_or(0),
                if g.learned.is_some() {
                    " · learned"
                } else {
                    ""
                }
            ))
            .small()
            .weak(),
        );
        if r.changed() {
            plan.sizes.insert(g.id, n);
        }
    }
    let any_learned = state.model.doc.groups.iter().any(|g| g.learned.is_some());
    ui.horizontal(|ui| {
        ui.label("partition").on_hover_text("Learned points where a group has them (resampled at other sizes), or uniform linspace.");
        if any_learned {
            ui.selectable_value(&mut plan.partition, PartitionKind::Learned, "learned");
            ui.selectable_value(&mut plan.partition, PartitionKind::Uniform, "uniform");
        } else {
            // "learned" would fall back to uniform for every group: no choice to offer.
            ui.label("uniform")
                .on_hover_text("This model has no learned partitions: every group is uniform.");
        }
    });
    ui.separator();
    ui.heading("Input");
    let native = state.model.native();
    let mut res = plan.resolution[0];
    let r = ui
        .add(egui::Slider::new(&mut res, (native[0] / 2).max(4)..=native[0] * 3).suffix(" px").text("resolution"))
        .on_hover_text(if state.model.is_resolution_continuous() {
            "Input resolution: kernels are resampled at the new pixel pitch (continuous spatial axes)."
        } else {
            "Input resolution: this model's kernels are discrete in space, so only the input is resized."
        });
    if r.changed() {
        plan.resolution = [res, res * native[1] / native[0].max(1)];
    }
    if ui
        .button("Reset")
        .on_hover_text("Full size, native resolution (Ctrl+R).")
        .clicked()
    {
        plan = state.model.default_plan();
    }
    state.set_plan(plan);
    ui.separator();
    ui.heading("Engine");
    ui.label(state.engine.describe());
    if let Some(note) = &state.engine_note {
        ui.label(
            egui::RichText::new(format!("CPU because: {note}"))
                .small()
                .weak(),
        );
    }
    let params = state.model.param_count(&state.resolved).unwrap_or(0);
    let full = state.full_params;
    #[expect(clippy::cast_precision_loss, reason = "display")]
    let pct = params as f64 / full.max(1) as f64 * 100.0;
    ui.label(format!("{params} parameters ({pct:.1} % of full)"));
    if let Some(frame_ms) = frame_ms {
        ui.label(format!(
            "re-discretize + forward: {:.2} ms",
            state.update_ms
        ));
        let (changed, all) = state.engine.last_change();
        ui.label(format!("tensors redone: {changed} of {all}"))
            .on_hover_text(
                "Only the tensors whose sampling the last change moved are re-discretized.",
            );
        ui.label(format!("frame: {frame_ms:.1} ms"));
    }
}
