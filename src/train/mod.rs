//! Training INNs and their discrete twins with candle's autodiff.
//!
//! The trainable values are the model's own tensors: control values λ for continuous
//! parameters, the entries themselves for discrete ones. Each step samples a plan (a partition
//! size per group and an input resolution), discretizes every parameter from λ as a chain of
//! differentiable tensor ops (one interpolation matrix per continuous axis, from the same
//! [`Basis`] the engines use, then quadrature, `τ` and the area element), runs the graph with
//! the CPU engine's [`run_graph`] and steps AdamW on the cross-entropy. Sampling the width makes
//! λ smooth along its channel axes, so the network can later be pruned by taking fewer points;
//! sampling the resolution makes the continuous kernels compute the same integral at any pixel
//! pitch.
//!
//! A run is reproducible from its seed: epoch `e` shuffles the data and samples its plans from
//! a generator seeded by `(seed, e)`, so a run resumed at an epoch boundary sees what an
//! uninterrupted one would (AdamW's moment estimates restart from zero on resume).

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use candle_core::{DType, Device, Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

use crate::data::idx::Dataset;
use crate::data::input::grey_batch;
use crate::engine::EngineError;
use crate::engine::cpu::run_graph;
use crate::inn::basis::Basis;
use crate::inn::plan::keep_size;
use crate::inn::{ParamLayout, PartitionKind, Plan, Resolved};
use crate::model::{Model, ModelError};

/// What to train and how.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainConfig {
    /// Passes over the training set.
    pub epochs: usize,
    /// Images per step.
    pub batch: usize,
    /// Peak learning rate (cosine decay to zero over the run).
    pub lr: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Seed of initialisation, shuffling and plan sampling.
    pub seed: u64,
    /// Input resolutions sampled uniformly per step (the native one only for a discrete twin).
    pub resolutions: Vec<usize>,
    /// Smallest fraction of a group's size sampled per step (1 trains at full width only).
    pub min_keep: f64,
    /// Probability that a step runs every group at full size (ignored by the sandwich rule).
    pub full_width_prob: f64,
    /// The sandwich rule of slimmable networks with in-place distillation: when `Some(k)`,
    /// every step trains the full width on the labels, and the smallest width (`min_keep`) and
    /// `k` random widths on the full width's answers (its detached class probabilities), all at
    /// one resolution and summed into one update. `None`: one sampled width per step.
    pub sandwich: Option<usize>,
    /// Random horizontal flips of the training images.
    pub flip: bool,
    /// Train on the first `limit` images only (for quick checks).
    pub limit: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            epochs: 10,
            batch: 64,
            lr: 3e-3,
            weight_decay: 1e-4,
            seed: 1,
            resolutions: vec![28],
            min_keep: 1.0,
            full_width_prob: 1.0,
            sandwich: None,
            flip: true,
            limit: None,
        }
    }
}

/// Progress of a run, reported every few steps.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// Epoch (0-based) being trained.
    pub epoch: usize,
    /// Step within the epoch (1-based, after the step).
    pub step: usize,
    /// Steps per epoch.
    pub steps: usize,
    /// Mean loss over the epoch so far.
    pub loss: f32,
    /// Training accuracy over the epoch so far (at the sampled plans).
    pub accuracy: f32,
    /// Training throughput over the epoch so far.
    pub images_per_s: f32,
}

