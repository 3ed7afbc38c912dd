//! The cubic-convolution interpolation basis of a partition.
//!
//! This is PyTorch's `grid_sample(mode="bicubic", padding_mode="border", align_corners=True)`
//! along one axis, written out: for `N` control values and a point `x`,
//! `u = (x + 1) * ((N - 1) / 2)`, `i0 = floor(u)`, `t = u - i0`, and the four taps
//! `clamp(i0 - 1 ..= i0 + 2, 0, N - 1)` carry the Keys weights `K(t + 1), K(t), K(1 - t), K(2 - t)`
//! with `A = -0.75`. Only tap *indices* are clamped, so points outside `[-1, 1]` extrapolate.
//!
//! Every float operation follows ATen's order (its vectorised CPU kernel), so that weights
//! computed here agree with TorchIntegral to float32 round-off.
//!
//! ```
//! use innscope::inn::basis::Basis;
//! // Three control values sampled at their middle (x = 0, u = 1): all weight on index 1;
//! // the last tap (index 3) is clamped to 2.
//! let basis = Basis::new(&[0.0], 3);
//! assert_eq!(basis.taps[0], [0, 1, 2, 2]);
//! assert_eq!(basis.weights[0], [0.0, 1.0, 0.0, 0.0]);
//! // Halfway between two control values: K(1.5), K(0.5), K(0.5), K(1.5).
//! let half = Basis::new(&[0.5], 3);
//! assert_eq!(half.weights[0], [-0.09375, 0.59375, 0.59375, -0.09375]);
//! ```

/// The Keys cubic-convolution parameter used by PyTorch's bicubic mode.
pub const KEYS_A: f32 = -0.75;

/// `K(s)` for `|s| <= 1`, in ATen's evaluation order.
#[inline]
fn keys_near(x: f32) -> f32 {
    ((KEYS_A + 2.0) * x - (KEYS_A + 3.0)) * x * x + 1.0
}

/// `K(s)` for `1 < |s| < 2`, in ATen's evaluation order.
#[inline]
fn keys_far(x: f32) -> f32 {
    ((KEYS_A * x - 5.0 * KEYS_A) * x + 8.0 * KEYS_A) * x - 4.0 * KEYS_A
}

/// `dK/ds` for `|s| <= 1` (s >= 0).
#[inline]
fn keys_near_deriv(x: f32) -> f32 {
    (3.0 * (KEYS_A + 2.0) * x - 2.0 * (KEYS_A + 3.0)) * x
}

/// `dK/ds` for `1 < s < 2`.
#[inline]
fn keys_far_deriv(x: f32) -> f32 {
    (3.0 * KEYS_A * x - 10.0 * KEYS_A) * x + 8.0 * KEYS_A
}

/// Location of one point against `n_control` control values: base index and fraction.
#[inline]
fn locate(x: f32, n_control: usize) -> (i64, f32) {
    #[expect(
        clippy::cast_precision_loss,
        reason = "control counts are far below 2^24"
    )]
    let scale = (n_control - 1) as f32 / 2.0;
    let u = (x + 1.0) * scale;
    let i0 = u.floor();
    #[expect(
        clippy::cast_possible_truncation,
        reason = "u is finite and bounded by the caller"
    )]
    (i0 as i64, u - i0)
}

/// The four clamped tap indices of a point whose base index is `i0`.
#[inline]
fn taps_of(i0: i64, n_control: usize) -> [u32; 4] {
    let last = i64::try_from(n_control).unwrap_or(i64::MAX) - 1;
    let clamp = |i: i64| -> u32 { u32::try_from(i.clamp(0, last)).unwrap_or(u32::MAX) };
    [clamp(i0 - 1), clamp(i0), clamp(i0 + 1), clamp(i0 + 2)]
}

/// The four Keys weights for fraction `t`, in ATen's order.
#[inline]
#[must_use]
pub fn keys_weights(t: f32) -> [f32; 4] {
    [
        keys_far(t + 1.0),
        keys_near(t),
        keys_near(1.0 - t),
        keys_far(2.0 - t),
    ]
}

/// Interpolation basis of a partition against a control grid: for each point, four tap
/// indices into the control values and their weights.
#[derive(Clone, Debug, PartialEq)]
pub struct Basis {
    /// Number of control values `N` along the axis.
    pub n_control: usize,
    /// Clamped tap indices, one row per partition point.
    pub taps: Vec<[u32; 4]>,
    /// Weights of the taps, one row per partition point.
    pub weights: Vec<[f32; 4]>,
}

