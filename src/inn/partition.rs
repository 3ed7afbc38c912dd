//! Partitions: the points at which a continuous axis is sampled.
//!
//! A partition of size `n` is either uniform (PyTorch `linspace(-1, 1, n)`, bit for bit) or
//! learned (points stored in the model, used exactly as stored, even unsorted or past ±1, as
//! TorchIntegral's `TrainableGrid1D` does). A learned partition asked for at another size is
//! resampled by quantiles: its sorted points, seen as a monotone function of their index, are
//! interpolated linearly at `n` evenly spaced index positions.

use serde::{Deserialize, Serialize};

/// How a group's partition is chosen. Default is [`PartitionKind::Learned`], which falls back to
/// uniform for groups that have no learned points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PartitionKind {
    /// `linspace(-1, 1, n)`.
    Uniform,
    /// The group's learned points when it has them (resampled by quantiles when the size
    /// differs from theirs), uniform otherwise.
    #[default]
    Learned,
}

impl std::fmt::Display for PartitionKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Uniform => "uniform",
            Self::Learned => "learned",
        })
    }
}

impl std::str::FromStr for PartitionKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "uniform" => Ok(Self::Uniform),
            "learned" => Ok(Self::Learned),
            other => Err(format!(
                "unknown partition kind {other:?} (uniform or learned)"
            )),
        }
    }
}

/// PyTorch's `torch.linspace(-1, 1, n)` in float32, bit for bit: `step = 2 / (n - 1)` rounded
/// to f32; the first half counts up from -1, the second half down from 1, each with one rounding.
#[must_use]
pub fn linspace(n: usize) -> Vec<f32> {
    match n {
        0 => Vec::new(),
        1 => vec![-1.0],
        _ => {
            #[expect(
                clippy::cast_precision_loss,
                reason = "partition sizes are far below 2^24"
            )]
            let step = 2.0_f32 / (n - 1) as f32;
            let half = n / 2;
            (0..n)
                .map(|i| {
                    #[expect(clippy::cast_precision_loss, reason = "i < n, far below 2^24")]
                    if i < half {
                        step.mul_add(i as f32, -1.0)
                    } else {
                        (-step).mul_add((n - 1 - i) as f32, 1.0)
                    }
                })
                .collect()
        }
    }
}

/// Resample learned `points` to `n` points by quantiles (see the module doc). With `n` equal to
/// the number of points the result is the sorted points.
#[must_use]
pub fn resample_quantile(points: &[f32], n: usize) -> Vec<f32> {
    let mut sorted = points.to_vec();
    sorted.sort_by(f32::total_cmp);
    match (sorted.len(), n) {
        (_, 0) => Vec::new(),
        (0, _) => linspace(n),
        (1, _) => vec![sorted[0]; n],
        (_, 1) => vec![sorted[0]],
        (m, _) => (0..n)
            .map(|j| {
                // Position of output point j on the index axis of the sorted input, in f64 so
                // that end points land exactly on the first and last stored point.
                #[expect(clippy::cast_precision_loss, reason = "sizes are far below 2^52")]
                let pos = j as f64 * (m - 1) as f64 / (n - 1) as f64;
                #[expect(
                    clippy::cast_possible_truncation,
                    clippy::cast_sign_loss,
                    reason = "0 <= pos <= m - 1"
                )]
                let lo = (pos.floor() as usize).min(m - 2);
                #[expect(clippy::cast_precision_loss, reason = "lo < m, far below 2^52")]
                let frac = pos - lo as f64;
                let a = f64::from(sorted[lo]);
                let b = f64::from(sorted[lo + 1]);
                #[expect(
                    clippy::cast_possible_truncation,
                    reason = "back to the f32 of the model"
                )]
                let v = (a + (b - a) * frac) as f32;
                v
            })
            .collect(),
    }
}

/// Whether points are in non-decreasing order (learned partitions may not be).
#[must_use]
pub fn is_sorted(points: &[f32]) -> bool {
    points.windows(2).all(|w| w[0] <= w[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn linspace_matches_torch_values() {
        // torch.linspace(-1, 1, 16) as stored in the fixture manifest (initial_grid).
        let torch16 = [
            -1.0_f32,
            -0.866_666_7,
            -0.733_333_35,
            -0.599_999_96,
            -0.466_666_64,
            -0.333_333_3,
            -0.199_999_96,
            -0.066_666_62,
            0.066_666_62,
            0.199_999_96,
            0.333_333_3,
            0.466_666_64,
            0.599_999_96,
            0.733_333_35,
            0.866_666_7,
            1.0,
        ];
        assert_eq!(linspace(16), torch16.to_vec());
        assert_eq!(linspace(2), vec![-1.0, 1.0]);
        assert_eq!(linspace(3), vec![-1.0, 0.0, 1.0]);
        assert_eq!(linspace(1), vec![-1.0]);
    }

    #[test]
    fn quantile_resampling_is_monotone_and_keeps_ends() {
        let learned = [0.9_f32, -0.8, 0.1, -0.2, 0.5];
        let same = resample_quantile(&learned, 5);
        assert_eq!(same, vec![-0.8, -0.2, 0.1, 0.5, 0.9]);
        let up = resample_quantile(&learned, 9);
        assert_eq!(up.len(), 9);
        assert!(is_sorted(&up));
        assert_eq!((up[0], up[8]), (-0.8, 0.9));
        // Midpoints between stored points by hand: (-0.8 + -0.2) / 2 = -0.5.
        assert!((up[1] + 0.5).abs() < 1e-6);
        let down = resample_quantile(&learned, 3);
        assert_eq!(down, vec![-0.8, 0.1, 0.9]);
    }
}
