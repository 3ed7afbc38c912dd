//! The CPU engine: discretization by [`Model::discretize`] (the math in `inn`), forward pass
//! with `candle` tensors.
//!
//! Shapes: input `(N, C, H, W)` at the plan's resolution; output `(N, classes)` logits.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor};
use ndarray::{Array2, ArrayD, ArrayView4, IxDyn};

use super::EngineError;
use crate::inn::Resolved;
use crate::model::{DiscreteWeights, Model, Op, PaddingMode};

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

/// Run `model`'s graph on a candle tensor `(N, C, H, W)` under `plan`, taking every parameter
/// from `param`. The CPU engine passes its discretized weights; training passes tensors that
/// carry gradients back to the control values, so both run one implementation of every op.
/// With `training`, plain convolutions (stride 1, zero padding, no groups or dilation) take the
/// im2col path of [`crate::train::conv`], whose backward pass is matrix products.
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
    let mut values: HashMap<&str, Tensor> = HashMap::new();
    let mut last = None;
    for node in &model.doc.graph {
        let arg = |i: usize| -> Result<&Tensor, EngineError> {
            let name = node.inputs.get(i).map(String::as_str).unwrap_or_default();
            values
                .get(name)
                .ok_or_else(|| EngineError::Invalid(format!("value {name:?} missing")))
        };
        let y = match &node.op {
            Op::Input => x.clone(),
            Op::Conv2d {
                weight,
                bias,
                stride,
                padding,
                dilation,
                groups,
                padding_mode,
            } => {
                let w = param(weight)?;
                let pad = model.conv_padding(weight, *padding, *dilation, plan);
                let plain = *stride == [1, 1]
                    && *dilation == [1, 1]
                    && *groups == 1
                    && *padding_mode == PaddingMode::Zeros;
                let y = if training && plain {
                    crate::train::conv::conv2d(arg(0)?, &w, pad)?
                } else {
                    let xin = pad2d(arg(0)?, pad, *padding_mode)?;
                    conv2d(&xin, &w, *stride, *dilation, *groups)?
                };
                match bias {
                    Some(b) => y.broadcast_add(&param(b)?.reshape((1, (), 1, 1))?)?,
                    None => y,
                }
            }
            Op::Linear { weight, bias } => {
                let w = param(weight)?;
                let y = arg(0)?.matmul(&w.t()?)?;
                match bias {
                    Some(b) => y.broadcast_add(&param(b)?)?,
                    None => y,
                }
            }
            Op::Relu => arg(0)?.relu()?,
            Op::Gelu => arg(0)?.gelu_erf()?,
            Op::Silu => arg(0)?.silu()?,
            Op::AvgPool2d {
                kernel,
                stride,
                padding,
                count_include_pad,
            } => {
                let x = arg(0)?;
                let padded = pad2d(x, *padding, PaddingMode::Zeros)?;
                let sum = padded
                    .avg_pool2d_with_stride((kernel[0], kernel[1]), (stride[0], stride[1]))?;
                if *count_include_pad || *padding == [0, 0] {
                    sum
                } else {
                    let ones =
                        Tensor::ones((1, 1, x.dim(2)?, x.dim(3)?), DType::F32, &Device::Cpu)?;
                    let frac = pad2d(&ones, *padding, PaddingMode::Zeros)?
                        .avg_pool2d_with_stride((kernel[0], kernel[1]), (stride[0], stride[1]))?;
                    sum.broadcast_div(&frac)?
                }
            }
            Op::MaxPool2d {
                kernel,
                stride,
                padding,
            } => {
                let padded = pad_value(arg(0)?, *padding, f32::NEG_INFINITY)?;
                padded.max_pool2d_with_stride((kernel[0], kernel[1]), (stride[0], stride[1]))?
            }
            Op::GlobalAvgPool => arg(0)?.mean((2, 3))?,
            Op::BatchNorm2d {
                weight,
                bias,
                running_mean,
                running_var,
                eps,
            } => {
                let c = |t: &Tensor| t.reshape((1, (), 1, 1));
                let mean = c(&param(running_mean)?)?;
                let inv = c(&(param(running_var)? + f64::from(*eps))?.sqrt()?.recip()?)?;
                let mut y = arg(0)?.broadcast_sub(&mean)?.broadcast_mul(&inv)?;
                if let Some(w) = weight {
                    y = y.broadcast_mul(&c(&param(w)?)?)?;
                }
                if let Some(b) = bias {
                    y = y.broadcast_add(&c(&param(b)?)?)?;
                }
                y
            }
            Op::Add => (arg(0)? + arg(1)?)?,
            Op::Flatten => arg(0)?.flatten_from(1)?,
            Op::Select { h, w } => arg(0)?
                .narrow(2, *h, 1)?
                .narrow(3, *w, 1)?
                .flatten_from(1)?,
            Op::Softmax => softmax_last(arg(0)?)?,
        };
        values.insert(node.out.as_str(), y.clone());
        last = Some(y);
    }
    last.ok_or_else(|| EngineError::Invalid("empty graph".into()))
}

/// Pad the spatial axes of `(N, C, H, W)`.
fn pad2d(x: &Tensor, pad: [usize; 2], mode: PaddingMode) -> candle_core::Result<Tensor> {
    if pad == [0, 0] {
        return Ok(x.clone());
    }
    match mode {
        PaddingMode::Zeros => x
            .pad_with_zeros(2, pad[0], pad[0])?
            .pad_with_zeros(3, pad[1], pad[1]),
        PaddingMode::Replicate => x
            .pad_with_same(2, pad[0], pad[0])?
            .pad_with_same(3, pad[1], pad[1]),
    }
}

/// Pad the spatial axes with a constant.
fn pad_value(x: &Tensor, pad: [usize; 2], value: f32) -> candle_core::Result<Tensor> {
    if pad == [0, 0] {
        return Ok(x.clone());
    }
    let (n, c, h, w) = x.dims4()?;
    let rows = Tensor::full(value, (n, c, pad[0], w), x.device())?;
    let x = Tensor::cat(&[&rows, x, &rows], 2)?;
    let cols = Tensor::full(value, (n, c, h + 2 * pad[0], pad[1]), x.device())?;
    Tensor::cat(&[&cols, &x, &cols], 3)
}

/// Convolution of an already padded input; unequal strides run at stride 1 and subsample.
fn conv2d(
    x: &Tensor,
    w: &Tensor,
    stride: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Result<Tensor, EngineError> {
    if dilation[0] != dilation[1] {
        return Err(EngineError::Invalid(format!(
            "unequal dilations {dilation:?} are not supported"
        )));
    }
    if stride[0] == stride[1] {
        return Ok(x.conv2d(w, 0, stride[0], dilation[0], groups)?);
    }
    let full = x.conv2d(w, 0, 1, dilation[0], groups)?;
    let pick = |len: usize, s: usize| -> candle_core::Result<Tensor> {
        let idx: Vec<u32> = (0..len)
            .step_by(s)
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        Tensor::new(idx.as_slice(), &Device::Cpu)
    };
    let (_, _, h, wd) = full.dims4()?;
    let full = full.index_select(&pick(h, stride[0])?, 2)?;
    Ok(full.index_select(&pick(wd, stride[1])?, 3)?)
}

/// Softmax over the last axis, shifted by the maximum for stability.
fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    let last = x.rank() - 1;
    let shifted = x.broadcast_sub(&x.max_keepdim(last)?)?;
    let e = shifted.exp()?;
    e.broadcast_div(&e.sum_keepdim(last)?)
}
