//! Engines: run a model under a plan. The CPU engine is always there; the GPU engine
//! ([`crate::gpu`]) uses wgpu compute where an adapter exists. [`Engine`] is either, chosen by
//! [`EngineChoice`], with the reason whenever the CPU stands in for the GPU.

pub mod cpu;

use std::sync::Arc;

use eframe::egui_wgpu::wgpu;

use ndarray::{Array2, ArrayView4};

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

impl Engine {
    /// Create the engine `choice` asks for. With `auto`, a GPU that is missing or fails falls
    /// back to the CPU; the second value then says why.
    ///
    /// # Errors
    /// `gpu` without a usable adapter, or a plan the model refuses.
    pub fn create(
        choice: EngineChoice,
        model: &Model,
        plan: &Resolved,
    ) -> Result<(Self, Option<String>), EngineError> {
        match choice {
            EngineChoice::Cpu => Ok((Self::Cpu(CpuEngine::new(model, plan)?), None)),
            EngineChoice::Gpu => {
                let ctx = Arc::new(GpuContext::headless()?);
                Ok((Self::Gpu(Box::new(GpuEngine::new(ctx, model, plan)?)), None))
            }
            EngineChoice::Auto => {
                let why = match crate::gpu::context::best_adapter() {
                    // A software adapter (lavapipe) runs on the same CPU cores, slower than
                    // the CPU engine: `auto` takes the CPU engine then, `gpu` forces it.
                    Some(info) if info.device_type == wgpu::DeviceType::Cpu => format!(
                        "the only GPU adapter is a software one, {}; --engine gpu uses it anyway",
                        info.name
                    ),
                    _ => match GpuContext::headless()
                        .and_then(|ctx| GpuEngine::new(Arc::new(ctx), model, plan))
                    {
                        Ok(gpu) => return Ok((Self::Gpu(Box::new(gpu)), None)),
                        Err(GpuError::Model(e)) => return Err(e.into()),
                        Err(why) => why.to_string(),
                    },
                };
                Ok((Self::Cpu(CpuEngine::new(model, plan)?), Some(why)))
            }
        }
    }

    /// Create on an existing GPU context (eframe's device), falling back to the CPU.
    ///
    /// # Errors
    /// A plan the model refuses.
    pub fn on_context(
        ctx: Option<Arc<GpuContext>>,
        model: &Model,
        plan: &Resolved,
    ) -> Result<(Self, Option<String>), EngineError> {
        let Some(ctx) = ctx else {
            return Ok((
                Self::Cpu(CpuEngine::new(model, plan)?),
                Some("no GPU adapter".into()),
            ));
        };
        match GpuEngine::new(ctx, model, plan) {
            Ok(gpu) => Ok((Self::Gpu(Box::new(gpu)), None)),
            Err(GpuError::Model(e)) => Err(e.into()),
            Err(why) => Ok((
                Self::Cpu(CpuEngine::new(model, plan)?),
                Some(why.to_string()),
            )),
        }
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
