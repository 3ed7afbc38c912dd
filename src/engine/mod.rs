//! Engines: run a model under a plan. The CPU engine is always there; the GPU engine
//! ([`crate::gpu`]) uses wgpu compute where an adapter exists. [`Engine`] is either, chosen by
//! [`EngineChoice`], with the reason whenever the CPU stands in for the GPU.

pub mod cpu;

use std::sync::Arc;

use eframe::egui_wgpu::wgpu;

use ndarray::{Array2, Array3, ArrayView4};

use crate::gpu::{GpuContext, GpuEngine, GpuError};
use crate::inn::Resolved;
use crate::model::{DiscreteWeights, Model, ModelError};
use cpu::CpuEngine;

/// What can fail while running a model.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The model or plan cannot run.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// A tensor operation failed.
    #[error("tensor operation: {0}")]
    Tensor(#[from] candle_core::Error),
    /// The GPU failed.
    #[error(transparent)]
    Gpu(#[from] GpuError),
    /// Inputs or state that do not fit.
    #[error("{0}")]
    Invalid(String),
}

/// Which engine to use. Default is `auto`: the GPU where an adapter exists, else the CPU.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EngineChoice {
    /// GPU where an adapter exists, else CPU.
    #[default]
    Auto,
    /// The wgpu compute engine; an error where there is no adapter.
    Gpu,
    /// The CPU engine.
    Cpu,
}

impl std::str::FromStr for EngineChoice {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "auto" => Ok(Self::Auto),
            "gpu" => Ok(Self::Gpu),
            "cpu" => Ok(Self::Cpu),
            other => Err(format!("unknown engine {other:?} (auto, gpu or cpu)")),
        }
    }
}

/// The CPU or the GPU engine.
pub enum Engine {
    /// The CPU engine.
    Cpu(CpuEngine),
    /// The GPU engine.
    Gpu(Box<GpuEngine>),
}

/// A device that exists already (the window's), for [`choose_gpu`] to run compute on.
pub struct ExistingDevice<'a> {
    /// Its adapter.
    pub adapter: &'a wgpu::Adapter,
    /// The device.
    pub device: &'a wgpu::Device,
    /// Its queue.
    pub queue: &'a wgpu::Queue,
}

/// The one decision of where innscope computes, for the command line and the window alike:
/// the GPU context `choice` runs on, made on `existing` (the window's device) or, when that
/// is `None`, on a headless device of the best adapter; or, as `Err`, why the CPU engine
/// runs instead. `auto` passes over a software adapter (it runs on the same cores, slower
/// than the CPU engine); `gpu` takes it.
pub fn choose_gpu(
    choice: EngineChoice,
    existing: Option<ExistingDevice<'_>>,
) -> Result<Arc<GpuContext>, String> {
    let software = |name: &str| {
        format!("the only GPU adapter is a software one, {name}; --engine gpu uses it anyway")
    };
    match (choice, existing) {
        (EngineChoice::Cpu, _) => Err("--engine cpu".into()),
        (_, Some(d)) => {
            let info = d.adapter.get_info();
            crate::gpu::context::check_adapter(d.adapter)
                .map_err(|why| format!("{}: {why}", info.name))?;
            if d.device.limits().max_storage_buffers_per_shader_stage
                < crate::gpu::context::STORAGE_BUFFERS_NEEDED
            {
                return Err(format!(
                    "{}: too few storage buffers on the window's device",
                    info.name
                ));
            }
            if info.device_type == wgpu::DeviceType::Cpu && choice == EngineChoice::Auto {
                return Err(software(&info.name));
            }
            GpuContext::new(d.device.clone(), d.queue.clone(), info)
                .map(Arc::new)
                .map_err(|e| e.to_string())
        }
        (_, None) => {
            if choice == EngineChoice::Auto
                && let Some(info) = crate::gpu::context::best_adapter()
                && info.device_type == wgpu::DeviceType::Cpu
            {
                return Err(software(&info.name));
            }
            GpuContext::headless()
                .map(Arc::new)
                .map_err(|e| e.to_string())
        }
    }
}

impl Engine {
    /// Create the engine `choice` asks for on a headless device (see [`choose_gpu`]); the
    /// second value says why the CPU engine stands in for a GPU, where it does.
    ///
    /// # Errors
    /// `gpu` without a usable adapter, or a plan the model refuses.
    pub fn create(
        choice: EngineChoice,
        model: &Model,
        plan: &Resolved,
    ) -> Result<(Self, Option<String>), EngineError> {
        let gpu = choose_gpu(choice, None);
        if choice == EngineChoice::Gpu
            && let Err(why) = &gpu
        {
            return Err(GpuError::NoAdapter(why.clone()).into());
        }
        Self::on(gpu.as_ref().map_err(Clone::clone), model, plan)
    }

    /// The GPU engine on `gpu` (what [`choose_gpu`] chose) or, where there is none or it
    /// cannot hold the model, the CPU engine with the reason.
    ///
    /// # Errors
    /// A plan the model refuses.
    pub fn on(
        gpu: Result<&Arc<GpuContext>, String>,
        model: &Model,
        plan: &Resolved,
    ) -> Result<(Self, Option<String>), EngineError> {
        let why = match gpu {
            Ok(ctx) => match GpuEngine::new(Arc::clone(ctx), model, plan) {
                Ok(gpu) => return Ok((Self::Gpu(Box::new(gpu)), None)),
                Err(GpuError::Model(e)) => return Err(e.into()),
                Err(why) => why.to_string(),
            },
            Err(why) => why,
        };
        Ok((Self::Cpu(CpuEngine::new(model, plan)?), Some(why)))
    }

