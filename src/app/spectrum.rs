//! Frequency-domain filters: the 2-D Fourier transform of the selected kernel slice — from the
//! continuous function sampled finely, and from its samples at the current partition — on one
//! frequency grid in cycles over [-1, 1], so that the two compare bin for bin and aliasing from
//! a coarse partition shows as copies of the spectrum; and a grid of per-output-channel spatial
//! spectra of the discrete kernels at the current resolution. Log-magnitude (or phase) with a
//! colour legend.

use eframe::egui::{self, TextureHandle, Vec2};
use ndarray::{Array2, Array3, Axis, s};
use rustfft::FftPlanner;
use rustfft::num_complex::Complex32;

use super::heatmap::{self, Scale};
use super::layer_data::{Plane, PlanesCache, Slice, plan_key};
use super::state::State;
use crate::inn::quadrature::trapezoid;

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

/// Frequencies (cycles over [-1, 1]) at which [`fourier`] is evaluated: the integers from
/// `-k` to `k`, `k` at most [`MAX_CYCLES`]; zero alone for `k = 0`.
#[must_use]
pub fn frequencies(k: usize) -> Vec<f32> {
    #[expect(clippy::cast_possible_wrap, reason = "capped at MAX_CYCLES")]
    let k = k.min(MAX_CYCLES) as i32;
    #[expect(clippy::cast_precision_loss, reason = "small integers")]
    (-k..=k).map(|f| f as f32).collect()
}

/// Largest frequency [`frequencies`] goes to.
pub const MAX_CYCLES: usize = 32;

/// The frequencies the panel shows from `-k` to `k` (at most [`MAX_CYCLES`]): the integers,
/// or where `k` is small (a spatial kernel of a few taps) steps of `k / 16`, so that the image
/// has 33 bins a side rather than a handful.
#[must_use]
pub fn frequency_grid(k: usize) -> Vec<f32> {
    let k = k.min(MAX_CYCLES);
    if k == 0 || k >= 16 {
        return frequencies(k);
    }
    #[expect(clippy::cast_precision_loss, reason = "small integers")]
    let step = k as f32 / 16.0;
    #[expect(clippy::cast_precision_loss, reason = "small integers")]
    (-16..=16_i32).map(|i| i as f32 * step).collect()
}

