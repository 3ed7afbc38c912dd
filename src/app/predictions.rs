//! Output predictions: class probabilities now (bar chart) beside the reference (full size,
//! native resolution) and, where the model has one, the discrete twin at the same widths
//! (L1-pruned) and resolution (resized input); top-1 agreement and the KL divergence.

use eframe::egui;
use egui_plot::{Bar, BarChart, Legend, Plot};

use super::state::State;
use super::theme;

/// Draw the panel.
pub fn show(ui: &mut egui::Ui, state: &State) {
    let classes = &state.model.doc.classes;
    let (now, reference) = state.top1();
    let name = |i: Option<usize>| i.and_then(|i| classes.get(i)).map_or("-", String::as_str);
    ui.horizontal_wrapped(|ui| {
        ui.label(
            egui::RichText::new(format!("now: {}", name(now)))
                .color(theme::NOW)
                .strong(),
        );
        ui.label(
            egui::RichText::new(format!("reference: {}", name(reference)))
                .color(theme::REFERENCE)
                .strong(),
        );
        if let Some(twin) = &state.twin {
            ui.label(
                egui::RichText::new(format!("twin: {}", name(state.twin_top1())))
                    .color(theme::TWIN)
                    .strong(),
            )
            .on_hover_text(format!(
                "{}, L1-pruned to widths {:?}, input resized to {} px",
                twin.model.doc.name, twin.widths, state.resolved.resolution[0]
            ));
        }
        let agree = now.is_some() && now == reference;
        ui.label(if agree {
            "top-1 agrees"
        } else {
            "top-1 differs"
        });
        if let Some(kl) = state.kl_from_reference() {
            // Moved to the next line whole when the row is full, not broken inside.
            ui.add(
                egui::Label::new(format!("KL(ref || now) = {kl:.4} nats"))
                    .wrap_mode(egui::TextWrapMode::Extend),
            );
        }
    });
    // Horizontal bars: class names on the vertical axis, first class at the top.
    let n = classes.len();
    let twin = state.twin.as_ref().map(|t| t.probs.as_slice());
    // Three bars per class with a twin, two without.
    let (width, step) = if twin.is_some() {
        (0.26, 0.28)
    } else {
        (0.38, 0.2)
    };
    let bars = |probs: &[f32], offset: f64, color| -> Vec<Bar> {
        probs
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                #[expect(clippy::cast_precision_loss, reason = "few classes")]
                let y = (n - 1 - i) as f64 + offset;
                Bar::new(y, f64::from(p) * 100.0)
                    .width(width)
                    .fill(color)
                    .name(classes.get(i).cloned().unwrap_or_default())
            })
            .collect()
    };
    let labels = classes.clone();
    Plot::new("predictions")
        .legend(Legend::default().position(egui_plot::Corner::RightTop))
        .x_axis_label("probability (%)")
        .include_x(0.0)
        .include_x(135.0)
        .allow_scroll(false)
        .allow_drag(false)
        .allow_zoom(false)
        .y_grid_spacer(egui_plot::uniform_grid_spacer(|_| [1.0, 5.0, 10.0]))
        .y_axis_formatter(move |mark, _| {
            let i = mark.value.round();
            #[expect(
                clippy::cast_possible_truncation,
                clippy::cast_sign_loss,
                reason = "class index"
            )]
            let row = i as usize;
            if (mark.value - i).abs() < 1e-6 && i >= 0.0 && row < labels.len() {
                labels[labels.len() - 1 - row].clone()
            } else {
                String::new()
            }
        })
        .show(ui, |plot| {
            plot.bar_chart(
                BarChart::new("INN now", bars(&state.probs, step, theme::NOW))
                    .horizontal()
                    .color(theme::NOW),
            );
            if !state.reference.is_empty() {
                plot.bar_chart(
                    BarChart::new(
                        "reference (full size, native)",
                        bars(
                            &state.reference,
                            if twin.is_some() { 0.0 } else { -step },
                            theme::REFERENCE,
                        ),
                    )
                    .horizontal()
                    .color(theme::REFERENCE),
                );
            }
            if let Some(probs) = twin {
                plot.bar_chart(
                    BarChart::new(
                        "discrete twin (L1-pruned, resized input)",
                        bars(probs, -step, theme::TWIN),
                    )
                    .horizontal()
                    .color(theme::TWIN),
                );
            }
        });
}

/// The numbers behind the panel as CSV: per class, probability now and in the reference, and
/// the logit now.
#[must_use]
pub fn csv(state: &State) -> String {
    let mut out =
        String::from("class,probability_now,probability_reference,logit_now,probability_twin\n");
    let twin: &[f32] = state.twin.as_ref().map_or(&[], |t| t.probs.as_slice());
    for (i, class) in state.model.doc.classes.iter().enumerate() {
        let get = |v: &[f32]| {
            v.get(i)
                .map_or(String::new(), std::string::ToString::to_string)
        };
        out.push_str(&format!(
            "\"{}\",{},{},{},{}\n",
            class.replace('"', "'"),
            get(&state.probs),
            get(&state.reference),
            get(&state.logits),
            get(twin)
        ));
    }
    out
}
