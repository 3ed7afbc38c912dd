//! Trapezoid quadrature on a partition, as TorchIntegral's `TrapezoidalQuadrature` computes it.
//!
//! `h_0 = x_1 - x_0`, `h_b = x_{b+1} - x_{b-1}`, `h_{n-1} = x_{n-1} - x_{n-2}`, then `q = h * 0.5`
//! in float32. Learned partitions may be unsorted, so weights may be negative: they are used as
//! they are. The layer then multiplies by `τ = (C_in_original - 1) / 2`.

use serde::{Deserialize, Serialize};

/// Quadrature of one tensor: the trapezoid rule along `dim`, scaled by `tau`.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Quadrature {
    /// The tensor dimension multiplied by the trapezoid weights (the input-channel axis).
    pub dim: usize,
    /// Constant factor `(C_in_original - 1) / 2`.
    pub tau: f32,
}

impl Quadrature {
    /// TorchIntegral's rule: quadrature on dim 1 when that axis is continuous and the original
    /// size exceeds 3.
    #[must_use]
    pub fn torchintegral(original_in: usize) -> Option<Self> {
        #[expect(
            clippy::cast_precision_loss,
            reason = "channel counts are far below 2^24"
        )]
        (original_in > 3).then(|| Self {
            dim: 1,
            tau: (original_in - 1) as f32 / 2.0,
        })
    }
}

/// Trapezoid weights `h * 0.5` of a partition of at least two points.
///
/// # Errors
/// A partition of fewer than two points has no trapezoid rule.
pub fn trapezoid(points: &[f32]) -> Result<Vec<f32>, String> {
    let n = points.len();
    if n < 2 {
        return Err(format!(
            "trapezoid quadrature needs at least 2 points, got {n}"
        ));
    }
    let mut h = vec![0.0_f32; n];
    for b in 1..n - 1 {
        h[b] = points[b + 1] - points[b - 1];
    }
    h[0] = points[1] - points[0];
    h[n - 1] = points[n - 1] - points[n - 2];
    Ok(h.into_iter().map(|v| v * 0.5).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inn::partition::linspace;

    #[test]
    fn uniform_full_size_gives_one_inside_and_half_at_ends() {
        // With n = C_in and tau = (n-1)/2: q*tau = 1 inside, 0.5 at both ends (fixture README).
        let n = 16;
        let q = trapezoid(&linspace(n)).expect("n >= 2");
        let tau = Quadrature::torchintegral(n).expect("n > 3").tau;
        for (b, w) in q.iter().enumerate() {
            let want = if b == 0 || b == n - 1 { 0.5 } else { 1.0 };
            assert!((w * tau - want).abs() < 1e-6, "b={b}: {}", w * tau);
        }
        assert!(Quadrature::torchintegral(3).is_none());
    }

    #[test]
    fn unsorted_points_give_negative_weights() {
        let q = trapezoid(&[-1.0, 0.2, 0.1, 1.0]).expect("4 points");
        // By hand: h = [1.2, 1.1, 0.8, 0.9] * 0.5
        let want = [0.6, 0.55, 0.4, 0.45];
        for (a, b) in q.iter().zip(want) {
            assert!((a - b).abs() < 1e-6);
        }
        let neg = trapezoid(&[0.0, 0.5, -0.5]).expect("3 points");
        assert!(neg[1] < 0.0 && neg[2] < 0.0);
        assert!(trapezoid(&[0.0]).is_err());
    }
}
