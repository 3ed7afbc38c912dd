//! Checkpoint averaging: the element-wise mean of several saved states of one network, e.g. the
//! last epochs of a training run. Such an average often generalises better than any of the
//! states it is made of (Izmailov et al., "Averaging Weights Leads to Wider Optima and Better
//! Generalization", 2018).
//!
//! For an INN the mean is taken over λ. Discretization is linear in λ, so the averaged model's
//! discrete weights at any plan are the mean of the inputs' discrete weights at that plan: the
//! average is the same whichever width or resolution it is looked at.

use std::collections::BTreeMap;

use ndarray::ArrayD;

use super::{Model, ModelDoc, ModelError};

/// The description without what averaging may change (name, provenance, learned points).
fn architecture(doc: &ModelDoc) -> ModelDoc {
    let mut doc = doc.clone();
    doc.name.clear();
    doc.provenance = serde_json::Value::Null;
    for g in &mut doc.groups {
        g.learned = None;
    }
    doc
}

/// Which part of two architectures differs first, for the error message.
fn first_difference(a: &ModelDoc, b: &ModelDoc) -> String {
    if a.input != b.input {
        return "input".into();
    }
    if a.classes != b.classes {
        return "classes".into();
    }
    if a.groups != b.groups {
        return "groups".into();
    }
    if let Some((pa, _)) = a.params.iter().zip(&b.params).find(|(pa, pb)| pa != pb) {
        return format!("parameter {}", pa.name);
    }
    if a.params.len() != b.params.len() {
        return "number of parameters".into();
    }
    "graph".into()
}

/// Element-wise mean of `tensors` (all of one shape), summed in `f64`.
fn mean(tensors: &[&ArrayD<f32>]) -> ArrayD<f32> {
    let mut sum = tensors[0].mapv(f64::from);
    for t in &tensors[1..] {
        sum.zip_mut_with(t, |s, &v| *s += f64::from(v));
    }
    #[expect(clippy::cast_precision_loss, reason = "a handful of models")]
    let n = tensors.len() as f64;
    #[expect(
        clippy::cast_possible_truncation,
        reason = "back to the stored precision"
    )]
    sum.mapv(|s| (s / n) as f32)
}

/// The mean of `models`, which must be one architecture (same description, parameter shapes
/// and groups; learned partitions, where there are any, of the same sizes). The result has the
/// first model's description with `provenance` for its provenance.
///
/// # Errors
/// Fewer than two models, or models that differ in anything but their values and provenance.
pub fn average(models: &[Model], provenance: serde_json::Value) -> Result<Model, ModelError> {
    let [first, rest @ ..] = models else {
        return Err(ModelError::invalid("averaging needs at least two models"));
    };
    if rest.is_empty() {
        return Err(ModelError::invalid("averaging needs at least two models"));
    }
    let reference = architecture(&first.doc);
    for (i, m) in rest.iter().enumerate() {
        let other = architecture(&m.doc);
        if other != reference {
            return Err(ModelError::invalid(format!(
                "model {} is not the architecture of model 1 (they differ in: {})",
                i + 2,
                first_difference(&reference, &other)
            )));
        }
    }
    let mut tensors = BTreeMap::new();
    for (name, t) in &first.tensors {
        let mut all = vec![t];
        for (i, m) in rest.iter().enumerate() {
            match m.tensors.get(name) {
                Some(u) if u.shape() == t.shape() => all.push(u),
                Some(u) => {
                    return Err(ModelError::invalid(format!(
                        "{name}: shape {:?} in model {} but {:?} in model 1 (control grids of another size)",
                        u.shape(),
                        i + 2,
                        t.shape()
                    )));
                }
                None => {
                    return Err(ModelError::invalid(format!(
                        "{name} is missing from model {}",
                        i + 2
                    )));
                }
            }
        }
        tensors.insert(name.clone(), mean(&all));
    }
    let mut doc = first.doc.clone();
    doc.provenance = provenance;
    for (gi, g) in doc.groups.iter_mut().enumerate() {
        let points: Vec<Option<&Vec<f32>>> = models
            .iter()
            .map(|m| m.doc.groups[gi].learned.as_ref())
            .collect();
        let same_size = |p: &Option<&Vec<f32>>| match (p, points[0]) {
            (Some(p), Some(p0)) => p.len() == p0.len(),
            _ => false,
        };
        g.learned = if points.iter().all(Option::is_none) {
            None
        } else if points.iter().all(same_size) {
            let len = points[0].map_or(0, Vec::len);
            #[expect(clippy::cast_precision_loss, reason = "a handful of models")]
            let n = points.len() as f64;
            #[expect(
                clippy::cast_possible_truncation,
                reason = "back to the stored precision"
            )]
            let mean_at = |k: usize| {
                (points
                    .iter()
                    .flatten()
                    .map(|p| f64::from(p[k]))
                    .sum::<f64>()
                    / n) as f32
            };
            Some((0..len).map(mean_at).collect())
        } else {
            return Err(ModelError::invalid(format!(
                "group {}: learned partitions are missing from some models or of other sizes",
                g.id
            )));
        };
    }
    Model::new(doc, tensors)
}