/// Discretize `lambda` (a tensor carrying gradients) under `plan` with differentiable ops:
/// interpolation along each continuous axis in [`ParamLayout::interpolation_order`], then
/// [`ParamLayout::scaling`] (the quadrature weights times `τ` as one factor, which differs from
/// the engines' `(f · q) · τ` only in float rounding; gradients do not need the bits).
///
/// # Errors
/// A plan that lacks one of the parameter's groups, or quadrature on fewer than two points.
pub fn discretize_tensor(
    lambda: &Tensor,
    layout: &ParamLayout,
    plan: &Resolved,
) -> Result<Tensor, EngineError> {
    let rank = layout.axes.len();
    let mut t = lambda.clone();
    for dim in layout.interpolation_order() {
        let Some(points) = layout.axis_points(dim, plan).map_err(ModelError::from)? else {
            continue;
        };
        let n_control = t.dim(dim)?;
        let basis = interpolation_matrix(&points, n_control)?;
        let moved = t.transpose(dim, rank - 1)?.contiguous()?;
        let mut shape = moved.dims().to_vec();
        let flat = moved.reshape(((), n_control))?.matmul(&basis.t()?)?;
        shape[rank - 1] = points.len();
        t = flat.reshape(shape)?.transpose(dim, rank - 1)?;
    }
    let scaling = layout.scaling(plan).map_err(ModelError::from)?;
    if let Some((q, quad)) = &scaling.quadrature {
        let mut shape = vec![1; rank];
        shape[quad.dim] = q.len();
        let scaled: Vec<f32> = q.iter().map(|w| w * quad.tau).collect();
        t = t.broadcast_mul(&Tensor::from_vec(scaled, shape, &Device::Cpu)?)?;
    }
    let area = scaling.area;
    if (area - 1.0).abs() > f32::EPSILON {
        t = (t * f64::from(area))?;
    }
    Ok(t.contiguous()?)
}

/// The dense `(points, n_control)` matrix of the cubic interpolation basis (clamped taps that
/// coincide add up).
fn interpolation_matrix(points: &[f32], n_control: usize) -> Result<Tensor, EngineError> {
    let basis = Basis::new(points, n_control);
    let mut m = vec![0.0_f32; points.len() * n_control];
    for (row, (taps, weights)) in basis.taps.iter().zip(&basis.weights).enumerate() {
        for (&tap, &w) in taps.iter().zip(weights) {
            m[row * n_control + tap as usize] += w;
        }
    }
    Ok(Tensor::from_vec(
        m,
        (points.len(), n_control),
        &Device::Cpu,
    )?)
}

/// Warm start: copy into `model` every tensor of `from` whose parameter has the same name,
/// the same axes and the same stored shape (for a continuous parameter, the same control
/// grid), e.g. the convolutions of a trained run into a network with another head. Returns
/// the names copied, in `model`'s parameter order; the others keep their values.
pub fn copy_matching(model: &mut Model, from: &Model) -> Vec<String> {
    let mut copied = Vec::new();
    for p in &model.doc.params {
        let (Some(q), Some(src)) = (from.param(&p.name), from.tensors.get(&p.name)) else {
            continue;
        };
        // Same kinds of axis (group ids may be numbered differently) and the same full shape.
        let same_layout = p.layout.shape == q.layout.shape
            && p.layout.axes.len() == q.layout.axes.len()
            && p.layout
                .axes
                .iter()
                .zip(&q.layout.axes)
                .all(|(a, b)| std::mem::discriminant(a) == std::mem::discriminant(b));
        let dst = model.tensors.get_mut(&p.name);
        if let Some(dst) = dst.filter(|d| same_layout && d.shape() == src.shape()) {
            dst.assign(src);
            copied.push(p.name.clone());
        }
    }
    copied
}

/// Net2Net's deeper-network start (Chen et al., "Net2Net", ICLR 2016) for a head that gained
/// a hidden layer: when `model` has `fc1` → ReLU → `fc2` where `from` had `fc`, and `fc2`'s
/// stored shape equals `fc`'s, `fc1` starts as the identity and `fc2` as `from`'s `fc`, so the
/// deeper network starts out computing what `from` did (the ReLU passes the non-negative
/// pooled features through). For a continuous `fc1` the identity is on the control grid,
/// scaled so that the discretized layer's rows sum to one at full size: a narrow smoothing
/// band along the channel coordinate. Returns the names set, or nothing when the shapes do not
/// fit.
///
/// # Errors
/// A model that cannot be discretized (not for valid models).
pub fn deepen_head(model: &mut Model, from: &Model) -> Result<Vec<String>, ModelError> {
    let (Some(fc), Some(fc_b)) = (from.tensors.get("fc.weight"), from.tensors.get("fc.bias"))
    else {
        return Ok(Vec::new());
    };
    let (Some(w1), Some(w2), Some(b2)) = (
        model.tensors.get("fc1.weight"),
        model.tensors.get("fc2.weight"),
        model.tensors.get("fc2.bias"),
    ) else {
        return Ok(Vec::new());
    };
    let n = w1.shape()[0];
    if w1.shape() != [n, n] || w2.shape() != fc.shape() || b2.shape() != fc_b.shape() {
        return Ok(Vec::new());
    }
    let (fc, fc_b) = (fc.clone(), fc_b.clone());
    let identity = ArrayD::from_shape_fn(IxDyn(&[n, n]), |i| f32::from(u8::from(i[0] == i[1])));
    model.tensors.insert("fc1.weight".into(), identity.clone());
    model.tensors.insert("fc2.weight".into(), fc);
    model.tensors.insert("fc2.bias".into(), fc_b);
    if let Some(b1) = model.tensors.get_mut("fc1.bias") {
        b1.fill(0.0);
    }
    // Only fc1 needs discretizing to find its row sums.
    let plan = model.resolve(&model.default_plan())?;
    let layout = &model
        .param("fc1.weight")
        .ok_or_else(|| ModelError::invalid("fc1.weight has no parameter spec"))?
        .layout;
    let w = crate::inn::discretize::discretize(identity.view(), layout, &plan)
        .map_err(|e| ModelError::invalid(format!("fc1.weight: {e}")))?;
    #[expect(clippy::cast_precision_loss, reason = "a layer width")]
    let row_sum = w.sum() / w.shape()[0] as f32;
    model
        .tensors
        .insert("fc1.weight".into(), identity / row_sum);
    Ok(["fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias"]
        .map(str::to_owned)
        .to_vec())
}

