//! What the window shows, and the one place it changes: model, plan, engine, input, results.
//!
//! Panels read a [`State`]; the app changes it through its methods, which re-discretize and
//! re-run the network in the same call, so every panel drawn afterwards in the frame sees the
//! new numbers.

use std::sync::Arc;
use std::time::Instant;

use image::DynamicImage;
use ndarray::{Array2, Array3, ArrayD};

use super::layer_data::{Plane, Slice, discrete_plane};
use crate::data::input::image_to_input;
use crate::engine::cpu::CpuEngine;
use crate::engine::{Engine, EngineError, softmax_rows};
use crate::eval::argmax;
use crate::gpu::{GpuContext, GpuError};
use crate::inn::{PartitionKind, Plan, Resolved};
use crate::model::{Model, ParamSpec};

/// The model on screen and everything computed from it.
pub struct State {
    /// The model.
    pub model: Model,
    /// Where it came from (file path or "bundled demo").
    pub source: String,
    /// Sizes, partition kind, resolution as the sliders set them.
    pub plan: Plan,
    /// The plan made concrete.
    pub resolved: Resolved,
    /// The engine computing.
    pub engine: Engine,
    /// Why the CPU engine stands in for the GPU, if it does.
    pub engine_note: Option<String>,
    /// The current picture and its name.
    pub image: DynamicImage,
    /// Its name.
    pub image_name: String,
    /// The network input at the current resolution, `(1, C, H, W)`.
    pub input: ndarray::Array4<f32>,
    /// Logits now.
    pub logits: Vec<f32>,
    /// Class probabilities now.
    pub probs: Vec<f32>,
    /// Class probabilities at full size and native resolution.
    pub reference: Vec<f32>,
    /// The reference network (full size, native resolution), discretized once per model.
    reference_engine: CpuEngine,
    /// Number of parameters at full size.
    pub full_params: usize,
    /// Index into [`State::layers`] of the layer the panels follow.
    pub selected: usize,
    /// Discrete weight of the selected layer under the current plan where the CPU engine
    /// holds it (the GPU engine's stay on the GPU): panels ask [`State::weight_slice`] and
    /// [`State::channel_sums`], which serve either.
    weight: Option<ArrayD<f32>>,
    /// Changes whenever the engine is replaced or gets another model (for caches of what it
    /// computed, such as the GPU heatmap).
    pub generation: u64,
    /// Time of the last re-discretization + forward pass, milliseconds.
    pub update_ms: f32,
    /// The last error to show (load failures, refused plans).
    pub error: Option<String>,
    /// The discrete twin shown beside the INN, if this model has one.
    pub twin: Option<Twin>,
}

/// A conventional network of the same architecture, run beside the INN on the same input: at
/// the INN's widths it is L1-pruned, at the INN's resolution it is fed the resized image.
pub struct Twin {
    /// The twin at full width.
    pub model: Model,
    /// Widths it is pruned to now (one per convolution).
    pub widths: Vec<usize>,
    /// The pruned twin and its engine.
    pruned: Model,
    engine: CpuEngine,
    /// Its class probabilities for the current input.
    pub probs: Vec<f32>,
}

impl Twin {
    /// Prepare `model` (full width, native resolution).
    ///
    /// # Errors
    /// A twin that does not run.
    pub fn new(model: Model) -> anyhow::Result<Self> {
        let plan = model.resolve(&model.default_plan())?;
        let engine = CpuEngine::new(&model, &plan)?;
        Ok(Self {
            widths: crate::model::prune::layer_widths(&model),
            pruned: model.clone(),
            model,
            engine,
            probs: Vec::new(),
        })
    }

    /// Follow the INN's plan and classify `input`, the INN's own input (the twin takes the same
    /// input spec, checked when it is attached).
    fn update(
        &mut self,
        inn: &Model,
        plan: &Resolved,
        input: &ndarray::Array4<f32>,
    ) -> Result<(), EngineError> {
        let widths = crate::sweep::twin_widths(inn, plan, &self.model);
        if widths != self.widths || self.engine.plan().resolution != plan.resolution {
            let pruned = crate::sweep::twin_at(&self.model, &widths)?;
            let mut twin_plan = pruned.default_plan();
            twin_plan.resolution = plan.resolution;
            let resolved = pruned.resolve(&twin_plan)?;
            self.engine = CpuEngine::new(&pruned, &resolved)?;
            self.pruned = pruned;
            self.widths = widths;
        }
        let logits = self.engine.forward(&self.pruned, input.view())?;
        self.probs = softmax_rows(&logits).row(0).to_vec();
        Ok(())
    }
}

fn gpu_engine(
    gpu: Option<&Arc<GpuContext>>,
    model: &Model,
    plan: &Resolved,
) -> anyhow::Result<(Engine, Option<String>)> {
    let gpu = gpu.ok_or_else(|| "no GPU adapter".to_string());
    Ok(Engine::on(gpu, model, plan)?)
}

/// A number no earlier engine of this process had.
fn next_generation() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

