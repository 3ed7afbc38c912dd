//! Accuracy of a model on a labelled image set, shared by the command line, the trainer and
//! the window's background sweeps.

use std::sync::atomic::{AtomicBool, Ordering};

use ndarray::{Array2, ArrayView4};

use crate::data::idx::Dataset;
use crate::data::input::grey_batch;
use crate::engine::EngineError;
use crate::inn::Resolved;
use crate::model::Model;

/// Correct answers out of examples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Score {
    /// Examples whose top class is the label.
    pub correct: usize,
    /// Examples evaluated.
    pub examples: usize,
}

impl Score {
    /// `correct / examples` (0 for none).
    #[must_use]
    pub fn accuracy(self) -> f64 {
        #[expect(clippy::cast_precision_loss, reason = "counts are far below 2^52")]
        if self.examples == 0 {
            0.0
        } else {
            self.correct as f64 / self.examples as f64
        }
    }
}

/// A network as a function from an input batch `(N, C, H, W)` to logits `(N, classes)`.
pub type Forward<'a> = dyn FnMut(ArrayView4<'_, f32>) -> Result<Array2<f32>, EngineError> + 'a;

/// Index of the largest value (the first of equals; `None` when empty).
pub fn argmax<'a>(values: impl IntoIterator<Item = &'a f32>) -> Option<usize> {
    values
        .into_iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| i)
}

/// Index of the largest value in each row.
#[must_use]
pub fn argmax_rows(logits: &Array2<f32>) -> Vec<usize> {
    logits
        .rows()
        .into_iter()
        .map(|row| argmax(row).unwrap_or(usize::MAX))
        .collect()
}

/// Score the first `limit` examples of `data` (all when `None`) at `plan`'s resolution, in
/// batches of `batch`, with `forward` (which maps an input batch to logits). `progress` hears
/// the number of examples done after every batch; `cancel` stops early with `Ok(None)`.
///
/// # Errors
/// Whatever `forward` returns.
#[expect(
    clippy::too_many_arguments,
    reason = "one flat call used by three callers"
)]
pub fn score(
    model: &Model,
    data: &Dataset,
    plan: &Resolved,
    batch: usize,
    limit: Option<usize>,
    forward: &mut Forward<'_>,
    progress: &mut dyn FnMut(usize),
    cancel: Option<&AtomicBool>,
) -> Result<Option<Score>, EngineError> {
    let n = limit.map_or(data.len(), |l| l.min(data.len()));
    let mut correct = 0;
    for start in (0..n).step_by(batch.max(1)) {
        if cancel.is_some_and(|c| c.load(Ordering::Relaxed)) {
            return Ok(None);
        }
        let end = (start + batch.max(1)).min(n);
        let imgs: Vec<&[u8]> = (start..end).map(|i| data.images.image(i)).collect();
        let x = grey_batch(
            &imgs,
            data.images.rows,
            data.images.cols,
            &model.doc.input,
            plan.resolution,
        );
        let logits = forward(x.view())?;
        correct += argmax_rows(&logits)
            .into_iter()
            .zip(start..end)
            .filter(|&(k, i)| k == usize::from(data.labels[i]))
            .count();
        progress(end - start);
    }
    Ok(Some(Score {
        correct,
        examples: n,
    }))
}