/// How [`Trainer::plan_at`] sizes each group.
#[derive(Clone, Copy)]
enum Widths {
    Full,
    Smallest,
    Random,
}

/// A model being trained: its document, one [`Var`] per tensor, and the optimiser.
pub struct Trainer {
    model: Model,
    vars: Vec<(String, Var)>,
    optimizer: AdamW,
    config: TrainConfig,
}

impl Trainer {
    /// Start training `model` (its tensors are the initial values).
    ///
    /// # Errors
    /// An invalid configuration, or a tensor candle cannot hold.
    pub fn new(model: Model, config: TrainConfig) -> Result<Self, EngineError> {
        if config.batch == 0 || config.epochs == 0 || config.resolutions.is_empty() {
            return Err(EngineError::Invalid(
                "batch, epochs and resolutions must be non-empty".into(),
            ));
        }
        if !(config.min_keep > 0.0 && config.min_keep <= 1.0) {
            return Err(EngineError::Invalid(format!(
                "min keep {} is outside (0, 1]",
                config.min_keep
            )));
        }
        let vars = model
            .doc
            .params
            .iter()
            .map(|p| {
                let a = &model.tensors[&p.name];
                let data: Vec<f32> = a.iter().copied().collect();
                let t = Tensor::from_vec(data, a.shape(), &Device::Cpu)?;
                Ok((p.name.clone(), Var::from_tensor(&t)?))
            })
            .collect::<Result<Vec<_>, EngineError>>()?;
        let optimizer = AdamW::new(
            vars.iter().map(|(_, v)| v.clone()).collect(),
            ParamsAdamW {
                lr: config.lr,
                weight_decay: config.weight_decay,
                ..ParamsAdamW::default()
            },
        )?;
        Ok(Self {
            model,
            vars,
            optimizer,
            config,
        })
    }

    /// The configuration.
    #[must_use]
    pub fn config(&self) -> &TrainConfig {
        &self.config
    }

    /// A plan for one step: each group at a size drawn from `[min_keep, 1]` of its original
    /// (or all at full size, with probability `full_width_prob`), uniform partitions, and one of
    /// the configured resolutions.
    ///
    /// # Errors
    /// A sampled plan the model rejects (not for valid configurations).
    pub fn sample_plan(&self, rng: &mut StdRng) -> Result<Resolved, EngineError> {
        let r = self.sample_resolution(rng);
        let full = rng.random_bool(self.config.full_width_prob.clamp(0.0, 1.0));
        let widths = if full { Widths::Full } else { Widths::Random };
        self.plan_at(widths, r, rng)
    }

