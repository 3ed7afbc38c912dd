//! A heatmap widget: a 2-D array drawn as a texture with axes labels, a colour legend, and
//! the exact value under the pointer.

use eframe::egui::{
    self, Color32, ColorImage, Rect, Sense, TextureHandle, TextureOptions, Vec2, pos2,
};
use ndarray::ArrayView2;

use super::theme;

/// Colour scale of a heatmap.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Scale {
    /// Signed values, symmetric around zero (diverging map), `±max|v|`.
    Signed,
    /// Values mapped `min..max` on viridis.
    Sequential,
}

/// Range of the colour scale for `values`.
#[must_use]
pub fn range(values: ArrayView2<'_, f32>, scale: Scale) -> (f32, f32) {
    let finite = values.iter().copied().filter(|v| v.is_finite());
    match scale {
        Scale::Signed => {
            let m = finite.fold(0.0_f32, |a, v| a.max(v.abs())).max(1e-12);
            (-m, m)
        }
        Scale::Sequential => {
            let (lo, hi) = finite.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
            if lo.is_finite() {
                (lo, hi.max(lo + 1e-12))
            } else {
                (0.0, 1.0)
            }
        }
    }
}

/// Colour of `v` on a scale with range `(lo, hi)`.
#[must_use]
pub fn color(v: f32, lo: f32, hi: f32, scale: Scale) -> Color32 {
    match scale {
        Scale::Signed => theme::diverging(v / hi.max(1e-12)),
        Scale::Sequential => theme::viridis((v - lo) / (hi - lo)),
    }
}

/// Show `values` (rows top to bottom) in `size`, with a legend; returns the hovered cell and
/// its value.
pub fn show(
    ui: &mut egui::Ui,
    id: &str,
    values: ArrayView2<'_, f32>,
    scale: Scale,
    size: Vec2,
    texture: &mut Option<TextureHandle>,
) -> Option<((usize, usize), f32)> {
    let (rows, cols) = values.dim();
    if rows == 0 || cols == 0 {
        ui.label("(empty)");
        return None;
    }
    let (lo, hi) = range(values, scale);
    // Every k-th row or column where the array is larger than a texture may be (the range,
    // and the value under the pointer, still come from every entry).
    let shown = fitted(values, ui.ctx().input(|i| i.max_texture_side));
    let pixels: Vec<Color32> = shown.iter().map(|&v| color(v, lo, hi, scale)).collect();
    let image = ColorImage::new([shown.ncols(), shown.nrows()], pixels);
    match texture {
        Some(t) => t.set(image, TextureOptions::NEAREST),
        None => *texture = Some(ui.ctx().load_texture(id, image, TextureOptions::NEAREST)),
    }
    let mut hovered = None;
    ui.horizontal(|ui| {
        let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
        if let Some(t) = texture.as_ref() {
            ui.painter().image(
                t.id(),
                rect,
                Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
                Color32::WHITE,
            );
        }
        if let Some(p) = response.hover_pos() {
            let (r, c) = cell_at(rect, p, rows, cols);
            hovered = Some(((r, c), values[[r, c]]));
        }
        legend(ui, lo, hi, scale, size.y);
    });
    hovered
}

/// Every k-th row and l-th column of `values`, the smallest k and l for which neither side
/// exceeds `max_side` (all of it when it fits).
#[must_use]
pub fn fitted(values: ArrayView2<'_, f32>, max_side: usize) -> ArrayView2<'_, f32> {
    let max_side = max_side.max(1);
    let k = values.nrows().div_ceil(max_side).max(1);
    let l = values.ncols().div_ceil(max_side).max(1);
    #[expect(clippy::cast_possible_wrap, reason = "steps are small")]
    values.slice_move(ndarray::s![..;k as isize, ..;l as isize])
}

/// The cell of a `rows × cols` grid drawn in `rect` under point `p` (clamped to the grid).
#[must_use]
pub fn cell_at(rect: Rect, p: egui::Pos2, rows: usize, cols: usize) -> (usize, usize) {
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "pointer inside the rect; negative values saturate to 0"
    )]
    let cell = (
        (((p.y - rect.top()) / rect.height() * rows as f32) as usize).min(rows.saturating_sub(1)),
        (((p.x - rect.left()) / rect.width() * cols as f32) as usize).min(cols.saturating_sub(1)),
    );
    cell
}

/// A vertical colour bar with its end values.
pub fn legend(ui: &mut egui::Ui, lo: f32, hi: f32, scale: Scale, height: f32) {
    ui.vertical(|ui| {
        ui.label(egui::RichText::new(format!("{hi:.3}")).small());
        let (rect, _) =
            ui.allocate_exact_size(Vec2::new(12.0, (height - 36.0).max(20.0)), Sense::hover());
        let steps = 32;
        for i in 0..steps {
            #[expect(clippy::cast_precision_loss, reason = "32 steps")]
            let (t0, t1) = (i as f32 / steps as f32, (i + 1) as f32 / steps as f32);
            let v = hi - (hi - lo) * (t0 + t1) / 2.0;
            let r = Rect::from_min_max(
                pos2(rect.left(), rect.top() + rect.height() * t0),
                pos2(rect.right(), rect.top() + rect.height() * t1),
            );
            ui.painter().rect_filled(r, 0.0, color(v, lo, hi, scale));
        }
        ui.label(egui::RichText::new(format!("{lo:.3}")).small());
    });
}