/// The 2-D Fourier transform of a function known at the points of `plane`,
/// `X(u, v) = ∫∫ F(x, y) e^{-iπ(ux + vy)} dx dy`, by the trapezoid rule on the plane's own
/// positions (which need not be uniform: a learned partition is not), at frequencies `fu`
/// along rows and `fv` along columns, in cycles over [-1, 1]. An axis with a single point is
/// not integrated (weight 1). Four real matrix products: `E_r (w_r F w_c) E_cᵀ`.
#[must_use]
pub fn fourier(plane: &Plane, fu: &[f32], fv: &[f32]) -> Array2<Complex32> {
    let (m, n) = plane.values.dim();
    if m == 0 || n == 0 || plane.rows.len() != m || plane.cols.len() != n {
        return Array2::zeros((fu.len(), fv.len()));
    }
    let weights = |p: &[f32]| trapezoid(p).unwrap_or_else(|_| vec![1.0; p.len()]);
    let (wr, wc) = (weights(&plane.rows), weights(&plane.cols));
    let y = Array2::from_shape_fn((m, n), |(i, j)| plane.values[[i, j]] * wr[i] * wc[j]);
    let basis = |f: &[f32], p: &[f32], trig: fn(f32) -> f32| {
        Array2::from_shape_fn((f.len(), p.len()), |(k, i)| {
            trig(std::f32::consts::PI * f[k] * p[i])
        })
    };
    let (cr, sr) = (
        basis(fu, &plane.rows, f32::cos),
        basis(fu, &plane.rows, f32::sin),
    );
    let (cc, sc) = (
        basis(fv, &plane.cols, f32::cos),
        basis(fv, &plane.cols, f32::sin),
    );
    // A = y E_cᵀ with E_c = C_c - i S_c; X = E_r A with E_r = C_r - i S_r.
    let ar = y.dot(&cc.t());
    let ai = -y.dot(&sc.t());
    let re = cr.dot(&ar) + sr.dot(&ai);
    let im = cr.dot(&ai) - sr.dot(&ar);
    ndarray::Zip::from(&re)
        .and(&im)
        .map_collect(|&r, &i| Complex32::new(r, i))
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
    /// [`super::layer_data::LayerPlanes::fine_key`] of the planes the images came from.
    fine_key: u64,
    images: [Array2<f32>; 3],
    /// Frequency of each row and each column of the first two images (cycles over [-1, 1]).
    freqs: [Vec<f32>; 2],
    /// Names of the slice's row and column axes.
    axes: (&'static str, &'static str),
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
            // One frequency grid for both, along each axis up to n - 1 cycles for n control
            // points, twice their Nyquist frequency (n - 1) / 2: F holds little above it, and
            // samples as sparse as the controls repeat their spectrum once within it
            // (aliasing). Never past the fine sampling's own Nyquist frequency.
            let reach = |controls: usize, fine: usize| {
                controls.saturating_sub(1).min(fine.saturating_sub(1) / 2)
            };
            let fu = frequency_grid(reach(p.control.values.nrows(), p.fine.values.nrows()));
            let fv = frequency_grid(reach(p.control.values.ncols(), p.fine.values.ncols()));
            let show = |plane: &Plane| {
                let sp = fourier(plane, &fu, &fv);
                if self.phase {
                    sp.mapv(|c| if c.norm() > 1e-7 { c.arg() } else { 0.0 })
                } else {
                    sp.mapv(|c| (c.norm() + 1e-6).log10())
                }
            };
            // Kernels summed over input channels, wherever the weights are.
            let sums = state.channel_sums(GRID_CHANNELS);
            let grid = sums.map_or_else(|| Array2::zeros((1, 1)), |s| channel_grid(&s));
            // The fine plane's image carries over while the fine plane does (a partition
            // slider moves only the samples of a channel slice).
            let fine_image = match self.cache.take() {
                Some(c)
                    if c.layer == param.name
                        && c.slice == slice
                        && c.phase == self.phase
                        && c.generation == state.generation
                        && c.fine_key == p.fine_key =>
                {
                    let [fine, ..] = c.images;
                    fine
                }
                _ => show(&p.fine),
            };
            self.cache = Some(Cached {
                layer: param.name.clone(),
                slice,
                phase: self.phase,
                plan: key,
                generation: state.generation,
                fine_key: p.fine_key,
                images: [fine_image, show(&p.samples), grid],
                freqs: [fu, fv],
                axes: super::layer_data::axis_names(param.layout.shape.len(), slice),
            });
        }
        let Some(Cached {
            images: [fine, disc, grid],
            freqs: [fu, fv],
            axes: (rows_name, cols_name),
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
                ui.label(egui::RichText::new("continuous F (fine samples)").small());
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
                ui.label(egui::RichText::new("F at the current partition").small());
                if let Some(((r, c), v)) = heatmap::show(
                    ui,
                    "spec-disc",
                    disc.view(),
                    scale,
                    Vec2::new(w, h),
                    &mut self.textures[1],
                ) {
                    let at = |f: &[f32], i: usize| f.get(i).copied().unwrap_or(f32::NAN);
                    ui.label(
                        egui::RichText::new(format!(
                            "({:+}, {:+}) cycles: {v:.3}",
                            at(fu, r),
                            at(fv, c)
                        ))
                        .small(),
                    );
                }
            });
        });
        let (ku, kv) = (
            fu.last().copied().unwrap_or(0.0),
            fv.last().copied().unwrap_or(0.0),
        );
        ui.label(
            egui::RichText::new(format!(
                "Fourier transform of F over [-1, 1]² (trapezoid rule on each plane's points), both on one grid: \
                 {rows_name} frequency ±{ku} cycles down, {cols_name} frequency ±{kv} cycles across, zero in the middle."
            ))
            .small(),
        );
        ui.label(
            egui::RichText::new(
                "Per-output-channel spatial spectra (|DFT| of each discrete kernel, log10):",
            )
            .small(),
        );
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
    /// The numbers behind the panel as CSV: every bin of the three images shown, with the
    /// frequency of each bin of the first two (cycles over [-1, 1]).
    #[must_use]
    pub fn csv(&self) -> String {
        let mut out = String::from("image,row,col,row_cycles,col_cycles,value\n");
        if let Some(c) = &self.cache {
            let what = if c.phase { "phase" } else { "log10_magnitude" };
            for (name, img) in ["continuous", "discretized", "channel_grid"]
                .iter()
                .zip(&c.images)
            {
                let grid = *name == "channel_grid";
                let kind = if grid { "log10_magnitude" } else { what };
                for ((r, col), v) in img.indexed_iter() {
                    let cycles = if grid {
                        String::from(",")
                    } else {
                        let at = |f: &[f32], i: usize| f.get(i).copied().unwrap_or(f32::NAN);
                        format!("{},{}", at(&c.freqs[0], r), at(&c.freqs[1], col))
                    };
                    out.push_str(&format!("{name}_{kind},{r},{col},{cycles},{v}\n"));
                }
            }
        }
        out
    }
}

