//! The discrete-weight heatmap drawn from a GPU texture: with the GPU engine, the selected
//! slice is coloured on the GPU where the weights are ([`WeightView`]) and the texture is
//! registered with egui's renderer, so a slider tick brings back no weights — only the slice's
//! colour range (one float) and, while hovered, the value under the pointer.

use std::sync::Arc;

use eframe::egui::{self, Color32, Rect, Sense, TextureId, Vec2, pos2};
use eframe::egui_wgpu::{self, wgpu};

use super::heatmap::{self, Scale};
use super::layer_data::Slice;
use super::theme;
use crate::engine::Engine;
use crate::gpu::weight_view::{SliceSpec, WeightView};
use crate::gpu::{GpuEngine, GpuError};

/// Where a slice sits in a flat row-major tensor of `shape` (indices clamped to the shape, as
/// the CPU heatmap clamps them); `None` for tensors no slice is drawn of.
#[must_use]
pub fn slice_spec(shape: &[usize], which: Slice) -> Option<SliceSpec> {
    match (shape, which) {
        (&[o, i, kh, kw], Slice::Channels { r, s }) => Some(SliceSpec {
            offset: r.min(kh.checked_sub(1)?) * kw + s.min(kw.checked_sub(1)?),
            rows: o,
            cols: i,
            row_stride: i * kh * kw,
            col_stride: kh * kw,
        }),
        (&[o, i, kh, kw], Slice::Spatial { a, b }) => Some(SliceSpec {
            offset: (a.min(o.checked_sub(1)?) * i + b.min(i.checked_sub(1)?)) * kh * kw,
            rows: kh,
            cols: kw,
            row_stride: kw,
            col_stride: 1,
        }),
        (&[o, i], _) => Some(SliceSpec {
            offset: 0,
            rows: o,
            cols: i,
            row_stride: i,
            col_stride: 1,
        }),
        _ => None,
    }
}

/// A hovered cell `(row, column)` and its value.
pub type Hovered = ((usize, usize), f32);

/// What the texture shows now.
struct Key {
    layer: String,
    spec: SliceSpec,
    plan: u64,
    generation: u64,
}

/// The weight view of one window: pipelines on the window's device, the texture egui draws,
/// and the numbers that came back for it.
pub struct GpuView {
    view: WeightView,
    render_state: egui_wgpu::RenderState,
    texture: Option<TextureId>,
    key: Option<Key>,
    range: f32,
    hovered: Option<(usize, f32)>,
}

impl GpuView {
    /// The view on the window's device (`None`, with the reason, when its pipelines fail).
    ///
    /// # Errors
    /// Pipelines the device refuses.
    pub fn new(
        ctx: Arc<crate::gpu::GpuContext>,
        render_state: egui_wgpu::RenderState,
    ) -> Result<Self, GpuError> {
        Ok(Self {
            view: WeightView::new(ctx)?,
            render_state,
            texture: None,
            key: None,
            range: 0.0,
            hovered: None,
        })
    }

    /// The GPU engine of `engine` if it runs on this view's device.
    fn engine<'a>(&self, engine: &'a Engine) -> Result<&'a GpuEngine, GpuError> {
        match engine {
            Engine::Gpu(g) if Arc::ptr_eq(g.context(), self.view.context()) => Ok(g),
            _ => Err(GpuError::Invalid(
                "not the GPU engine of this window".into(),
            )),
        }
    }

    /// Whether this view can draw `engine`'s weights (it is the GPU engine on this device).
    #[must_use]
    pub fn serves(&self, engine: &Engine) -> bool {
        self.engine(engine).is_ok()
    }

    /// Draw `which` slice of `layer`'s discrete weights in `size`, with a legend; re-coloured
    /// only when the layer, slice, plan (`plan_key`) or engine (`generation`) changed. Returns
    /// the hovered cell and its value (read back once per cell).
    ///
    /// # Errors
    /// A slice the GPU cannot draw (larger than a texture), a lost device.
    pub fn heatmap(
        &mut self,
        ui: &mut egui::Ui,
        engine: &Engine,
        layer: &str,
        which: Slice,
        (plan, generation): (u64, u64),
        size: Vec2,
    ) -> Result<Option<Hovered>, GpuError> {
        let g = self.engine(engine)?;
        let shape = g.weight_shape(layer)?;
        let spec = slice_spec(&shape, which)
            .ok_or_else(|| GpuError::Invalid(format!("no 2-D slice of a {shape:?} tensor")))?;
        let current = self.key.as_ref().is_some_and(|k| {
            k.layer == layer && k.spec == spec && k.plan == plan && k.generation == generation
        });
        if !current || self.texture.is_none() {
            self.key = None;
            let (range, recreated) = self.view.render(g, layer, spec, theme::DIVERGING)?;
            let Some(view) = self.view.texture_view() else {
                return Err(GpuError::Invalid("no view texture".into()));
            };
            let rs = &self.render_state;
            match self.texture {
                Some(id) if recreated => rs.renderer.write().update_egui_texture_from_wgpu_texture(
                    &rs.device,
                    view,
                    wgpu::FilterMode::Nearest,
                    id,
                ),
                Some(_) => {}
                None => {
                    self.texture = Some(rs.renderer.write().register_native_texture(
                        &rs.device,
                        view,
                        wgpu::FilterMode::Nearest,
                    ));
                }
            }
            self.range = range;
            self.hovered = None;
            self.key = Some(Key {
                layer: layer.to_string(),
                spec,
                plan,
                generation,
            });
        }
        let Some(texture) = self.texture else {
            return Ok(None);
        };
        let hi = self.range.max(1e-12);
        let mut hovered = None;
        ui.horizontal(|ui| {
            let (rect, response) = ui.allocate_exact_size(size, Sense::hover());
            ui.painter().image(
                texture,
                rect,
                Rect::from_min_max(pos2(0.0, 0.0), pos2(1.0, 1.0)),
                Color32::WHITE,
            );
            if let Some(p) = response.hover_pos() {
                let cell = heatmap::cell_at(rect, p, spec.rows, spec.cols);
                hovered = Some(cell);
            }
            heatmap::legend(ui, -hi, hi, Scale::Signed, size.y);
        });
        let Some((r, c)) = hovered else {
            return Ok(None);
        };
        let index = spec.index(r, c);
        let value = match self.hovered {
            Some((i, v)) if i == index => v,
            _ => {
                let v = self.view.value_at(g, layer, index)?;
                self.hovered = Some((index, v));
                v
            }
        };
        Ok(Some(((r, c), value)))
    }
}

impl Drop for GpuView {
    fn drop(&mut self) {
        if let Some(id) = self.texture.take() {
            self.render_state.renderer.write().free_texture(&id);
        }
    }
}
