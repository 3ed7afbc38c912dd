//! Continuous spatial axes: where a kernel is sampled at another input resolution.
//!
//! A kernel whose spatial axes are continuous has its control grid over the support of the
//! native kernel: `k0` taps at the native resolution `R0`, spanning `[-1, 1]` from the first tap
//! centre to the last. At resolution `R` (scale `s = R / R0`) the same support holds
//! `k = 2 * floor((k0 - 1) / 2 * s) + 1` pixel centres; tap `d` (from the centre) sits at
//! `x = d / (s * (k0 - 1) / 2)`. Each spatial axis contributes `1 / s` to the area element, so
//! the layer computes the same integral `∫ F(s) I(x + s) ds` at every resolution. At `s = 1` the
//! positions are `linspace(-1, 1, k0)`, so a native-resolution kernel equals its control values
//! when the control grid has `k0` points.

use super::partition::linspace;

/// Tap positions (in `[-1, 1]`) of a continuous spatial axis with `native_taps` taps at
/// native resolution, sampled at scale `s = R / R0`.
///
/// `native_taps` must be odd and at least 3; `scale` positive and finite.
#[must_use]
pub fn tap_positions(native_taps: usize, scale: f32) -> Vec<f32> {
    if (scale - 1.0).abs() <= f32::EPSILON {
        return linspace(native_taps);
    }
    let half0 = native_taps.saturating_sub(1) / 2;
    let half = taps_half_width(native_taps, scale);
    #[expect(clippy::cast_precision_loss, reason = "kernel sizes are tiny")]
    let denom = scale * half0 as f32;
    let half = i64::try_from(half).unwrap_or(0);
    #[expect(clippy::cast_precision_loss, reason = "kernel sizes are tiny")]
    (-half..=half).map(|d| d as f32 / denom).collect()
}

/// Half width (taps on each side of the centre) of a continuous spatial axis at scale `s`.
#[must_use]
pub fn taps_half_width(native_taps: usize, scale: f32) -> usize {
    let half0 = native_taps.saturating_sub(1) / 2;
    #[expect(clippy::cast_precision_loss, reason = "kernel sizes are tiny")]
    let reach = half0 as f32 * scale;
    // A small tolerance so that e.g. s = 2/3 * 3/2 still reaches the tap it should.
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        reason = "reach is small and non-negative"
    )]
    let half = (reach + 1e-4).floor().max(0.0) as usize;
    half
}

/// Number of taps of a continuous spatial axis at scale `s`.
#[must_use]
pub fn tap_count(native_taps: usize, scale: f32) -> usize {
    if (scale - 1.0).abs() <= f32::EPSILON {
        native_taps
    } else {
        2 * taps_half_width(native_taps, scale) + 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_scale_is_linspace_and_other_scales_keep_the_support() {
        assert_eq!(tap_positions(5, 1.0), vec![-1.0, -0.5, 0.0, 0.5, 1.0]);
        // Twice the resolution: 9 taps over the same support, pitch 1/4.
        let p = tap_positions(5, 2.0);
        assert_eq!(p.len(), 9);
        assert_eq!(tap_count(5, 2.0), 9);
        for (i, x) in p.iter().enumerate() {
            assert!((x - (i as f32 - 4.0) / 4.0).abs() < 1e-7);
        }
        // Half the resolution: 3 taps at -1, 0, 1 (pixel pitch 2 native pixels).
        assert_eq!(tap_positions(5, 0.5), vec![-1.0, 0.0, 1.0]);
        // 20 / 28 of a 3-tap kernel: reach 0.714 < 1, only the centre tap remains.
        assert_eq!(tap_positions(3, 20.0 / 28.0), vec![0.0]);
        // 36 / 28 of a 3-tap kernel: pitch 28/36 in native pixels.
        let p = tap_positions(3, 36.0 / 28.0);
        assert_eq!(p.len(), 3);
        assert!((p[2] - 28.0 / 36.0).abs() < 1e-6);
    }
}