    /// The CPU engine taking over from a GPU engine that failed with `error`, and the note
    /// that says so.
    ///
    /// # Errors
    /// A plan the model refuses.
    pub fn after_gpu_failure(
        error: &GpuError,
        model: &Model,
        plan: &Resolved,
    ) -> Result<(Self, String), EngineError> {
        Ok((
            Self::Cpu(CpuEngine::new(model, plan)?),
            format!("the GPU failed ({error}); the CPU engine took over"),
        ))
    }

    /// `cpu`, or `gpu: ADAPTER (BACKEND, TYPE)`.
    #[must_use]
    pub fn describe(&self) -> String {
        match self {
            Self::Cpu(_) => "cpu".into(),
            Self::Gpu(g) => format!("gpu: {}", g.context().describe()),
        }
    }

    /// The plan the current weights belong to.
    #[must_use]
    pub fn plan(&self) -> &Resolved {
        match self {
            Self::Cpu(c) => c.plan(),
            Self::Gpu(g) => g.plan(),
        }
    }

    /// Re-discretize for a new plan.
    ///
    /// # Errors
    /// A plan the model refuses; GPU failures.
    pub fn set_plan(&mut self, model: &Model, plan: &Resolved) -> Result<(), EngineError> {
        match self {
            Self::Cpu(c) => c.set_plan(model, plan),
            Self::Gpu(g) => Ok(g.set_plan(model, plan)?),
        }
    }

    /// Parameters the last plan change re-discretized (those whose sampling it changed), and
    /// how many the model has.
    #[must_use]
    pub fn last_change(&self) -> (usize, usize) {
        match self {
            Self::Cpu(c) => c.last_change(),
            Self::Gpu(g) => g.last_change(),
        }
    }

    /// Logits `(N, classes)` for a batch at the plan's resolution.
    ///
    /// # Errors
    /// Inputs of the wrong shape; GPU failures.
    pub fn forward(
        &mut self,
        model: &Model,
        input: ArrayView4<'_, f32>,
    ) -> Result<Array2<f32>, EngineError> {
        match self {
            Self::Cpu(c) => c.forward(model, input),
            Self::Gpu(g) => Ok(g.forward(model, input)?),
        }
    }

    /// The discretized weights (read back from the GPU for the GPU engine).
    ///
    /// # Errors
    /// GPU failures.
    pub fn weights(&self) -> Result<DiscreteWeights, EngineError> {
        match self {
            Self::Cpu(c) => c.weights(),
            Self::Gpu(g) => Ok(g.read_weights()?),
        }
    }

    /// One discretized weight (read back from the GPU for the GPU engine).
    ///
    /// # Errors
    /// An unknown parameter; GPU failures.
    pub fn weight(&self, name: &str) -> Result<ndarray::ArrayD<f32>, EngineError> {
        match self {
            Self::Cpu(c) => c.weight(name),
            Self::Gpu(g) => Ok(g.read_weight(name)?),
        }
    }

    /// The first `n` output channels of the 4-D weight `name` summed over input channels,
    /// `(n, kh, kw)`: on the GPU where the weights are (only the sums come back).
    ///
    /// # Errors
    /// An unknown parameter or one that is not 4-D; GPU failures.
    pub fn channel_sums(&self, name: &str, n: usize) -> Result<Array3<f32>, EngineError> {
        match self {
            Self::Cpu(c) => channel_sums(&c.weight(name)?, n)
                .ok_or_else(|| EngineError::Invalid(format!("{name} is not a 4-D kernel"))),
            Self::Gpu(g) => Ok(g.channel_sums(name, n)?),
        }
    }

    /// The current shape of one discretized weight (`None` for an unknown parameter).
    #[must_use]
    pub fn weight_shape(&self, name: &str) -> Option<Vec<usize>> {
        match self {
            Self::Cpu(c) => c.weight_shape(name),
            Self::Gpu(g) => g.weight_shape(name).ok(),
        }
    }

    /// Wait for queued GPU work (a no-op on the CPU), for timing.
    ///
    /// # Errors
    /// A lost device.
    pub fn wait(&self) -> Result<(), EngineError> {
        match self {
            Self::Cpu(_) => Ok(()),
            Self::Gpu(g) => Ok(g.wait()?),
        }
    }
}

/// The first `n` output channels of a 4-D kernel `w` summed over input channels,
/// `(n, kh, kw)`; `None` for other ranks. What the GPU engine computes where its weights are.
#[must_use]
pub fn channel_sums(w: &ndarray::ArrayD<f32>, n: usize) -> Option<Array3<f32>> {
    let w = w.view().into_dimensionality::<ndarray::Ix4>().ok()?;
    let n = n.min(w.shape()[0]);
    let (kh, kw) = (w.shape()[2], w.shape()[3]);
    let mut out = Array3::zeros((n, kh, kw));
    for a in 0..n {
        out.index_axis_mut(ndarray::Axis(0), a)
            .assign(&w.index_axis(ndarray::Axis(0), a).sum_axis(ndarray::Axis(0)));
    }
    Some(out)
}

/// Class probabilities from logits, per row (softmax, shifted by the row maximum).
#[must_use]
pub fn softmax_rows(logits: &ndarray::Array2<f32>) -> ndarray::Array2<f32> {
    let mut p = logits.clone();
    for mut row in p.rows_mut() {
        let max = row.fold(f32::NEG_INFINITY, |a, &b| a.max(b));
        row.mapv_inplace(|v| (v - max).exp());
        let sum = row.sum();
        row.mapv_inplace(|v| v / sum);
    }
    p
}
