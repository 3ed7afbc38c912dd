//! Conventional L1-norm filter pruning of a discrete network (Li et al., "Pruning Filters for
//! Efficient ConvNets", ICLR 2017): the contrast to pruning an INN by partition size.
//!
//! This module walks the graph; each layer's room says what pruning does to it
//! ([`Layer::l1_prune`](crate::layers::Layer::l1_prune)).
//!
//! Each convolution (and each hidden fully connected layer, whose rows are its filters) keeps
//! the output channels whose filters have the largest L1 norm; the layers that read those
//! channels (the next convolution's input axis, a BatchNorm, the next fully connected layer's
//! input features) drop the same channels. The classifier's outputs stay. Nothing is
//! retrained.

use std::collections::{BTreeMap, HashMap};

use ndarray::{ArrayD, Axis};

use super::{Model, ModelError};

/// Which channels survive at a value of the graph (`None`: all of them).
pub type Kept = Option<Vec<usize>>;

/// What a layer's [`Layer::l1_prune`](crate::layers::Layer::l1_prune) works on: the tensors
/// being narrowed, and how many output filters the node keeps.
pub struct L1Pruning<'a> {
    tensors: &'a mut BTreeMap<String, ArrayD<f32>>,
    /// Output filters this node keeps, where [`Layer::l1_filters`](crate::layers::Layer::l1_filters)
    /// names a weight (`None` otherwise).
    pub width: Option<usize>,
}

impl L1Pruning<'_> {
    /// Keep the entries `idx` of `axis` of the tensor `name`.
    ///
    /// # Errors
    /// An unknown tensor, or entries it does not have.
    pub fn select(&mut self, name: &str, axis: usize, idx: &[usize]) -> Result<(), ModelError> {
        select(self.tensors, name, axis, idx)
    }

    /// Keep the [`width`](Self::width) strongest output filters of `weight` (and the same
    /// entries of `bias`); returns the channels kept, or `None` when the layer stays whole.
    ///
    /// # Errors
    /// An unknown tensor.
    pub fn keep_strongest(&mut self, weight: &str, bias: Option<&str>) -> Result<Kept, ModelError> {
        match self.width {
            Some(width) => keep_strongest(self.tensors, weight, bias, width),
            None => Ok(None),
        }
    }
}

/// The `keep` largest-L1 output filters of a weight `(C_out, ...)`, in index order.
#[must_use]
pub fn strongest_filters(weight: &ArrayD<f32>, keep: usize) -> Vec<usize> {
    let norms: Vec<f32> = weight
        .axis_iter(Axis(0))
        .map(|f| f.iter().map(|v| v.abs()).sum())
        .collect();
    let mut order: Vec<usize> = (0..norms.len()).collect();
    // Largest first; ties keep the lower index (a stable sort).
    order.sort_by(|&a, &b| norms[b].total_cmp(&norms[a]));
    order.truncate(keep.min(norms.len()));
    order.sort_unstable();
    order
}

/// The weights of the layers L1 pruning narrows, in graph order (those whose room names one
/// in [`Layer::l1_filters`](crate::layers::Layer::l1_filters): every convolution, and every
/// fully connected layer but the one that produces the model's output).
#[must_use]
pub fn prunable_layers(model: &Model) -> Vec<&str> {
    let output = model.output_name();
    model
        .doc
        .graph
        .iter()
        .filter_map(|n| n.op.layer().l1_filters(n.out == output))
        .collect()
}

/// `model` with its [prunable layers](prunable_layers) pruned to `widths` output channels (one
/// entry per layer, in graph order; a width at or above a layer's size keeps it whole).
///
/// # Errors
/// A model with continuous parameters (prune those by partition size), a layer that cannot be
/// narrowed (a residual `add`, a grouped convolution), a width of 0, or a count of widths that
/// does not match the prunable layers.
pub fn l1_prune(model: &Model, widths: &[usize]) -> Result<Model, ModelError> {
    if model.doc.params.iter().any(|p| p.layout.is_continuous()) {
        return Err(ModelError::invalid(
            "L1 filter pruning is for discrete networks; an INN is pruned by partition size",
        ));
    }
    let layers = prunable_layers(model);
    if widths.len() != layers.len() {
        return Err(ModelError::invalid(format!(
            "{} widths for {} prunable layers ({})",
            widths.len(),
            layers.len(),
            layers.join(", ")
        )));
    }
    if widths.contains(&0) {
        return Err(ModelError::invalid("a layer cannot keep 0 channels"));
    }
    let output = model.output_name();
    let mut tensors = model.tensors.clone();
    let mut kept: HashMap<&str, Kept> = HashMap::new();
    let mut next_width = widths.iter().copied();
    for node in &model.doc.graph {
        let input: Kept = node
            .inputs
            .first()
            .and_then(|i| kept.get(i.as_str()).cloned())
            .flatten();
        let layer = node.op.layer();
        let width = layer
            .l1_filters(node.out == output)
            .and_then(|_| next_width.next());
        let mut cx = L1Pruning {
            tensors: &mut tensors,
            width,
        };
        let out = layer.l1_prune(&mut cx, input)?;
        kept.insert(node.out.as_str(), out);
    }
    let mut doc = model.doc.clone();
    for p in &mut doc.params {
        p.layout.shape = tensors[&p.name].shape().to_vec();
    }
    doc.name = format!("{} (L1-pruned to {widths:?})", model.doc.name);
    Model::new(doc, tensors)
}

/// Keep the `width` strongest output filters of `weight` (and the same entries of `bias`);
/// returns the channels kept, or `None` when the layer stays whole.
fn keep_strongest(
    tensors: &mut BTreeMap<String, ArrayD<f32>>,
    weight: &str,
    bias: Option<&str>,
    width: usize,
) -> Result<Kept, ModelError> {
    let w = tensors
        .get(weight)
        .ok_or_else(|| ModelError::invalid(format!("no tensor {weight}")))?;
    if width >= w.shape()[0] {
        return Ok(None);
    }
    let idx = strongest_filters(w, width);
    select(tensors, weight, 0, &idx)?;
    if let Some(b) = bias {
        select(tensors, b, 0, &idx)?;
    }
    Ok(Some(idx))
}

/// Keep the entries `idx` of `axis` of the tensor `name`.
fn select(
    tensors: &mut BTreeMap<String, ArrayD<f32>>,
    name: &str,
    axis: usize,
    idx: &[usize],
) -> Result<(), ModelError> {
    let a = tensors
        .get(name)
        .ok_or_else(|| ModelError::invalid(format!("no tensor {name}")))?;
    if a.ndim() <= axis || idx.iter().any(|&i| i >= a.shape()[axis]) {
        return Err(ModelError::invalid(format!(
            "{name}: cannot keep channels {idx:?} of axis {axis}"
        )));
    }
    let sliced = a.select(Axis(axis), idx);
    tensors.insert(name.to_string(), sliced);
    Ok(())
}

/// Output channels of each [prunable layer](prunable_layers), in graph order.
#[must_use]
pub fn layer_widths(model: &Model) -> Vec<usize> {
    prunable_layers(model)
        .into_iter()
        .map(|w| model.param(w).map_or(0, |p| p.layout.shape[0]))
        .collect()
}
