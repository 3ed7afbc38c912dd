//! Summaries of timings: the median and the 95th percentile, as benchmarks and the frame trace
//! report them.

/// Median and 95th percentile (nearest rank) of `values`; `None` when empty.
///
/// ```
/// let (median, p95) = innscope::timing::median_p95(&[5.0, 1.0, 3.0, 2.0, 4.0]).expect("values");
/// assert_eq!((median, p95), (3.0, 5.0));
/// ```
#[must_use]
pub fn median_p95(values: &[f64]) -> Option<(f64, f64)> {
    if values.is_empty() {
        return None;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    let median = if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    };
    #[expect(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss,
        reason = "counts are small"
    )]
    let p95 = ((n as f64 * 0.95).ceil() as usize).clamp(1, n) - 1;
    Some((median, v[p95]))
}
