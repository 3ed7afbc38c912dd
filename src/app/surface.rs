//! Spline weight surface: the selected layer's continuous kernel as a 3-D surface over
//! (output, input) channel position for one spatial tap, or over the kernel's rows and columns
//! for one channel pair; control values λ and the current partition's samples marked on it.
//! Drag to orbit, scroll to zoom. A heatmap view shows the discrete weights with the exact
//! value under the pointer.

use eframe::egui::{self, Color32, Mesh, Pos2, Sense, Shape, Stroke, Vec2, epaint::Vertex, pos2};

use super::gpu_view::{GpuView, slice_spec};
use super::heatmap::{self, Scale};
use super::layer_data::{Plane, PlanesCache, Slice, axis_names, plan_key};
use super::state::State;
use super::surface_gpu::{GpuVertex, SurfaceCallback};
use super::theme;

/// View state of the surface panel.
pub struct SurfacePanel {
    /// Show the heatmap of discrete weights instead of the 3-D surface.
    pub heatmap: bool,
    /// Which slice.
    pub slice: Slice,
    yaw: f32,
    pitch: f32,
    zoom: f32,
    texture: Option<egui::TextureHandle>,
    /// Draw with the wgpu pipeline of `surface_gpu` (installed on the window's renderer);
    /// the value says whether the target format is sRGB. `None`: an egui mesh.
    pub wgpu_target: Option<bool>,
}

impl Default for SurfacePanel {
    fn default() -> Self {
        Self {
            heatmap: false,
            slice: Slice::Channels { r: 1, s: 1 },
            yaw: 0.7,
            pitch: 0.9,
            zoom: 1.0,
            texture: None,
            wgpu_target: None,
        }
    }
}

struct Camera {
    center: Pos2,
    scale: f32,
    yaw: f32,
    pitch: f32,
}

impl Camera {
    /// Screen position and depth (larger is farther) of a point in the unit box.
    fn project(&self, x: f32, y: f32, z: f32) -> (Pos2, f32) {
        let (sy, cy) = self.yaw.sin_cos();
        let (sp, cp) = self.pitch.sin_cos();
        let u = x * cy - y * sy;
        let w = x * sy + y * cy;
        // Elevated view: the viewer looks along +w, tilted down by `pitch`.
        let up = z * cp + w * sp;
        let depth = w * cp - z * sp;
        (
            pos2(
                self.center.x + u * self.scale,
                self.center.y - up * self.scale,
            ),
            depth,
        )
    }
}

