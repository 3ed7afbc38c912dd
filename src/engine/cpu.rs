//! The CPU engine: discretization by [`Model::discretize`] (the math in `inn`), forward pass
//! with `candle` tensors.
//!
//! Shapes: input `(N, C, H, W)` at the plan's resolution; output `(N, classes)` logits.

use std::collections::HashMap;

use candle_core::{Device, Tensor};
use ndarray::{Array2, ArrayD, ArrayView4, IxDyn};

use super::EngineError;
use crate::inn::Resolved;
use crate::model::{DiscreteWeights, Model};

/// Discrete weights of one plan, ready for the forward pass.
pub struct CpuEngine {
    plan: Resolved,
    tensors: HashMap<String, Tensor>,
    /// Whether `tensors` holds every parameter under `plan` (not after a failed change).
    complete: bool,
    /// Parameters re-discretized by the last plan change, of all.
    last_change: (usize, usize),
}

/// Move an array into a candle tensor (no copy for standard-layout arrays).
fn to_tensor(a: ArrayD<f32>) -> Result<Tensor, EngineError> {
    let shape = a.shape().to_vec();
    let a = if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().to_owned()
    };
    let (data, _) = a.into_raw_vec_and_offset();
    Ok(Tensor::from_vec(data, shape, &Device::Cpu)?)
}

fn to_array(t: &Tensor) -> Result<ArrayD<f32>, EngineError> {
    let values = t.flatten_all()?.to_vec1::<f32>()?;
    ArrayD::from_shape_vec(IxDyn(t.dims()), values).map_err(|e| EngineError::Invalid(e.to_string()))
}

impl CpuEngine {
    /// Discretize `model` under `plan`.
    ///
    /// # Errors
    /// Discretization failures (see [`Model::discretize`]).
    pub fn new(model: &Model, plan: &Resolved) -> Result<Self, EngineError> {
        let mut engine = Self {
            plan: plan.clone(),
            tensors: HashMap::new(),
            complete: false,
            last_change: (0, 0),
        };
        engine.set_plan(model, plan)?;
        Ok(engine)
    }

    /// Re-discretize for a new plan the parameters it changes: those with an axis sampled
    /// differently (a group whose partition moved, spatial axes at a new resolution). The
    /// others keep their weights, so a slider for one group re-discretizes only the layers
    /// that group touches. A plan the model refuses changes nothing.
    ///
    /// # Errors
    /// Discretization failures.
    pub fn set_plan(&mut self, model: &Model, plan: &Resolved) -> Result<(), EngineError> {
        model.check_plan(plan)?;
        let changed = model.params_to_redo(self.complete.then_some(&self.plan), plan);
        // Free the old weights first: their memory is reused for the new ones instead of
        // fresh pages (page faults were a third of the time on large models). Until the new
        // ones are in, the engine is incomplete and the next change redoes everything.
        self.complete = false;
        for name in &changed {
            self.tensors.remove(name);
        }
        let fresh = model.discretize_where(plan, |p| changed.contains(&p.name))?;
        for (k, v) in fresh {
            self.tensors.insert(k, to_tensor(v)?);
        }
        self.plan = plan.clone();
        self.complete = true;
        self.last_change = (changed.len(), model.doc.params.len());
        Ok(())
    }

    /// Parameters the last plan change re-discretized, and how many the model has.
    #[must_use]
    pub fn last_change(&self) -> (usize, usize) {
        self.last_change
    }

    /// The plan the weights belong to.
    #[must_use]
    pub fn plan(&self) -> &Resolved {
        &self.plan
    }

    /// The discrete weights (copied out, for panels, tests and exports).
    ///
    /// # Errors
    /// Never in practice (the tensors are f32 on the CPU).
    pub fn weights(&self) -> Result<DiscreteWeights, EngineError> {
        self.tensors
            .iter()
            .map(|(k, t)| Ok((k.clone(), to_array(t)?)))
            .collect()
    }

    /// One discrete weight (copied out).
    ///
    /// # Errors
    /// An unknown parameter.
    pub fn weight(&self, name: &str) -> Result<ArrayD<f32>, EngineError> {
        to_array(self.param(name)?)
    }

