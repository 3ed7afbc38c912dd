//! Output predictions: class probabilities now (bar chart) beside the reference (full size,
//! native resolution), with top-1 agreement and the KL divergence.

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
        let agree = now.is_some() && now == reference;
        ui.label(if agree {
            "top-1 agrees"
        } else {
            "top-1 differs"
        });
        if let Some(kl) = state.kl_from_reference() {
            ui.label(format!("KL(ref || now) = {kl:.4} nats"));
        }
    });
    // Horizontal bars: class names on the vertical axis, first class at the top.
    let n = classes.len();
    let bars = |probs: &[f32], offset: f64, color| -> Vec<Bar> {
        probs
            .iter()
            .enumerate()
            .map(|(i, &p)| {
                #[expect(clippy::cast_precision_loss, reason = "few classes")]
                let y = (n - 1 - i) as f64 + offset;
                Bar::new(y, f64::from(p) * 100.0)
                    .width(0.38)
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
                BarChart::new("now", bars(&state.probs, 0.2, theme::NOW))
                    .horizontal()
                    .color(theme::NOW),
            );
            if !state.reference.is_empty() {
                plot.bar_chart(
                    BarChart::new(
                        "reference (full size, native)",
                        bars(&state.reference, -0.2, theme::REFERENCE),
                    )
                    .horizontal()
                    .color(theme::REFERENCE),
                );
            }
        });
}

/// The numbers behind the panel as CSV: per class, probability now and in the reference, and
/// the logit now.
#[must_use]
pub fn csv(state: &State) -> String {
    let mut out = String::from("class,probability_now,probability_reference,logit_now\n");
    for (i, class) in state.model.doc.classes.iter().enumerate() {
        let get = |v: &[f32]| {
            v.get(i)
                .map_or(String::new(), std::string::ToString::to_string)
        };
        out.push_str(&format!(
            "\"{}\",{},{},{}\n",
            class.replace('"', "'"),
            get(&state.probs),
            get(&state.reference),
            get(&state.logits)
        ));
    }
    out
}