impl State {
    /// Open `model`; `gpu` is the window's device when it can run compute.
    ///
    /// # Errors
    /// A model whose default plan does not run.
    pub fn new(
        model: Model,
        source: String,
        gpu: Option<&Arc<GpuContext>>,
        image: DynamicImage,
        image_name: String,
    ) -> anyhow::Result<Self> {
        let plan = model.default_plan();
        let resolved = model.resolve(&plan)?;
        let (engine, engine_note) = gpu_engine(gpu, &model, &resolved)?;
        let input = image_to_input(&image, &model.doc.input, resolved.resolution);
        let reference_engine = CpuEngine::new(&model, &resolved)?;
        let reference = Self::reference_probs(&model, &reference_engine, &input)?;
        let full_params = model.param_count(&resolved)?;
        let mut state = Self {
            model,
            source,
            plan,
            resolved,
            engine,
            engine_note,
            image,
            image_name,
            input,
            logits: Vec::new(),
            probs: Vec::new(),
            reference,
            reference_engine,
            full_params,
            selected: 0,
            weight: None,
            generation: next_generation(),
            update_ms: 0.0,
            error: None,
            twin: None,
        };
        // Follow the first layer continuous in both channel axes (the most telling surface).
        state.selected = state
            .layers()
            .iter()
            .position(|p| {
                p.layout
                    .axes
                    .iter()
                    .filter(|a| matches!(a, crate::inn::AxisKind::Channel { .. }))
                    .count()
                    >= 2
            })
            .unwrap_or(0);
        state.recompute()?;
        Ok(state)
    }

    /// Probabilities of `input` (at the native resolution) on the reference network.
    fn reference_probs(
        model: &Model,
        reference: &CpuEngine,
        input: &ndarray::Array4<f32>,
    ) -> anyhow::Result<Vec<f32>> {
        let logits = reference.forward(model, input.view())?;
        Ok(softmax_rows(&logits).row(0).to_vec())
    }

    /// Parameters the panels can follow: weights of convolutions and linear layers.
    #[must_use]
    pub fn layers(&self) -> Vec<&ParamSpec> {
        self.model
            .doc
            .params
            .iter()
            .filter(|p| p.layout.shape.len() >= 2)
            .collect()
    }

    /// The layer the panels follow.
    #[must_use]
    pub fn layer(&self) -> Option<&ParamSpec> {
        self.layers().get(self.selected).copied()
    }

    /// Replace the plan (sizes, partition kind, resolution); recompute everything. A plan the
    /// model refuses is reported and the previous one stays.
    pub fn set_plan(&mut self, plan: Plan) {
        if plan == self.plan {
            return;
        }
        match self.model.resolve(&plan) {
            Ok(resolved) => {
                let previous = std::mem::replace(&mut self.plan, plan);
                let previous_resolved = std::mem::replace(&mut self.resolved, resolved);
                if let Err(e) = self.recompute() {
                    self.error = Some(format!("{e:#}"));
                    self.plan = previous;
                    self.resolved = previous_resolved;
                    let _ = self.recompute();
                }
            }
            Err(e) => self.error = Some(e.to_string()),
        }
    }

    /// Every group at `keep` of its original size.
    pub fn set_keep(&mut self, keep: f64) {
        let mut plan = self.plan.clone();
        plan.set_keep(&self.model.doc.groups, keep);
        self.set_plan(plan);
    }

    /// Back to full size, native resolution, learned partitions.
    pub fn reset(&mut self) {
        self.set_plan(self.model.default_plan());
    }

    /// The partition kind.
    pub fn set_partition(&mut self, kind: PartitionKind) {
        let mut plan = self.plan.clone();
        plan.partition = kind;
        self.set_plan(plan);
    }

    /// Follow another layer.
    pub fn select(&mut self, index: usize) {
        let n = self.layers().len();
        if n > 0 {
            self.selected = index.min(n - 1);
            self.weight = self.read_selected_weight();
        }
    }

    /// A new picture.
    pub fn set_image(&mut self, image: DynamicImage, name: String) {
        self.image = image;
        self.image_name = name;
        let native = self.model.doc.input.native();
        let at_native = image_to_input(&self.image, &self.model.doc.input, native);
        self.reference = Self::reference_probs(&self.model, &self.reference_engine, &at_native)
            .unwrap_or_default();
        if let Err(e) = self.recompute() {
            self.error = Some(format!("{e:#}"));
        }
    }

    /// Replace the model (the caller has loaded and validated it); keeps the old one if the
    /// new one does not run.
    ///
    /// # Errors
    /// The new model does not run at its default plan; nothing changed then.
    pub fn load(
        &mut self,
        model: Model,
        source: String,
        gpu: Option<&Arc<GpuContext>>,
    ) -> anyhow::Result<()> {
        let image = self.image.clone();
        let name = self.image_name.clone();
        *self = Self::new(model, source, gpu, image, name)?;
        Ok(())
    }