    /// The current shape of one discrete weight (`None` for an unknown parameter).
    #[must_use]
    pub fn weight_shape(&self, name: &str) -> Option<Vec<usize>> {
        self.tensors.get(name).map(|t| t.dims().to_vec())
    }

    fn param(&self, name: &str) -> Result<&Tensor, EngineError> {
        self.tensors
            .get(name)
            .ok_or_else(|| EngineError::Invalid(format!("no parameter {name}")))
    }

    /// Run the network on a batch; returns logits `(N, classes)`.
    ///
    /// # Errors
    /// An input whose shape is not `(N, C, H, W)` at the plan's resolution, or an op failure.
    pub fn forward(
        &self,
        model: &Model,
        input: ArrayView4<'_, f32>,
    ) -> Result<Array2<f32>, EngineError> {
        let want = [
            model.doc.input.channels,
            self.plan.resolution[0],
            self.plan.resolution[1],
        ];
        let got = [input.shape()[1], input.shape()[2], input.shape()[3]];
        if got != want {
            return Err(EngineError::Invalid(format!(
                "input is {:?}, the plan expects (N, {}, {}, {})",
                input.shape(),
                want[0],
                want[1],
                want[2]
            )));
        }
        let data: Vec<f32> = input.iter().copied().collect();
        let x = Tensor::from_vec(data, input.shape(), &Device::Cpu)?;
        let out = run_graph(
            model,
            &self.plan,
            x,
            &|name| self.param(name).cloned(),
            false,
        )?;
        let (n, k) = out.dims2()?;
        let v = out.flatten_all()?.to_vec1::<f32>()?;
        Array2::from_shape_vec((n, k), v).map_err(|e| EngineError::Invalid(e.to_string()))
    }
}

/// What a room's [`Layer::cpu`](crate::layers::Layer::cpu) sees: the model, the plan, the
/// network's input and where the parameters come from.
pub struct CpuCx<'a> {
    /// The model.
    pub model: &'a Model,
    /// The plan the parameters are discretized under.
    pub plan: &'a Resolved,
    /// The network's input `(N, C, H, W)`, for the `input` node.
    pub input: &'a Tensor,
    /// Whether gradients will flow back (training): rooms may take a path whose backward pass
    /// is fast (the convolution's im2col).
    pub training: bool,
    param: &'a dyn Fn(&str) -> Result<Tensor, EngineError>,
}

impl CpuCx<'_> {
    /// The discrete parameter `name`.
    ///
    /// # Errors
    /// A parameter the source does not have.
    pub fn param(&self, name: &str) -> Result<Tensor, EngineError> {
        (self.param)(name)
    }
}

/// Run `model`'s graph on a candle tensor `(N, C, H, W)` under `plan`, taking every parameter
/// from `param`: each node's room computes its value ([`Layer::cpu`](crate::layers::Layer::cpu)).
/// The CPU engine passes its discretized weights; training passes tensors that carry
/// gradients back to the control values (with `training`), so both run one implementation of
/// every op.
///
/// # Errors
/// A missing value or parameter, or an op failure.
pub fn run_graph(
    model: &Model,
    plan: &Resolved,
    x: Tensor,
    param: &dyn Fn(&str) -> Result<Tensor, EngineError>,
    training: bool,
) -> Result<Tensor, EngineError> {
    let cx = CpuCx {
        model,
        plan,
        input: &x,
        training,
        param,
    };
    let mut values: HashMap<&str, Tensor> = HashMap::new();
    let mut last = None;
    for node in &model.doc.graph {
        let inputs = node
            .inputs
            .iter()
            .map(|name| {
                values
                    .get(name.as_str())
                    .ok_or_else(|| EngineError::Invalid(format!("value {name:?} missing")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let y = node.op.layer().cpu(&cx, &inputs)?;
        values.insert(node.out.as_str(), y.clone());
        last = Some(y);
    }
    last.ok_or_else(|| EngineError::Invalid("empty graph".into()))
}
