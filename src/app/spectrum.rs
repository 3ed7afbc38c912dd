//! Frequency-domain filters: the 2-D spectrum of the selected kernel slice — the continuous
//! function sampled finely against its samples at the current partition (so aliasing from a
//! coarse partition shows) — and a grid of per-output-channel spatial spectra of the discrete
//! kernels at the current resolution. Log-magnitude (or phase) with a colour legend.

use eframe::egui::{self, TextureHandle, Vec2};
use ndarray::{Array2, Array3, Axis, s};
use rustfft::FftPlanner;
use rustfft::num_complex::Complex32;

use super::gpu_view::GpuView;
use super::heatmap::{self, Scale};
use super::layer_data::{PlanesCache, Slice, plan_key};
use super::state::State;

/// 2-D DFT of `x` zero-padded to `size`, centred (zero frequency in the middle).
#[must_use]
pub fn spectrum(x: &Array2<f32>, size: [usize; 2]) -> Array2<Complex32> {
    let [m, n] = size;
    let mut a = Array2::<Complex32>::zeros((m, n));
    for ((i, j), &v) in x.indexed_iter() {
        if i < m && j < n {
            a[[i, j]] = Complex32::new(v, 0.0);
        }
    }
    let mut planner = FftPlanner::<f32>::new();
    let rows = planner.plan_fft_forward(n);
    for mut row in a.rows_mut() {
        let mut buf: Vec<Complex32> = row.to_vec();
        rows.process(&mut buf);
        row.assign(&ndarray::ArrayView1::from(&buf));
    }
    let cols = planner.plan_fft_forward(m);
    for mut col in a.columns_mut() {
        let mut buf: Vec<Complex32> = col.to_vec();
        cols.process(&mut buf);
        col.assign(&ndarray::ArrayView1::from(&buf));
    }
    // fftshift
    Array2::from_shape_fn((m, n), |(i, j)| {
        a[[(i + m.div_ceil(2)) % m, (j + n.div_ceil(2)) % n]]
    })
}

/// `log10(|X| + ε)` of a spectrum, normalised by the number of samples.
#[must_use]
pub fn log_magnitude(x: &Array2<Complex32>, samples: usize) -> Array2<f32> {
    #[expect(clippy::cast_precision_loss, reason = "sample counts are small")]
    let norm = 1.0 / samples.max(1) as f32;
    x.mapv(|c| (c.norm() * norm + 1e-6).log10())
}

/// Spectra computed for one (layer, slice, phase, plan): fine, discrete, per-channel grid.
struct Cached {
    layer: String,
    slice: Slice,
    phase: bool,
    plan: u64,
    generation: u64,
    images: [Array2<f32>; 3],
}

/// View state.
#[derive(Default)]
pub struct SpectrumPanel {
    /// Show phase instead of magnitude.
    pub phase: bool,
    textures: [Option<TextureHandle>; 3],
    cache: Option<Cached>,
}

impl SpectrumPanel {
    /// Draw the panel for the selected layer and `slice`.
    pub fn show(
        &mut self,
        ui: &mut egui::Ui,
        state: &State,
        slice: Slice,
        planes: &mut PlanesCache,
        gpu: Option<&GpuView>,
    ) {
        let Some(param) = state.layer() else {
            ui.label("This model has no weight to show.");
            return;
        };
        ui.horizontal(|ui| {
            ui.selectable_value(&mut self.phase, false, "magnitude (log10)");
            ui.selectable_value(&mut self.phase, true, "phase");
        });
        let key = plan_key(state);
        let fresh = self.cache.as_ref().is_some_and(|c| {
            c.layer == param.name
                && c.slice == slice
                && c.phase == self.phase
                && c.plan == key
                && c.generation == state.generation
        });
        if !fresh {
            let Some(p) = planes.get(state, slice) else {
                return;
            };
            let fine = &p.fine.values;
            let disc = &p.samples.values;
            let size = [
                fine.nrows().max(disc.nrows()).next_power_of_two().max(16),
                fine.ncols().max(disc.ncols()).next_power_of_two().max(16),
            ];
            let show = |x: &Array2<f32>| {
                let sp = spectrum(x, size);
                if self.phase {
                    sp.mapv(|c| if c.norm() > 1e-7 { c.arg() } else { 0.0 })
                } else {
                    log_magnitude(&sp, x.len())
                }
            };
            // Kernels summed over input channels: on the GPU where the weights are (a few
            // hundred floats come back), else from the CPU engine's weights.
            let sums = match (&state.weight, gpu) {
                (Some(w), _) => channel_sums(w, GRID_CHANNELS),
                (None, Some(gpu)) => gpu
                    .channel_sums(&state.engine, &param.name, GRID_CHANNELS)
                    .ok(),
                (None, None) => None,
            };
            let grid = sums.map_or_else(|| Array2::zeros((1, 1)), |s| channel_grid(&s));
            self.cache = Some(Cached {
                layer: param.name.clone(),
                slice,
                phase: self.phase,
                plan: key,
                generation: state.generation,
                images: [show(fine), show(disc), grid],
            });
        }
        let Some(Cached {
            images: [fine, disc, grid],
            ..
        }) = &self.cache
        else {
            return;
        };
        let scale = if self.phase {
            Scale::Signed
        } else {
            Scale::Sequential
        };
        let w = ((ui.available_width() - 150.0) / 2.0).clamp(60.0, 400.0);
        let h = ((ui.available_height() - 80.0) / 2.0).clamp(60.0, 400.0);
        ui.horizontal(|ui| {
            ui.vertical(|ui| {
                ui.label(egui::RichText::new("continuous (fine samples)").small());
                heatmap::show(
                    ui,
                    "spec-fine",
                    fine.view(),
                    scale,
                    Vec2::new(w, h),
                    &mut self.textures[0],
                );
            });
            ui.vertical(|ui| {
                ui.label(egui::RichText::new("discretized (current partition)").small());
                if let Some(((r, c), v)) = heatmap::show(
                    ui,
                    "spec-disc",
                    disc.view(),
                    scale,
                    Vec2::new(w, h),
                    &mut self.textures[1],
                ) {
                    ui.label(egui::RichText::new(format!("bin ({r}, {c}): {v:.3}")).small());
                }
            });
        });
        ui.label(egui::RichText::new("frequency axes centred on zero; both slices zero-padded to one grid. Per-output-channel spatial spectra (|DFT| of each kernel, log10):").small());
        heatmap::show(
            ui,
            "spec-grid",
            grid.view(),
            Scale::Sequential,
            Vec2::new((w * 2.0).min(ui.available_width() - 60.0), h * 0.8),
            &mut self.textures[2],
        );
    }
}