    /// Keep ratio of the current plan: the mean over groups of size / original size (1 for a
    /// model without groups). What the keep % slider shows and the pruning sweep marks.
    #[must_use]
    pub fn mean_keep(&self) -> f64 {
        let groups = &self.model.doc.groups;
        #[expect(clippy::cast_precision_loss, reason = "sizes are small")]
        let sum: f64 = groups
            .iter()
            .map(|g| self.plan.size_of(g) as f64 / g.original_size as f64)
            .sum();
        #[expect(clippy::cast_precision_loss, reason = "few groups")]
        if groups.is_empty() {
            1.0
        } else {
            sum / groups.len() as f64
        }
    }

    /// Top-1 class of the twin now.
    #[must_use]
    pub fn twin_top1(&self) -> Option<usize> {
        argmax(&self.twin.as_ref()?.probs)
    }

    /// Whether the selected layer's weights are held on the host (the CPU engine's; the GPU
    /// engine's are not read back for the panels).
    #[must_use]
    pub fn weight_on_host(&self) -> bool {
        self.weight.is_some()
    }

    /// Slice `which` of the selected layer's discrete weights, with the position of each row
    /// and column, whichever engine holds them (the GPU engine's are read back: for exports
    /// and views that cannot draw on the GPU, not for every frame).
    #[must_use]
    pub fn weight_slice(&self, which: Slice) -> Option<Plane> {
        let param = self.layer()?;
        let read;
        let w = match &self.weight {
            Some(w) => w,
            None => {
                read = self.engine.weight(&param.name).ok()?;
                &read
            }
        };
        Some(discrete_plane(param, w, which, &self.resolved))
    }

    /// The first `n` output channels of the selected 4-D kernel summed over input channels,
    /// `(n, kh, kw)`, whichever engine holds it (on the GPU they are summed there and only
    /// they come back).
    #[must_use]
    pub fn channel_sums(&self, n: usize) -> Option<Array3<f32>> {
        match &self.weight {
            Some(w) => crate::engine::channel_sums(w, n),
            None => self.engine.channel_sums(&self.layer()?.name, n).ok(),
        }
    }

    /// The selected weight, with the CPU engine (nothing is read back from the GPU).
    fn read_selected_weight(&mut self) -> Option<ArrayD<f32>> {
        let name = self.layer()?.name.clone();
        match &self.engine {
            Engine::Cpu(c) => c.weight(&name).ok(),
            Engine::Gpu(_) => None,
        }
    }

    /// Re-discretize and re-run for the current plan and input. A GPU that fails (device lost,
    /// out of memory, a plan beyond its limits) is replaced by the CPU engine, with the reason
    /// shown, and the work is done there: the window keeps going.
    fn recompute(&mut self) -> anyhow::Result<()> {
        match self.run_engine() {
            Err(EngineError::Gpu(e)) if !matches!(e, GpuError::Model(_)) => {
                let (engine, note) = Engine::after_gpu_failure(&e, &self.model, &self.resolved)?;
                self.engine = engine;
                self.generation = next_generation();
                self.engine_note = Some(note);
                self.run_engine()?;
            }
            other => other?,
        }
        Ok(())
    }

    fn run_engine(&mut self) -> Result<(), EngineError> {
        let start = Instant::now();
        self.engine.set_plan(&self.model, &self.resolved)?;
        self.input = image_to_input(&self.image, &self.model.doc.input, self.resolved.resolution);
        let logits: Array2<f32> = self.engine.forward(&self.model, self.input.view())?;
        self.probs = softmax_rows(&logits).row(0).to_vec();
        self.logits = logits.row(0).to_vec();
        self.weight = self.read_selected_weight();
        if let Some(twin) = &mut self.twin {
            twin.update(&self.model, &self.resolved, &self.input)?;
        }
        self.update_ms = start.elapsed().as_secs_f32() * 1e3;
        self.error = None;
        Ok(())
    }

    /// Show `twin` beside the INN (or none).
    ///
    /// # Errors
    /// A twin that does not run or does not fit the INN's input; nothing changed then.
    pub fn set_twin(&mut self, twin: Option<Model>) -> anyhow::Result<()> {
        let Some(model) = twin else {
            self.twin = None;
            return Ok(());
        };
        if model.doc.input != self.model.doc.input || model.doc.classes != self.model.doc.classes {
            anyhow::bail!(
                "{} does not take the same input and classes as {}",
                model.doc.name,
                self.model.doc.name
            );
        }
        let mut twin = Twin::new(model)?;
        twin.update(&self.model, &self.resolved, &self.input)?;
        self.twin = Some(twin);
        Ok(())
    }

    /// Top-1 class now and in the reference.
    #[must_use]
    pub fn top1(&self) -> (Option<usize>, Option<usize>) {
        (argmax(&self.probs), argmax(&self.reference))
    }

    /// KL divergence of the current prediction from the reference, in nats.
    #[must_use]
    pub fn kl_from_reference(&self) -> Option<f32> {
        (self.reference.len() == self.probs.len() && !self.probs.is_empty()).then(|| {
            self.reference
                .iter()
                .zip(&self.probs)
                .filter(|(p, _)| **p > 0.0)
                .map(|(p, q)| p * (p / q.max(1e-30)).ln())
                .sum::<f32>()
                // Not negative; round-off can make a near-zero sum so (shown as "-0.0000").
                .max(0.0)
        })
    }
}