    /// The plans of one sandwich-rule step: full width first, then the smallest, then `random`
    /// sampled widths, all at one sampled resolution.
    ///
    /// # Errors
    /// A sampled plan the model rejects (not for valid configurations).
    pub fn sample_sandwich(
        &self,
        random: usize,
        rng: &mut StdRng,
    ) -> Result<Vec<Resolved>, EngineError> {
        let r = self.sample_resolution(rng);
        let mut plans = vec![
            self.plan_at(Widths::Full, r, rng)?,
            self.plan_at(Widths::Smallest, r, rng)?,
        ];
        for _ in 0..random {
            plans.push(self.plan_at(Widths::Random, r, rng)?);
        }
        Ok(plans)
    }

    fn sample_resolution(&self, rng: &mut StdRng) -> usize {
        self.config.resolutions[rng.random_range(0..self.config.resolutions.len())]
    }

    /// Uniform partitions at resolution `r`, each group's size chosen by `widths`.
    fn plan_at(&self, widths: Widths, r: usize, rng: &mut StdRng) -> Result<Resolved, EngineError> {
        let sizes = self
            .model
            .doc
            .groups
            .iter()
            .map(|g| {
                let n = g.original_size;
                let lo = keep_size(n, self.config.min_keep).min(n);
                let size = match widths {
                    Widths::Full => n,
                    Widths::Smallest => lo,
                    Widths::Random if lo >= n => n,
                    Widths::Random => rng.random_range(lo..=n),
                };
                (g.id, size)
            })
            .collect::<BTreeMap<_, _>>();
        let plan = Plan {
            sizes,
            partition: PartitionKind::Uniform,
            resolution: [r, r],
        };
        Ok(self.model.resolve(&plan)?)
    }

    /// Logits of a batch `(N, C, H, W)` under `plan`, differentiable in the control values.
    ///
    /// # Errors
    /// Discretization or op failures.
    pub fn logits(&self, x: &Tensor, plan: &Resolved) -> Result<Tensor, EngineError> {
        let mut weights = HashMap::with_capacity(self.vars.len());
        for (p, (name, var)) in self.model.doc.params.iter().zip(&self.vars) {
            weights.insert(
                name.as_str(),
                discretize_tensor(var.as_tensor(), &p.layout, plan)?,
            );
        }
        run_graph(
            &self.model,
            plan,
            x.clone(),
            &|name| {
                weights
                    .get(name)
                    .cloned()
                    .ok_or_else(|| EngineError::Invalid(format!("no parameter {name}")))
            },
            true,
        )
    }

    /// One optimisation step on a batch; returns the loss and the number of correct answers.
    ///
    /// # Errors
    /// Op failures.
    pub fn step(
        &mut self,
        x: &Tensor,
        labels: &Tensor,
        plan: &Resolved,
        lr: f64,
    ) -> Result<(f32, usize), EngineError> {
        self.sandwich_step(x, labels, std::slice::from_ref(plan), lr)
    }

