//! Partitions: per group, the points in use at the current size against the uniform ones and
//! the learned ones, and the quadrature weights they get, so a person sees where a learned
//! partition crowds its points (and where it is unsorted or leaves [-1, 1]).

use eframe::egui;
use egui_plot::{Legend, Line, MarkerShape, Plot, PlotPoints, Points};

use super::state::State;
use super::theme;
use crate::inn::partition::{is_sorted, linspace};
use crate::inn::quadrature::trapezoid;

/// The points group `id` uses under the current plan.
fn points_in_use(state: &State, id: crate::inn::GroupId) -> Vec<f32> {
    state
        .resolved
        .partitions
        .get(&id)
        .cloned()
        .unwrap_or_default()
}

/// τ of the first parameter whose quadrature runs along an axis of group `id`.
fn group_tau(state: &State, id: crate::inn::GroupId) -> Option<f32> {
    state.model.doc.params.iter().find_map(|p| {
        p.layout
            .quadrature
            .filter(|q| {
                p.layout.axes.get(q.dim) == Some(&crate::inn::AxisKind::Channel { group: id })
            })
            .map(|q| q.tau)
    })
}

/// A plot over positions in [-1, 1], with room on the right for its legend.
fn position_plot<'a>(id: &'a str, height: f32, y_label: &'a str) -> Plot<'a> {
    Plot::new(id)
        .height(height)
        .legend(Legend::default().position(egui_plot::Corner::RightTop))
        .include_x(-1.1)
        .include_x(2.2)
        .x_axis_label("position in [-1, 1]")
        .y_axis_label(y_label)
        .allow_scroll(false)
}

/// Draw the panel. Items of one kind share a name across groups, so the legend has one entry
/// per kind (the rows are labelled by group id, and the group sizes are beside the sliders).
pub fn show(ui: &mut egui::Ui, state: &State) {
    let groups = &state.model.doc.groups;
    // Both captions are one line (truncated, full text on hover), so the plots can share exactly
    // the height that is left: content that overflows would make the panel grow every frame.
    let caption = |ui: &mut egui::Ui, text: &str| {
        ui.add(egui::Label::new(egui::RichText::new(text).small()).truncate());
    };
    caption(
        ui,
        if groups.iter().any(|g| g.learned.is_some()) {
            "points per group (one row each): in use (orange), uniform at this size (grey, below), learned (green, above)"
        } else {
            "points per group (one row each): in use (orange), uniform at this size (grey, below); this model has no learned partitions"
        },
    );
    let second_caption =
        ui.text_style_height(&egui::TextStyle::Small) + 3.0 * ui.spacing().item_spacing.y;
    let half = ((ui.available_height() - second_caption) / 2.0).max(40.0);
    position_plot("partitions-points", half, "group id").show(ui, |plot| {
        for (row, g) in groups.iter().enumerate() {
            #[expect(clippy::cast_precision_loss, reason = "few groups")]
            let y = row as f64;
            let used = points_in_use(state, g.id);
            let uniform = linspace(used.len());
            plot.points(
                Points::new(
                    "uniform",
                    PlotPoints::from_iter(uniform.iter().map(|&x| [f64::from(x), y - 0.2])),
                )
                .color(theme::UNIFORM)
                .radius(1.5),
            );
            if let Some(learned) = &g.learned {
                plot.points(
                    Points::new(
                        "learned",
                        PlotPoints::from_iter(learned.iter().map(|&x| [f64::from(x), y + 0.2])),
                    )
                    .color(theme::LEARNED)
                    .shape(MarkerShape::Diamond)
                    .radius(3.0),
                );
            }
            let bad: Vec<[f64; 2]> = used
                .windows(2)
                .enumerate()
                .filter(|(_, w)| w[1] < w[0])
                .map(|(i, _)| [f64::from(used[i + 1]), y])
                .chain(
                    used.iter()
                        .filter(|x| x.abs() > 1.0)
                        .map(|&x| [f64::from(x), y]),
                )
                .collect();
            plot.points(
                Points::new(
                    "in use",
                    PlotPoints::from_iter(used.iter().map(|&x| [f64::from(x), y])),
                )
                .color(theme::NOW)
                .radius(3.0),
            );
            if !bad.is_empty() {
                plot.points(
                    Points::new("out of order or beyond ±1", PlotPoints::from(bad))
                        .color(theme::WARN)
                        .shape(MarkerShape::Cross)
                        .radius(6.0),
                );
            }
        }
    });
    caption(
        ui,
        "quadrature weights q·τ of the points in use (trapezoid; τ of the first layer using the group)",
    );
    position_plot("partitions-quadrature", half, "q · τ").show(ui, |plot| {
        for g in groups {
            let used = points_in_use(state, g.id);
            let tau = group_tau(state, g.id);
            let (Some(tau), Ok(q)) = (tau, trapezoid(&used)) else {
                continue;
            };
            let mut pts: Vec<[f64; 2]> = used
                .iter()
                .zip(&q)
                .map(|(&x, &w)| [f64::from(x), f64::from(w * tau)])
                .collect();
            pts.sort_by(|a, b| a[0].total_cmp(&b[0]));
            let name = format!(
                "group {}{}",
                g.id,
                if is_sorted(&used) {
                    ""
                } else {
                    " (unsorted: negative weights)"
                }
            );
            plot.line(Line::new(name.clone(), PlotPoints::from(pts.clone())).width(1.0));
            plot.points(Points::new(name, PlotPoints::from(pts)).radius(2.5));
        }
    });
}

/// The numbers behind the panel as CSV: per group and point, the position in use, the uniform
/// position at the same size, and the trapezoid weight times τ (empty where the group has no
/// quadrature).
#[must_use]
pub fn csv(state: &State) -> String {
    let mut out = String::from("group,index,point,uniform_point,quadrature_weight_times_tau\n");
    for g in &state.model.doc.groups {
        let used = points_in_use(state, g.id);
        let uniform = linspace(used.len());
        let tau = group_tau(state, g.id);
        let q = tau.and_then(|t| trapezoid(&used).ok().map(|q| (q, t)));
        for (i, (x, u)) in used.iter().zip(&uniform).enumerate() {
            let w = q
                .as_ref()
                .map_or(String::new(), |(q, t)| (q[i] * t).to_string());
            out.push_str(&format!("{},{i},{x},{u},{w}\n", g.id));
        }
    }
    out
}