impl SurfacePanel {
    /// Draw the panel for the selected layer.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        state: &State,
        planes: &mut PlanesCache,
        gpu: Option<&mut GpuView>,
    ) {
        let Some(param) = state.layer() else {
            ui.label("This model has no weight to show.");
            return;
        };
        let lambda = &state.model.tensors[&param.name];
        let ndim = lambda.ndim();
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.heatmap, false, "surface");
            ui.selectable_value(&mut self.heatmap, true, "heatmap");
            if ndim == 4 {
                let (kh, kw) = (param.layout.shape[2], param.layout.shape[3]);
                match &mut self.slice {
                    Slice::Channels { r, s } => {
                        let l = ui.label("tap row");
                        ui.add(egui::DragValue::new(r).range(0..=kh.saturating_sub(1)))
                            .labelled_by(l.id);
                        let l = ui.label("column");
                        ui.add(egui::DragValue::new(s).range(0..=kw.saturating_sub(1)))
                            .labelled_by(l.id);
                        if ui
                            .small_button("over space")
                            .on_hover_text("Show the kernel's rows × columns for one channel pair.")
                            .clicked()
                        {
                            self.slice = Slice::Spatial { a: 0, b: 0 };
                        }
                    }
                    Slice::Spatial { a, b } => {
                        let l = ui.label("output channel");
                        ui.add(
                            egui::DragValue::new(a)
                                .range(0..=param.layout.shape[0].saturating_sub(1)),
                        )
                        .labelled_by(l.id);
                        let l = ui.label("input channel");
                        ui.add(
                            egui::DragValue::new(b)
                                .range(0..=param.layout.shape[1].saturating_sub(1)),
                        )
                        .labelled_by(l.id);
                        if ui
                            .small_button("over channels")
                            .on_hover_text("Show output × input channels for one spatial tap.")
                            .clicked()
                        {
                            self.slice = Slice::Channels {
                                r: kh / 2,
                                s: kw / 2,
                            };
                        }
                    }
                }
            }
        });
        if self.heatmap {
            self.show_heatmap(ui, state, ndim, gpu);
            return;
        }
        let Some(data) = planes.get(state, self.slice) else {
            return;
        };
        let (rows_name, cols_name) = axis_names(ndim, self.slice);
        let size = Vec2::new(
            ui.available_width(),
            (ui.available_height() - 24.0).max(160.0),
        );
        let (rect, response) = ui.allocate_exact_size(size, Sense::drag());
        if response.dragged() {
            let d = response.drag_delta();
            self.yaw -= d.x * 0.01;
            self.pitch = (self.pitch + d.y * 0.01).clamp(0.05, 1.5);
        }
        if response.hovered() {
            let scroll = ui.input(|i| i.smooth_scroll_delta.y);
            self.zoom = (self.zoom * (1.0 + scroll * 0.002)).clamp(0.3, 4.0);
        }
        let painter = ui.painter_at(rect);
        let cam = Camera {
            center: rect.center() + Vec2::new(0.0, rect.height() * 0.08),
            scale: rect.width().min(rect.height()) * 0.36 * self.zoom,
            yaw: self.yaw,
            pitch: self.pitch,
        };
        let zmax = data
            .fine
            .values
            .iter()
            .chain(data.control.values.iter())
            .fold(1e-12_f32, |a, v| a.max(v.abs()));
        let zs = 0.7 / zmax;
        let colour_range = colour_range(&data.fine).unwrap_or(zmax);
        draw_box(&painter, &cam, ui.visuals().weak_text_color());
        let shown = decimated(&data.fine, MAX_QUADS_PER_SIDE);
        let quads = sorted_quads(&cam, &shown, zs, colour_range);
        if quads.is_empty() {
            draw_curve(&painter, &cam, &data.fine, zs);
        } else if let Some(srgb_target) = self.wgpu_target {
            // Drawn by wgpu in egui's render pass (shaders/surface.wgsl).
            let vertices = quads
                .iter()
                .flat_map(|(p, c)| {
                    [0, 1, 2, 0, 2, 3].map(|k| GpuVertex::new(p[k], rect, *c, srgb_target))
                })
                .collect();
            painter.add(eframe::egui_wgpu::Callback::new_paint_callback(
                rect,
                SurfaceCallback { vertices },
            ));
        } else {
            painter.add(Shape::mesh(mesh_of(&quads)));
        }
        draw_points(
            &painter,
            &cam,
            &data.control,
            zs,
            dot_radius(&cam, &data.control, 2.0),
            ui.visuals().strong_text_color(),
        );
        draw_points(
            &painter,
            &cam,
            &data.samples,
            zs,
            dot_radius(&cam, &data.samples, 3.5),
            theme::NOW,
        );
        let text = ui.visuals().text_color();
        let font = egui::FontId::proportional(12.0);
        let (p, _) = cam.project(0.0, -1.25, -1.0);
        painter.text(
            p,
            egui::Align2::CENTER_CENTER,
            format!("{cols_name} position"),
            font.clone(),
            text,
        );
        let (p, _) = cam.project(-1.25, 0.0, -1.0);
        painter.text(
            p,
            egui::Align2::CENTER_CENTER,
            format!("{rows_name} position"),
            font.clone(),
            text,
        );
        painter.text(
            rect.left_top() + Vec2::new(4.0, 4.0),
            egui::Align2::LEFT_TOP,
            format!(
                "height: F, the continuous kernel (max |F| {zmax:.3}); colour saturates at ±{colour_range:.3}"
            ),
            font,
            text,
        );
        ui.horizontal(|ui| {
            dot(ui, ui.visuals().strong_text_color());
            ui.label(
                egui::RichText::new(format!(
                    "control values λ ({}×{})",
                    data.control.rows.len(),
                    data.control.cols.len()
                ))
                .small(),
            );
            dot(ui, theme::NOW);
            ui.label(
                egui::RichText::new(format!(
                    "samples at the current partition ({}×{})",
                    data.samples.rows.len(),
                    data.samples.cols.len()
                ))
                .small(),
            );
            ui.label(
                egui::RichText::new("drag: orbit · scroll: zoom")
                    .small()
                    .weak(),
            );
        });
    }

    /// The numbers behind the panel as CSV: the discrete weights of the current slice, with
    /// each entry's position in [-1, 1] along both axes. With the GPU engine the weight is
    /// read back for the export.
    #[must_use]
    pub fn csv(&self, state: &State) -> String {
        let mut out = String::from("row,col,row_position,col_position,weight\n");
        let Some(p) = state.weight_slice(self.slice) else {
            return out;
        };
        for ((r, c), v) in p.values.indexed_iter() {
            out.push_str(&format!(
                "{r},{c},{},{},{v}\n",
                p.rows.get(r).copied().unwrap_or(f32::NAN),
                p.cols.get(c).copied().unwrap_or(f32::NAN)
            ));
        }
        out
    }

    fn show_heatmap(
        &mut self,
        ui: &mut egui::Ui,
        state: &State,
        ndim: usize,
        gpu: Option<&mut GpuView>,
    ) {
        if let Some(gpu) = gpu.filter(|g| g.serves(&state.engine)) {
            self.show_gpu_heatmap(ui, state, ndim, gpu);
            return;
        }
        let Some(plane) = state.weight_slice(self.slice).map(|p| p.values) else {
            ui.label("no discrete weight");
            return;
        };
        let size = self.heatmap_caption(ui, ndim, plane.dim(), "");
        let hovered = heatmap::show(
            ui,
            "surface-heatmap",
            plane.view(),
            Scale::Signed,
            size,
            &mut self.texture,
        );
        hover_label(ui, hovered);
    }

    /// The heatmap coloured on the GPU from the weights where they are (GPU engine).
    fn show_gpu_heatmap(&self, ui: &mut egui::Ui, state: &State, ndim: usize, gpu: &mut GpuView) {
        let Some(param) = state.layer() else {
            return;
        };
        let Some(spec) = state
            .engine
            .weight_shape(&param.name)
            .and_then(|shape| slice_spec(&shape, self.slice))
        else {
            ui.label("not a 2-D slice");
            return;
        };
        let size = self.heatmap_caption(ui, ndim, (spec.rows, spec.cols), ", drawn on the GPU");
        let key = (plan_key(state), state.generation);
        match gpu.heatmap(ui, &state.engine, &param.name, self.slice, key, size) {
            Ok(hovered) => hover_label(ui, hovered),
            Err(e) => {
                ui.colored_label(ui.visuals().error_fg_color, format!("GPU view: {e}"));
            }
        }
    }
}