impl Basis {
    /// Basis of `points` against `n_control` control values (`n_control >= 1`).
    ///
    /// Points must be finite; the partition constructors and the file readers make sure of it.
    #[must_use]
    pub fn new(points: &[f32], n_control: usize) -> Self {
        let n_control = n_control.max(1);
        let mut taps = Vec::with_capacity(points.len());
        let mut weights = Vec::with_capacity(points.len());
        for &x in points {
            let (i0, t) = locate(x, n_control);
            taps.push(taps_of(i0, n_control));
            weights.push(keys_weights(t));
        }
        Self {
            n_control,
            taps,
            weights,
        }
    }

    /// Number of partition points.
    #[must_use]
    pub fn len(&self) -> usize {
        self.taps.len()
    }

    /// Whether the partition is empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.taps.is_empty()
    }

    /// Derivatives of each point's four weights with respect to the point's position `x`
    /// (the taps stay fixed inside a cell), for tuning partitions by gradient descent.
    #[must_use]
    pub fn weight_derivatives(points: &[f32], n_control: usize) -> Vec<[f32; 4]> {
        let n_control = n_control.max(1);
        #[expect(
            clippy::cast_precision_loss,
            reason = "control counts are far below 2^24"
        )]
        let du_dx = (n_control - 1) as f32 / 2.0;
        points
            .iter()
            .map(|&x| {
                let (_, t) = locate(x, n_control);
                [
                    keys_far_deriv(t + 1.0) * du_dx,
                    keys_near_deriv(t) * du_dx,
                    -keys_near_deriv(1.0 - t) * du_dx,
                    -keys_far_deriv(2.0 - t) * du_dx,
                ]
            })
            .collect()
    }

    /// Interpolate one lane of control values at every point (sums in tap order).
    #[must_use]
    pub fn interpolate(&self, control: &[f32]) -> Vec<f32> {
        self.taps
            .iter()
            .zip(&self.weights)
            .map(|(t, w)| {
                w[0] * control[t[0] as usize]
                    + w[1] * control[t[1] as usize]
                    + w[2] * control[t[2] as usize]
                    + w[3] * control[t[3] as usize]
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand derivation: Keys weights sum to one (for any A) and mirror around t = 1/2.
    #[test]
    fn weights_partition_unity_and_are_symmetric() {
        for i in 0..=20 {
            let t = i as f32 / 20.0;
            let w = keys_weights(t);
            let sum: f32 = w.iter().sum();
            assert!((sum - 1.0).abs() < 1e-6, "t={t} sum={sum}");
            let m = keys_weights(1.0 - t);
            for k in 0..4 {
                assert!((w[k] - m[3 - k]).abs() < 1e-6, "t={t} k={k}");
            }
        }
        // Exact at the nodes: t = 0 puts all weight on tap 0.
        assert_eq!(keys_weights(0.0), [0.0, 1.0, 0.0, 0.0]);
        // K(0.5) by hand: (A+2)/8 - (A+3)/4 + 1 = 0.15625 - 0.5625 + 1 = 0.59375.
        assert!((keys_weights(0.5)[1] - 0.593_75).abs() < 1e-7);
        // K(1.5) by hand: A*(3.375 - 11.25 + 12 - 4) = -0.75 * 0.125 = -0.09375.
        assert!((keys_weights(0.5)[0] + 0.093_75).abs() < 1e-7);
    }

    #[test]
    fn taps_are_clamped_at_the_border_and_beyond() {
        let b = Basis::new(&[-1.0, 1.0, 1.5, -2.0], 5);
        assert_eq!(b.taps[0], [0, 0, 1, 2]);
        assert_eq!(b.taps[1], [3, 4, 4, 4]);
        assert_eq!(b.taps[2], [4, 4, 4, 4]);
        assert_eq!(b.taps[3], [0, 0, 0, 0]);
        // A single control value is sampled exactly.
        let one = Basis::new(&[0.3], 1);
        assert_eq!(one.interpolate(&[2.5]), vec![2.5]);
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let n = 7;
        let pts = [-0.77_f32, -0.1, 0.23, 0.61];
        let d = Basis::weight_derivatives(&pts, n);
        for (k, &x) in pts.iter().enumerate() {
            let h = 1e-3_f32;
            let hi = Basis::new(&[x + h], n).weights[0];
            let lo = Basis::new(&[x - h], n).weights[0];
            for j in 0..4 {
                let fd = (hi[j] - lo[j]) / (2.0 * h);
                assert!(
                    (fd - d[k][j]).abs() < 2e-2,
                    "x={x} j={j} fd={fd} d={}",
                    d[k][j]
                );
            }
        }
    }
}
