//! The input: bundled samples, an image from a file, a canvas to draw on, and the picture as
//! the network sees it at the current resolution.

use eframe::egui::{self, Color32, ColorImage, Sense, TextureHandle, TextureOptions, Vec2, pos2};
use image::{DynamicImage, GrayImage};

use super::state::State;
use crate::data::assets::SAMPLES;

/// Canvas side in pixels (drawn at the model's native grid).
const CANVAS: usize = 28;

/// Drawing canvas and preview texture.
pub struct InputPanel {
    canvas: Vec<u8>,
    preview: Option<TextureHandle>,
}

impl Default for InputPanel {
    fn default() -> Self {
        Self {
            canvas: vec![0; CANVAS * CANVAS],
            preview: None,
        }
    }
}

/// Decode a bundled sample.
#[must_use]
pub fn sample(index: usize) -> Option<(DynamicImage, String)> {
    let (name, bytes) = SAMPLES.get(index)?;
    let img = image::load_from_memory(bytes).ok()?;
    Some((img, (*name).to_string()))
}

impl InputPanel {
    /// Show the input controls; returns true when the user asked to open an image file.
    pub fn show(&mut self, ui: &mut egui::Ui, state: &mut State) -> bool {
        let Self { canvas, preview } = self;
        let mut open = false;
        ui.horizontal_wrapped(|ui| {
            ui.label("samples:");
            for (i, (name, _)) in SAMPLES.iter().enumerate() {
                let short = name.split('_').nth(1).unwrap_or(name);
                if ui.small_button(short).on_hover_text(*name).clicked()
                    && let Some((img, name)) = sample(i)
                {
                    state.set_image(img, name);
                }
            }
        });
        ui.horizontal(|ui| {
            if ui
                .button("Open image…")
                .on_hover_text("Any common format (Ctrl+I), or drop a file on the window.")
                .clicked()
            {
                open = true;
            }
            if ui.button("Clear canvas").clicked() {
                canvas.fill(0);
            }
        });
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.label(egui::RichText::new("draw").small());
                if draw_canvas(ui, canvas) {
                    let img = GrayImage::from_raw(CANVAS as u32, CANVAS as u32, canvas.clone());
                    if let Some(img) = img {
                        state.set_image(DynamicImage::ImageLuma8(img), "drawing".into());
                    }
                }
            });
            ui.vertical(|ui| {
                let [h, w] = state.resolved.resolution;
                ui.label(egui::RichText::new(format!("network input {w}×{h}")).small());
                let x = &state.input;
                let spec = &state.model.doc.input;
                let pixels: Vec<Color32> = (0..h * w)
                    .map(|i| {
                        let v = x[[0, 0, i / w, i % w]] * spec.std[0] + spec.mean[0];
                        #[expect(
                            clippy::cast_possible_truncation,
                            clippy::cast_sign_loss,
                            reason = "clamped to 0..=255"
                        )]
                        let g = (v.clamp(0.0, 1.0) * 255.0).round() as u8;
                        Color32::from_gray(g)
                    })
                    .collect();
                let image = ColorImage::new([w, h], pixels);
                let tex = match preview {
                    Some(t) => {
                        t.set(image, TextureOptions::NEAREST);
                        t
                    }
                    None => preview.insert(ui.ctx().load_texture(
                        "input-preview",
                        image,
                        TextureOptions::NEAREST,
                    )),
                };
                ui.image((tex.id(), Vec2::splat(112.0)));
                ui.label(egui::RichText::new(&state.image_name).small().weak());
            });
        });
        open
    }
}

/// A 28×28 canvas: drag to paint white, right-drag to erase. Returns true when it changed.
fn draw_canvas(ui: &mut egui::Ui, canvas: &mut [u8]) -> bool {
    let size = Vec2::splat(112.0);
    let (rect, response) = ui.allocate_exact_size(size, Sense::drag());
    let cell = rect.width() / CANVAS as f32;
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 2.0, Color32::BLACK);
    for (i, &v) in canvas.iter().enumerate() {
        if v > 0 {
            let (y, x) = (i / CANVAS, i % CANVAS);
            let min = pos2(rect.left() + x as f32 * cell, rect.top() + y as f32 * cell);
            painter.rect_filled(
                egui::Rect::from_min_size(min, Vec2::splat(cell)),
                0.0,
                Color32::from_gray(v),
            );
        }
    }
    let mut changed = false;
    if let Some(p) = response.interact_pointer_pos() {
        let erase = ui.input(|i| i.pointer.secondary_down());
        let cx = (p.x - rect.left()) / cell;
        let cy = (p.y - rect.top()) / cell;
        for dy in -1_i32..=1 {
            for dx in -1_i32..=1 {
                #[expect(clippy::cast_possible_truncation, reason = "canvas coordinates")]
                let (x, y) = (cx as i32 + dx, cy as i32 + dy);
                if (0..CANVAS as i32).contains(&x) && (0..CANVAS as i32).contains(&y) {
                    #[expect(clippy::cast_sign_loss, reason = "checked non-negative")]
                    let i = y as usize * CANVAS + x as usize;
                    let strength: u8 = if dx == 0 && dy == 0 { 255 } else { 140 };
                    let v = if erase { 0 } else { canvas[i].max(strength) };
                    changed |= v != canvas[i];
                    canvas[i] = v;
                }
            }
        }
    }
    changed
}