impl SurfacePanel {
    /// The heatmap's caption (axes and size, then `note`); returns the size left for it.
    fn heatmap_caption(
        &self,
        ui: &mut egui::Ui,
        ndim: usize,
        (rows, cols): (usize, usize),
        note: &str,
    ) -> Vec2 {
        let (rows_name, cols_name) = axis_names(ndim, self.slice);
        ui.label(
            egui::RichText::new(format!(
                "discrete weights W: {rows_name}s down, {cols_name}s across ({rows}×{cols}){note}"
            ))
            .small(),
        );
        Vec2::new(
            (ui.available_width() - 70.0).max(80.0),
            (ui.available_height() - 40.0).max(80.0),
        )
    }
}

/// The exact value under the pointer, or a hint.
fn hover_label(ui: &mut egui::Ui, hovered: Option<((usize, usize), f32)>) {
    match hovered {
        Some(((r, c), v)) => ui.label(format!("W[{r}, {c}] = {v:.6}")),
        None => ui.label(egui::RichText::new("hover for exact values").small().weak()),
    };
}

/// A legend dot.
fn dot(ui: &mut egui::Ui, color: Color32) {
    let (rect, _) = ui.allocate_exact_size(Vec2::splat(10.0), Sense::hover());
    ui.painter().circle_filled(rect.center(), 4.0, color);
}

fn draw_box(painter: &egui::Painter, cam: &Camera, color: Color32) {
    let corners = [
        (-1.0, -1.0),
        (1.0, -1.0),
        (1.0, 1.0),
        (-1.0, 1.0),
        (-1.0, -1.0),
    ];
    let pts: Vec<Pos2> = corners
        .iter()
        .map(|&(x, y)| cam.project(x, y, -1.0).0)
        .collect();
    painter.add(Shape::line(pts, Stroke::new(1.0, color)));
    for &(x, y) in &corners[..4] {
        painter.line_segment(
            [cam.project(x, y, -1.0).0, cam.project(x, y, 1.0).0],
            Stroke::new(0.5, color.gamma_multiply(0.5)),
        );
    }
}

/// Quads of the fine surface projected to the screen, far to near, coloured by height.
/// Most quads along a side of the drawn surface: the fine plane of a wide layer has hundreds of
/// points a side (more than the panel has pixels to show them), and its quads are sorted and
/// sent every frame.
const MAX_QUADS_PER_SIDE: usize = 128;

/// `plane` with at most `max + 1` rows and columns, evenly picked (the first and last kept).
fn decimated(plane: &Plane, max: usize) -> std::borrow::Cow<'_, Plane> {
    let (nr, nc) = plane.values.dim();
    if nr <= max + 1 && nc <= max + 1 {
        return std::borrow::Cow::Borrowed(plane);
    }
    let pick = |n: usize| -> Vec<usize> {
        if n <= max + 1 {
            return (0..n).collect();
        }
        (0..=max).map(|k| k * (n - 1) / max).collect()
    };
    let (rows, cols) = (pick(nr), pick(nc));
    std::borrow::Cow::Owned(Plane {
        values: ndarray::Array2::from_shape_fn((rows.len(), cols.len()), |(i, j)| {
            plane.values[[rows[i], cols[j]]]
        }),
        rows: rows.iter().map(|&i| plane.rows[i]).collect(),
        cols: cols.iter().map(|&j| plane.cols[j]).collect(),
    })
}