impl SpectrumPanel {
    /// The numbers behind the panel as CSV: every bin of the three images shown.
    #[must_use]
    pub fn csv(&self) -> String {
        let mut out = String::from("image,row,col,value\n");
        if let Some(c) = &self.cache {
            let what = if c.phase { "phase" } else { "log10_magnitude" };
            for (name, img) in ["continuous", "discretized", "channel_grid"]
                .iter()
                .zip(&c.images)
            {
                for ((r, col), v) in img.indexed_iter() {
                    let kind = if *name == "channel_grid" {
                        "log10_magnitude"
                    } else {
                        what
                    };
                    out.push_str(&format!("{name}_{kind},{r},{col},{v}\n"));
                }
            }
        }
        out
    }
}

/// Output channels in the grid of per-channel spectra.
const GRID_CHANNELS: usize = 16;

/// The first `n` output channels of a 4-D kernel summed over input channels, `(n, kh, kw)`
/// (`None` for other tensors).
fn channel_sums(w: &ndarray::ArrayD<f32>, n: usize) -> Option<Array3<f32>> {
    let w = w.view().into_dimensionality::<ndarray::Ix4>().ok()?;
    let n = n.min(w.shape()[0]);
    let (kh, kw) = (w.shape()[2], w.shape()[3]);
    let mut out = Array3::zeros((n, kh, kw));
    for a in 0..n {
        out.index_axis_mut(Axis(0), a)
            .assign(&w.index_axis(Axis(0), a).sum_axis(Axis(0)));
    }
    Some(out)
}

/// Up to 16 output channels' spatial spectra (kernels summed over input channels, `sums`,
/// zero-padded to 16×16, log-magnitude), tiled in a 4×4 grid.
fn channel_grid(sums: &Array3<f32>) -> Array2<f32> {
    let tile = 16;
    let n = sums.shape()[0].min(GRID_CHANNELS);
    let mut out = Array2::from_elem((4 * tile, 4 * tile), -6.0_f32);
    for a in 0..n {
        let k = sums.index_axis(Axis(0), a).to_owned();
        let sp = log_magnitude(&spectrum(&k, [tile, tile]), k.len());
        let (ty, tx) = (a / 4, a % 4);
        out.slice_mut(s![ty * tile..(ty + 1) * tile, tx * tile..(tx + 1) * tile])
            .assign(&sp);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cosine with 2 cycles over 16 samples has its energy at ±2 bins from the centre.
    #[test]
    fn spectrum_of_a_cosine_peaks_where_it_should() {
        let x = Array2::from_shape_fn((1, 16), |(_, j)| {
            (2.0 * std::f32::consts::PI * 2.0 * j as f32 / 16.0).cos()
        });
        let sp = spectrum(&x, [1, 16]);
        let mag: Vec<f32> = sp.row(0).iter().map(|c| c.norm()).collect();
        // Centre (zero frequency) at index 8; peaks of height N/2 = 8 at 6 and 10.
        assert!((mag[6] - 8.0).abs() < 1e-3 && (mag[10] - 8.0).abs() < 1e-3);
        assert!(mag[8].abs() < 1e-3);
    }
}