/// Output channels in the grid of per-channel spectra.
const GRID_CHANNELS: usize = 16;

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
    use crate::inn::partition::linspace;

    /// `F(x, y) = (cos 3πx + sin 5πx)(1 + sin 2πy)` on `rows` × `cols`. Over [-1, 1] the integrals
    /// of products of cos and sin of integer frequencies are 0 or 1, so `X(u, v) = H(u) G(v)` with
    /// `H = 1` at ±3, `∓i` at ±5 and `G = 2` at 0, `∓i` at ±2, and 0 at other integers.
    fn check_cos_sin(rows: Vec<f32>, cols: Vec<f32>, tol: f32) {
        use std::f32::consts::PI;
        let values = Array2::from_shape_fn((rows.len(), cols.len()), |(i, j)| {
            ((3.0 * PI * rows[i]).cos() + (5.0 * PI * rows[i]).sin())
                * (1.0 + (2.0 * PI * cols[j]).sin())
        });
        let plane = Plane { values, rows, cols };
        let f = frequencies(8);
        assert_eq!(f.first(), Some(&-8.0));
        let x = fourier(&plane, &f, &f);
        let c = Complex32::new;
        let h = |u: f32| match u {
            3.0 | -3.0 => c(1.0, 0.0),
            5.0 => c(0.0, -1.0),
            -5.0 => c(0.0, 1.0),
            _ => c(0.0, 0.0),
        };
        let g = |v: f32| match v {
            0.0 => c(2.0, 0.0),
            2.0 => c(0.0, -1.0),
            -2.0 => c(0.0, 1.0),
            _ => c(0.0, 0.0),
        };
        for (iu, &u) in f.iter().enumerate() {
            for (iv, &v) in f.iter().enumerate() {
                let (got, want) = (x[[iu, iv]], h(u) * g(v));
                assert!(
                    (got - want).norm() < tol,
                    "X({u}, {v}) = {got}, want {want}"
                );
            }
        }
    }

    #[test]
    fn fourier_on_a_uniform_grid_is_the_integral() {
        // The trapezoid rule is exact for these periodic integrands short of aliasing, which
        // for 64 points (spacing 2/63) begins 63 cycles away.
        check_cos_sin(linspace(64), linspace(48), 1e-4);
    }

    #[test]
    fn fourier_on_a_non_uniform_partition_approximates_the_integral() {
        // A learned partition: points pulled towards the middle (x + 0.05 sin(πx) keeps the
        // ends at ±1). The trapezoid rule is second order there, so the tolerance is looser.
        let warp = |n: usize| -> Vec<f32> {
            linspace(n)
                .into_iter()
                .map(|x| x + 0.05 * (std::f32::consts::PI * x).sin())
                .collect()
        };
        check_cos_sin(warp(200), warp(150), 1e-2);
    }

    #[test]
    fn the_panel_grid_has_integer_steps_or_33_bins() {
        let small = frequency_grid(4);
        assert_eq!(small.len(), 33);
        assert_eq!((small[0], small[16], small[32]), (-4.0, 0.0, 4.0));
        assert!((small[17] - 0.25).abs() < 1e-7);
        let wide = frequency_grid(40);
        assert_eq!(wide.len(), 2 * MAX_CYCLES + 1);
        assert!(wide.iter().zip(-32..=32).all(|(&f, i)| f == i as f32));
        assert_eq!(frequency_grid(0), vec![0.0]);
    }

    /// A coarse partition aliases: 8 uniform points (spacing 2/7) cannot tell frequency 3 from
    /// 3 - 7 = -4, so the transform of `cos(3πx)` sampled there is as large at ±4 as at ±3.
    #[test]
    fn a_coarse_partition_shows_its_aliases() {
        let rows = linspace(8);
        let values = Array2::from_shape_fn((8, 1), |(i, _)| {
            (3.0 * std::f32::consts::PI * rows[i]).cos()
        });
        let plane = Plane {
            values,
            rows,
            cols: vec![0.0],
        };
        let f = frequencies(8);
        let x = fourier(&plane, &f, &[0.0]);
        let at = |u: f32| x[[f.iter().position(|&g| g == u).expect("in grid"), 0]].norm();
        assert!(at(3.0) > 0.5, "{}", at(3.0));
        assert!(
            (at(4.0) - at(3.0)).abs() < 0.05 * at(3.0),
            "{} vs {}",
            at(4.0),
            at(3.0)
        );
        assert!(at(0.0) < 0.1 * at(3.0), "{}", at(0.0));
    }

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