/// The colour scale of the surface: the 98th percentile of |F|, so that a few spikes (common
/// in trained kernels) do not wash the rest of the surface out to the colour of zero. Heights
/// stay true to scale. `None` for an empty or all-zero plane.
fn colour_range(fine: &Plane) -> Option<f32> {
    let mut mags: Vec<f32> = fine
        .values
        .iter()
        .map(|v| v.abs())
        .filter(|v| v.is_finite())
        .collect();
    if mags.is_empty() {
        return None;
    }
    let k = (mags.len() - 1) * 98 / 100;
    let (_, &mut p98, _) = mags.select_nth_unstable_by(k, f32::total_cmp);
    (p98 > 0.0).then_some(p98)
}

fn sorted_quads(
    cam: &Camera,
    fine: &Plane,
    zs: f32,
    colour_range: f32,
) -> Vec<([Pos2; 4], Color32)> {
    let (nr, nc) = fine.values.dim();
    if nr < 2 || nc < 2 {
        return Vec::new();
    }
    let mut quads: Vec<(f32, [Pos2; 4], Color32)> = Vec::with_capacity((nr - 1) * (nc - 1));
    for i in 0..nr - 1 {
        for j in 0..nc - 1 {
            let corner = |a: usize, b: usize| {
                cam.project(fine.rows[a], fine.cols[b], fine.values[[a, b]] * zs)
            };
            let c = [
                corner(i, j),
                corner(i + 1, j),
                corner(i + 1, j + 1),
                corner(i, j + 1),
            ];
            let depth = c.iter().map(|p| p.1).sum::<f32>() / 4.0;
            let mean = (fine.values[[i, j]]
                + fine.values[[i + 1, j]]
                + fine.values[[i + 1, j + 1]]
                + fine.values[[i, j + 1]])
                / 4.0;
            quads.push((
                depth,
                [c[0].0, c[1].0, c[2].0, c[3].0],
                theme::diverging(mean / colour_range),
            ));
        }
    }
    quads.sort_by(|a, b| b.0.total_cmp(&a.0));
    quads.into_iter().map(|(_, p, c)| (p, c)).collect()
}

/// The surface as an egui mesh (when the window has no wgpu renderer).
fn mesh_of(quads: &[([Pos2; 4], Color32)]) -> Mesh {
    let mut mesh = Mesh::default();
    for (p, color) in quads {
        let base = u32::try_from(mesh.vertices.len()).unwrap_or(0);
        for q in p {
            mesh.vertices.push(Vertex {
                pos: *q,
                uv: egui::epaint::WHITE_UV,
                color: *color,
            });
        }
        mesh.indices
            .extend([base, base + 1, base + 2, base, base + 2, base + 3]);
    }
    mesh
}

/// Where entry `i` of an axis at `positions` is drawn: at its position, except that an axis of
/// one entry (a layer with one input channel, whose position is -1) runs through the middle of
/// the box rather than along its edge.
fn shown_at(positions: &[f32], i: usize) -> f32 {
    match positions {
        [_] | [] => 0.0,
        _ => positions[i.min(positions.len() - 1)],
    }
}

/// A single row or column (e.g. a layer with one input channel): a curve.
fn draw_curve(painter: &egui::Painter, cam: &Camera, fine: &Plane, zs: f32) {
    let pts: Vec<Pos2> = fine
        .values
        .indexed_iter()
        .map(|((i, j), &v)| {
            cam.project(shown_at(&fine.rows, i), shown_at(&fine.cols, j), v * zs)
                .0
        })
        .collect();
    painter.add(Shape::line(pts, Stroke::new(2.0, theme::REFERENCE)));
}

/// Radius of the markers of `plane`'s points: at most `max`, and less on a dense grid, so that
/// the markers of a wide partition (hundreds of points per side) leave the surface visible
/// between them.
fn dot_radius(cam: &Camera, plane: &Plane, max: f32) -> f32 {
    // The points span [-1, 1], 2 · scale pixels across before perspective.
    let per_side = plane.rows.len().max(plane.cols.len()).max(2) as f32;
    let spacing = 2.0 * cam.scale / (per_side - 1.0);
    (0.3 * spacing).clamp(0.75, max)
}

fn draw_points(
    painter: &egui::Painter,
    cam: &Camera,
    plane: &Plane,
    zs: f32,
    radius: f32,
    color: Color32,
) {
    for i in 0..plane.rows.len() {
        for j in 0..plane.cols.len() {
            if let Some(&v) = plane.values.get([i, j]) {
                let (p, _) =
                    cam.project(shown_at(&plane.rows, i), shown_at(&plane.cols, j), v * zs);
                painter.circle_filled(p, radius, color);
            }
        }
    }
}
