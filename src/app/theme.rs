//! Colours in one place: the colormap of every heatmap and surface, and the series colours.

use crate::gpu::weight_view::Diverging;
use eframe::egui::Color32;

/// Viridis control colours (perceptually uniform, colour-blind safe), low to high.
const VIRIDIS: [[u8; 3]; 9] = [
    [68, 1, 84],
    [72, 40, 120],
    [62, 73, 137],
    [49, 104, 142],
    [38, 130, 142],
    [31, 158, 137],
    [53, 183, 121],
    [109, 205, 89],
    [253, 231, 37],
];

/// Colour of `t` in `[0, 1]` (clamped) on the viridis map.
#[must_use]
pub fn viridis(t: f32) -> Color32 {
    let t = if t.is_finite() {
        t.clamp(0.0, 1.0)
    } else {
        0.0
    };
    #[expect(clippy::cast_precision_loss, reason = "9 stops")]
    let x = t * (VIRIDIS.len() - 1) as f32;
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "0 <= x <= 8"
    )]
    let i = (x.floor() as usize).min(VIRIDIS.len() - 2);
    #[expect(clippy::cast_precision_loss, reason = "small index")]
    let f = x - i as f32;
    let lerp = |a: u8, b: u8| -> u8 {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "within 0..=255"
        )]
        let v = (f32::from(a) + (f32::from(b) - f32::from(a)) * f).round() as u8;
        v
    };
    let (a, b) = (VIRIDIS[i], VIRIDIS[i + 1]);
    Color32::from_rgb(lerp(a[0], b[0]), lerp(a[1], b[1]), lerp(a[2], b[2]))
}

/// The stops of [`diverging`], shared with the GPU weight views.
pub const DIVERGING: Diverging = Diverging {
    mid: [235, 235, 235],
    negative: [33, 102, 172],
    positive: [178, 24, 43],
};

/// Diverging map for signed weights: blue (negative) – light grey (0) – red (positive);
/// `t` in `[-1, 1]`.
#[must_use]
pub fn diverging(t: f32) -> Color32 {
    let t = if t.is_finite() {
        t.clamp(-1.0, 1.0)
    } else {
        0.0
    };
    let mix = |a: u8, b: u8, f: f32| -> u8 {
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "within 0..=255"
        )]
        let v = (f32::from(a) + (f32::from(b) - f32::from(a)) * f).round() as u8;
        v
    };
    let mid = DIVERGING.mid;
    let (end, f) = if t < 0.0 {
        (DIVERGING.negative, -t)
    } else {
        (DIVERGING.positive, t)
    };
    Color32::from_rgb(
        mix(mid[0], end[0], f),
        mix(mid[1], end[1], f),
        mix(mid[2], end[2], f),
    )
}

/// Current (re-discretized) series.
pub const NOW: Color32 = Color32::from_rgb(230, 120, 30);
/// Reference series (full size, native resolution).
pub const REFERENCE: Color32 = Color32::from_rgb(90, 140, 220);
/// Learned partition points.
pub const LEARNED: Color32 = Color32::from_rgb(40, 170, 110);
/// Uniform partition points.
pub const UNIFORM: Color32 = Color32::from_rgb(150, 150, 150);
/// Warnings: unsorted points, points beyond ±1, negative weights.
pub const WARN: Color32 = Color32::from_rgb(220, 50, 50);
/// The discrete twin (sweep curves, prediction bars).
pub const TWIN: Color32 = Color32::from_rgb(150, 80, 190);