    /// One sandwich-rule step: `plans[0]` (the full width) learns from the labels, every other
    /// plan from the full width's class probabilities (in-place distillation, a soft cross
    /// entropy against a detached target), and the summed loss makes one update (one plan: a
    /// plain step on the labels). Returns the full width's loss and its number of correct
    /// answers.
    ///
    /// # Errors
    /// Op failures, or no plans.
    pub fn sandwich_step(
        &mut self,
        x: &Tensor,
        labels: &Tensor,
        plans: &[Resolved],
        lr: f64,
    ) -> Result<(f32, usize), EngineError> {
        let Some((full, students)) = plans.split_first() else {
            return Err(EngineError::Invalid("a sandwich step needs plans".into()));
        };
        let logits = self.logits(x, full)?;
        let hard = candle_nn::loss::cross_entropy(&logits, labels)?;
        let mut total = hard.clone();
        if !students.is_empty() {
            let target = candle_nn::ops::softmax(&logits.detach(), 1)?;
            for plan in students {
                let student = candle_nn::ops::log_softmax(&self.logits(x, plan)?, 1)?;
                let soft = (target.mul(&student)?.sum(1)?.mean_all()? * -1.0)?;
                total = (total + soft)?;
            }
        }
        self.optimizer.set_learning_rate(lr);
        self.optimizer.backward_step(&total)?;
        let correct = logits
            .argmax(1)?
            .eq(labels)?
            .to_dtype(DType::F32)?
            .sum_all()?
            .to_scalar::<f32>()?;
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "a count of at most the batch size"
        )]
        Ok((hard.to_scalar::<f32>()?, correct as usize))
    }

    /// The learning rate at global step `t` of `total` (cosine decay from the peak).
    #[must_use]
    pub fn learning_rate(&self, t: usize, total: usize) -> f64 {
        #[expect(clippy::cast_precision_loss, reason = "step counts are small")]
        let frac = t as f64 / total.max(1) as f64;
        self.config.lr * 0.5 * (1.0 + (std::f64::consts::PI * frac).cos())
    }

    /// Train one epoch (0-based `epoch`) on `data`, calling `progress` every `every` steps and
    /// at the end; `progress` returning `false` stops the epoch early (returns `Ok(false)`).
    ///
    /// # Errors
    /// Op failures.
    pub fn epoch(
        &mut self,
        data: &Dataset,
        epoch: usize,
        every: usize,
        progress: &mut dyn FnMut(&Progress) -> bool,
    ) -> Result<bool, EngineError> {
        let mut rng = StdRng::seed_from_u64(
            self.config
                .seed
                .wrapping_mul(0x9E37_79B9_7F4A_7C15)
                .wrapping_add(epoch as u64),
        );
        let n = self.config.limit.map_or(data.len(), |l| l.min(data.len()));
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut rng);
        let batch = self.config.batch;
        let steps = n / batch;
        let total_steps = steps * self.config.epochs;
        let spec = self.model.doc.input.clone();
        let (rows, cols) = (data.images.rows, data.images.cols);
        let start = Instant::now();
        let (mut loss_sum, mut correct, mut seen) = (0.0_f64, 0_usize, 0_usize);
        for step in 0..steps {
            let plans = match self.config.sandwich {
                Some(random) => self.sample_sandwich(random, &mut rng)?,
                None => vec![self.sample_plan(&mut rng)?],
            };
            let plan = &plans[0];
            let idx = &order[step * batch..(step + 1) * batch];
            let flipped: Vec<Vec<u8>> = idx
                .iter()
                .map(|&i| {
                    let img = data.images.image(i);
                    if self.config.flip && rng.random_bool(0.5) {
                        img.chunks(cols)
                            .flat_map(|row| row.iter().rev().copied())
                            .collect()
                    } else {
                        img.to_vec()
                    }
                })
                .collect();
            let refs: Vec<&[u8]> = flipped.iter().map(Vec::as_slice).collect();
            let x = grey_batch(&refs, rows, cols, &spec, plan.resolution);
            let shape = x.shape().to_vec();
            let (data_vec, _) = x.into_raw_vec_and_offset();
            let x = Tensor::from_vec(data_vec, shape, &Device::Cpu)?;
            let labels: Vec<u32> = idx.iter().map(|&i| u32::from(data.labels[i])).collect();
            let labels = Tensor::new(labels.as_slice(), &Device::Cpu)?;
            let lr = self.learning_rate(epoch * steps + step, total_steps);
            let (loss, ok) = self.sandwich_step(&x, &labels, &plans, lr)?;
            loss_sum += f64::from(loss) * batch as f64;
            correct += ok;
            seen += batch;
            if (step + 1) % every.max(1) == 0 || step + 1 == steps {
                #[expect(clippy::cast_precision_loss, reason = "counts are small")]
                let report = Progress {
                    epoch,
                    step: step + 1,
                    steps,
                    loss: (loss_sum / seen as f64) as f32,
                    accuracy: correct as f32 / seen as f32,
                    images_per_s: seen as f32 / start.elapsed().as_secs_f32().max(1e-6),
                };
                if !progress(&report) {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// The model with the current values, `provenance` merged into its provenance.
    ///
    /// # Errors
    /// A tensor that cannot be read back (not in practice).
    pub fn snapshot(&self, provenance: serde_json::Value) -> Result<Model, EngineError> {
        let mut tensors = BTreeMap::new();
        for (name, var) in &self.vars {
            let t = var.as_tensor();
            let values = t.flatten_all()?.to_vec1::<f32>()?;
            let a = ArrayD::from_shape_vec(IxDyn(t.dims()), values)
                .map_err(|e| EngineError::Invalid(e.to_string()))?;
            tensors.insert(name.clone(), a);
        }
        let mut doc = self.model.doc.clone();
        doc.provenance = provenance;
        Ok(Model::new(doc, tensors)?)
    }
}
