//! Discretization on the GPU (`shaders/discretize.wgsl`): every parameter a plan change
//! touches, in a handful of dispatches whatever the number of parameters.
//!
//! λ of all parameters lives in one buffer and their discrete values in another (an *arena*),
//! each parameter at its own offset; a model larger than one binding allows is split into
//! several such pairs (*buckets*). A plan change builds one table — a job per parameter and
//! pass, the bases of the partitions and the quadrature weights — uploads it in one write, and
//! dispatches each pass once per bucket. A pass interpolates each parameter along one axis, or
//! along two at once, so a 4-D kernel continuous in every axis takes two passes (or four), and
//! the host records the same few commands for ten parameters or a thousand.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use eframe::egui_wgpu::wgpu;

use super::GpuError;
use super::context::{GpuContext, STORAGE, Span, new_buffer, u32_of};
use super::params::{BatchParams, Job};
use crate::inn::Resolved;
use crate::inn::discretize::BasisCache;
use crate::model::{Model, ModelError};

/// Invocations per workgroup of every discretization kernel.
const WORKGROUP: usize = 64;
/// Outputs each invocation of `interp_batch` computes (`PER_INVOCATION` in the shader).
pub(crate) const PER_INVOCATION: usize = 4;
/// Output rows each invocation of `interp_rows` computes unless told otherwise
/// ([`crate::gpu::GpuEngine::set_rows_per_invocation`]). More rows share more of the values
/// mixed along axis b (each control row is mixed once per block of rows, plus three at the
/// block's start) but leave fewer invocations to run at once: on lavapipe, ResNet-18-sized
/// weights took 1.07 s on the GPU's clock with 4, 0.90 s with 8 and 0.80 s with 16; 8 keeps a
/// large GPU's cores busy on the smaller layers.
pub const DEFAULT_ROWS: u32 = 8;
/// The most output rows an invocation of `interp_rows` may be given.
pub const MAX_ROWS: u32 = 256;

/// `rows` as output rows an invocation of `interp_rows` computes: 1 to [`MAX_ROWS`].
///
/// # Errors
/// `rows` out of that range.
pub(crate) fn check_rows(rows: u32) -> Result<u32, GpuError> {
    if (1..=MAX_ROWS).contains(&rows) {
        Ok(rows)
    } else {
        Err(GpuError::Invalid(format!(
            "{rows} output rows an invocation: 1 to {MAX_ROWS} are possible"
        )))
    }
}
/// Values after axis a (a point of axis b and the inner values) from which a job goes to
/// `interp_rows`: a shorter row would leave most of each workgroup idle.
const ROW_MIN: usize = WORKGROUP;

/// How a plan change's discretization is laid out in passes and dispatches. Every layout does
/// the same float operations per value, so all give the same weights.
///
/// The default is [`Discretization::Rows`] on every adapter: two axes per pass halve the
/// memory traffic of one per pass, and whole rows cut the loads and index arithmetic of each
/// value. On lavapipe (two cores) it is also the fastest: ResNet-18-sized weights in 1.07 s,
/// against 1.63 s one axis per pass and 1.83 s two per pass a value per invocation; the demo
/// in 50 ms against 63 and 71 (`innscope bench --engine gpu --gpu-passes ...`, medians).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Discretization {
    /// One axis per pass, parameter by parameter, each pass's job in a uniform block
    /// (`interp_one`).
    PerAxis,
    /// Two axes per pass, every parameter of a pass in one dispatch, an output value per
    /// invocation and step (`interp_batch`).
    Pairs,
    /// As [`Discretization::Pairs`], but parameters whose output rows are long go in whole
    /// rows (`interp_rows`), where neighbouring rows share the values mixed along axis b.
    #[default]
    Rows,
}

/// Where one parameter lives: its bucket, its λ and its discrete values (words).
#[derive(Clone, Copy, Debug)]
struct Slot {
    bucket: usize,
    lambda: usize,
    at: usize,
    capacity: usize,
}

/// λ of some parameters, and room for their discrete values.
pub(crate) struct Bucket {
    lambda: wgpu::Buffer,
    weights: wgpu::Buffer,
}

/// Every parameter's λ and discrete values on the GPU.
pub(crate) struct Arena {
    buckets: Vec<Bucket>,
    slots: BTreeMap<String, Slot>,
}

/// Values one storage binding may hold on `ctx`'s device.
pub(crate) fn words_limit(ctx: &GpuContext) -> usize {
    let limits = ctx.device.limits();
    let bytes = limits
        .max_storage_buffer_binding_size
        .min(limits.max_buffer_size);
    usize::try_from(bytes / 4).unwrap_or(usize::MAX)
}

/// Words between parameter offsets: the adapter's storage offset alignment.
fn align_words(ctx: &GpuContext) -> usize {
    (ctx.device.limits().min_storage_buffer_offset_alignment as usize / 4).max(1)
}

impl Arena {
    /// Lay out `model`'s parameters with room for `capacity[name]` discrete values each, and
    /// upload λ.
    ///
    /// # Errors
    /// A parameter beyond one binding of this adapter.
    pub fn new(
        ctx: &GpuContext,
        model: &Model,
        capacity: &BTreeMap<String, usize>,
    ) -> Result<Self, GpuError> {
        let (limit, align) = (words_limit(ctx), align_words(ctx));
        let mut slots = BTreeMap::new();
        // Per bucket: λ words, weight words.
        let mut sizes: Vec<(usize, usize)> = vec![(0, 0)];
        for p in &model.doc.params {
            let lambda = model.tensors[&p.name].len();
            let cap = capacity.get(&p.name).copied().unwrap_or(0).max(1);
            let cap = cap.div_ceil(align) * align;
            if lambda > limit || cap > limit {
                return Err(GpuError::TooLarge(format!(
                    "{}: {} values exceed this adapter's binding limit ({limit} values)",
                    p.name,
                    lambda.max(cap)
                )));
            }
            let (l, w) = *sizes.last().expect("one bucket at least");
            if l + lambda > limit || w + cap > limit {
                sizes.push((0, 0));
            }
            let bucket = sizes.len() - 1;
            let (l, w) = sizes[bucket];
            slots.insert(
                p.name.clone(),
                Slot {
                    bucket,
                    lambda: l,
                    at: w,
                    capacity: cap,
                },
            );
            sizes[bucket] = (l + lambda, w + cap);
        }
        let mut buckets = Vec::with_capacity(sizes.len());
        for (b, &(l, w)) in sizes.iter().enumerate() {
            let mut values = vec![0.0_f32; l];
            for (name, s) in slots.iter().filter(|(_, s)| s.bucket == b) {
                let t = &model.tensors[name];
                values[s.lambda..s.lambda + t.len()]
                    .iter_mut()
                    .zip(t.iter())
                    .for_each(|(d, &v)| *d = v);
            }
            let lambda = new_buffer(ctx, "innscope λ", (l * 4) as u64, STORAGE)?;
            ctx.queue
                .write_buffer(&lambda, 0, bytemuck::cast_slice(&values));
            buckets.push(Bucket {
                lambda,
                weights: new_buffer(ctx, "innscope weights", (w * 4) as u64, STORAGE)?,
            });
        }
        Ok(Self { buckets, slots })
    }

    /// Buffers of discrete weights (one per bucket).
    pub fn buffers(&self) -> usize {
        self.buckets.len()
    }

    /// Whether every parameter has room for `needs[name]` discrete values.
    pub fn fits(&self, needs: &BTreeMap<String, usize>) -> bool {
        needs
            .iter()
            .all(|(name, &n)| self.slots.get(name).is_some_and(|s| n <= s.capacity))
    }

    /// Room for each parameter, grown by half again where `needs` exceeds it.
    pub fn grown(&self, needs: &BTreeMap<String, usize>) -> BTreeMap<String, usize> {
        needs
            .iter()
            .map(|(name, &n)| {
                let cap = self.slots.get(name).map_or(0, |s| s.capacity);
                (name.clone(), if n > cap { n + n / 2 } else { cap })
            })
            .collect()
    }

    /// The first `len` discrete values of parameter `name`.
    pub fn span(&self, name: &str, len: usize) -> Option<Span> {
        let s = self.slots.get(name)?;
        Some(Span {
            buffer: self.buckets[s.bucket].weights.clone(),
            offset: (s.at * 4) as u64,
            bytes: (len.clamp(1, s.capacity) * 4) as u64,
        })
    }
}

/// A dispatch's uniform block.
pub(crate) enum Uniform<'a> {
    /// Which jobs of the table.
    Batch(&'a BatchParams),
    /// The job itself.
    Job(&'a Job),
}

/// One dispatch: a pass over one bucket, jobs `[first, first + count)` of the table, by
/// `interp_rows` (`rows`) or else `interp_batch` / `interp_one`.
struct Pass {
    bucket: usize,
    stage: usize,
    first: u32,
    count: u32,
    groups: u32,
    rows: bool,
}

/// Workgroups of `interp_rows` for `job`: per (outer, mid), `rows` output rows by
/// [`WORKGROUP`] values of a row each.
fn row_groups(job: &Job, rows: u32) -> usize {
    let len = job.m_b as usize * job.inner as usize;
    (job.outer as usize * job.mid as usize)
        * (job.m_a as usize).div_ceil(rows as usize)
        * len.div_ceil(WORKGROUP)
}

/// Everything one plan change dispatches.
pub(crate) struct Batch {
    jobs: Vec<Job>,
    /// Bases (four taps, four weights a point) and quadrature weights, after the jobs in the
    /// table.
    tail: Vec<u32>,
    passes: Vec<Pass>,
    /// Parameters with no continuous axis: (bucket, λ word, destination word, words).
    copies: Vec<(usize, usize, usize, usize)>,
    /// Words each of the two temporaries must hold.
    pub temp_words: [usize; 2],
    /// Output rows each invocation of `interp_rows` computes.
    rows_per: u32,
}

/// The tail of the table: bases, each once, and quadrature weights.
#[derive(Default)]
struct Tail {
    words: Vec<u32>,
    bases: HashMap<usize, u32>,
}

impl Tail {
    /// The tail word of `basis`'s points, appended unless a cached basis (one the
    /// [`BasisCache`] holds, so at a stable address) is already there.
    #[expect(
        clippy::ptr_arg,
        reason = "only a borrowed basis lives long enough for its address to name it"
    )]
    fn basis(
        &mut self,
        basis: &std::borrow::Cow<'_, crate::inn::basis::Basis>,
    ) -> Result<u32, GpuError> {
        let key = match basis {
            std::borrow::Cow::Borrowed(b) => Some(std::ptr::from_ref(*b) as usize),
            std::borrow::Cow::Owned(_) => None,
        };
        if let Some(&at) = key.and_then(|k| self.bases.get(&k)) {
            return Ok(at);
        }
        // Points start on 4-word boundaries (the shader reads them four words at a time).
        self.words.resize(self.words.len().next_multiple_of(4), 0);
        let at = u32_of(self.words.len(), "table")?;
        for (t, w) in basis.taps.iter().zip(&basis.weights) {
            self.words.extend_from_slice(t);
            self.words.extend(w.iter().map(|v| v.to_bits()));
        }
        if let Some(k) = key {
            self.bases.insert(k, at);
        }
        Ok(at)
    }
}

/// One step of one parameter: interpolate along `a`, or along `b` then `a` (`a < b`).
#[derive(Clone, Copy)]
struct Step {
    a: usize,
    b: Option<usize>,
}

/// The steps of a parameter continuous along `dims` (descending): one axis each, or pairs.
fn steps(dims: &[usize], pairs: bool) -> Vec<Step> {
    if pairs {
        dims.chunks(2)
            .map(|c| match *c {
                [hi, lo] => Step { a: lo, b: Some(hi) },
                _ => Step { a: c[0], b: None },
            })
            .collect()
    } else {
        dims.iter().map(|&a| Step { a, b: None }).collect()
    }
}

/// A parameter on its way through the passes.
struct Todo<'m> {
    layout: &'m crate::inn::ParamLayout,
    slot: Slot,
    steps: Vec<Step>,
    /// Its shape after the steps so far.
    shape: Vec<usize>,
    /// Where the last step's output is in its temporary (`None`: still λ).
    prev: Option<usize>,
}

impl Todo<'_> {
    /// The job of step `stage`, its output placed at `*temp` of the pass's temporary unless it
    /// is the last step (then scaled into the weights); `None` once the steps are done.
    fn job(
        &mut self,
        stage: usize,
        plan: &Resolved,
        bases: &BasisCache,
        tail: &mut Tail,
        temp: &mut usize,
    ) -> Result<Option<Job>, GpuError> {
        let Some(&Step { a, b }) = self.steps.get(stage) else {
            return Ok(None);
        };
        let (layout, shape) = (self.layout, &self.shape);
        let model_err = |e| GpuError::Model(ModelError::from(e));
        let basis_a = bases.basis(layout, a, shape[a], plan).map_err(model_err)?;
        let mut out = shape.clone();
        out[a] = basis_a.len();
        let mut job = Job {
            outer: u32_of(shape[..a].iter().product(), "outer")?,
            n_a: u32_of(shape[a], "n_a")?,
            m_a: u32_of(out[a], "m_a")?,
            basis_a: tail.basis(&basis_a)?,
            mid: 1,
            n_b: 1,
            m_b: 1,
            basis_b: Job::NO_AXIS,
            src: u32_of(self.prev.unwrap_or(self.slot.lambda), "offset")?,
            ..Job::default()
        };
        let mut inner_from = a + 1;
        if let Some(b) = b {
            let basis_b = bases.basis(layout, b, shape[b], plan).map_err(model_err)?;
            out[b] = basis_b.len();
            job.mid = u32_of(shape[a + 1..b].iter().product(), "mid")?;
            job.n_b = u32_of(shape[b], "n_b")?;
            job.m_b = u32_of(out[b], "m_b")?;
            job.basis_b = tail.basis(&basis_b)?;
            inner_from = b + 1;
        }
        job.inner = u32_of(shape[inner_from..].iter().product(), "inner")?;
        let total: usize = out.iter().product();
        job.total = u32_of(total, "values")?;
        if stage + 1 < self.steps.len() {
            job.dst = u32_of(*temp, "offset")?;
            self.prev = Some(*temp);
            *temp += total;
        } else {
            job.flags = Job::FINAL;
            job.dst = u32_of(self.slot.at, "offset")?;
            let scaling = layout.scaling(plan).map_err(model_err)?;
            job.area = scaling.area;
            (job.tau, job.q_stride, job.q_len) = (1.0, 1, 1);
            if let Some((q, spec)) = scaling.quadrature {
                job.flags |= Job::HAS_Q;
                if spec.dim == a {
                    job.flags |= Job::Q_ON_A;
                } else if Some(spec.dim) == b {
                    job.flags |= Job::Q_ON_B;
                }
                job.q = u32_of(tail.words.len(), "table")?;
                job.q_stride = u32_of(out[spec.dim + 1..].iter().product(), "stride")?;
                job.q_len = u32_of(out[spec.dim], "quadrature length")?;
                job.tau = spec.tau;
                tail.words.extend(q.iter().map(|v| v.to_bits()));
            }
        }
        self.shape = out;
        Ok(Some(job))
    }
}

impl Batch {
    /// The jobs that re-discretize `changed` under `plan`, laid out as `layout` says: every
    /// parameter in each pass, or, `one_by_one`, a parameter's passes before the next
    /// parameter's (so that a CPU device keeps each parameter in its caches, and the
    /// temporaries hold one parameter at a time). With [`Discretization::Rows`], an
    /// invocation of `interp_rows` computes `rows_per` output rows (1 to [`MAX_ROWS`]).
    ///
    /// # Errors
    /// A plan the model refuses, sizes beyond `u32`, `rows_per` out of range.
    pub fn new(
        model: &Model,
        plan: &Resolved,
        changed: &BTreeSet<String>,
        arena: &Arena,
        bases: &BasisCache,
        (layout, rows_per): (Discretization, u32),
        one_by_one: bool,
    ) -> Result<Self, GpuError> {
        let rows_per = check_rows(rows_per)?;
        let pairs = layout != Discretization::PerAxis;
        let rows = layout == Discretization::Rows;
        let mut tail = Tail::default();
        let mut jobs: Vec<Job> = Vec::new();
        let mut passes = Vec::new();
        let mut copies = Vec::new();
        let mut temp_words = [0_usize; 2];
        for bucket in 0..arena.buckets.len() {
            let mut todo = Vec::new();
            for name in changed {
                let slot = arena.slots[name];
                if slot.bucket != bucket {
                    continue;
                }
                let layout = &model
                    .param(name)
                    .ok_or_else(|| GpuError::Invalid(format!("no parameter {name}")))?
                    .layout;
                let dims = layout.interpolation_order();
                if dims.is_empty() {
                    copies.push((bucket, slot.lambda, slot.at, model.tensors[name].len()));
                    continue;
                }
                todo.push(Todo {
                    layout,
                    slot,
                    steps: steps(&dims, pairs),
                    shape: model.tensors[name].shape().to_vec(),
                    prev: None,
                });
            }
            let sets: Vec<Vec<Todo<'_>>> = if one_by_one {
                todo.into_iter().map(|t| vec![t]).collect()
            } else {
                vec![todo]
            };
            for mut set in sets {
                let stages = set.iter().map(|t| t.steps.len()).max().unwrap_or(0);
                for stage in 0..stages {
                    let mut temp = 0_usize;
                    // Jobs for interp_rows, and the others.
                    let (mut long, mut short) = (Vec::new(), Vec::new());
                    for t in &mut set {
                        let Some(job) = t.job(stage, plan, bases, &mut tail, &mut temp)? else {
                            continue;
                        };
                        if job.total == 0 {
                            continue;
                        }
                        if rows && job.m_b as usize * job.inner as usize >= ROW_MIN {
                            long.push(job);
                        } else {
                            short.push(job);
                        }
                    }
                    temp_words[stage % 2] = temp_words[stage % 2].max(temp);
                    for (set_jobs, by_rows) in [(long, true), (short, false)] {
                        if set_jobs.is_empty() {
                            continue;
                        }
                        let (first, mut groups) = (jobs.len(), 0_usize);
                        for mut job in set_jobs {
                            job.start = u32_of(groups, "workgroups")?;
                            groups += if by_rows {
                                row_groups(&job, rows_per)
                            } else {
                                (job.total as usize).div_ceil(WORKGROUP * PER_INVOCATION)
                            };
                            jobs.push(job);
                        }
                        passes.push(Pass {
                            bucket,
                            stage,
                            first: u32_of(first, "jobs")?,
                            count: u32_of(jobs.len() - first, "jobs")?,
                            groups: u32_of(groups, "workgroups")?,
                            rows: by_rows,
                        });
                    }
                }
            }
        }
        let tail_at = u32_of(jobs.len() * size_of::<Job>() / 4, "table")?;
        for job in &mut jobs {
            job.tail = tail_at;
        }
        Ok(Self {
            jobs,
            tail: tail.words,
            passes,
            copies,
            temp_words,
            rows_per,
        })
    }

    /// Record the batch: `temps` hold at least [`Batch::temp_words`] each, `table` is a
    /// buffer to upload the table into.
    pub fn encode(
        &self,
        ctx: &GpuContext,
        encoder: &mut wgpu::CommandEncoder,
        arena: &Arena,
        temps: [&wgpu::Buffer; 2],
        table: &wgpu::Buffer,
        uniform: &mut dyn FnMut(Uniform<'_>) -> wgpu::Buffer,
    ) -> Result<(), GpuError> {
        for &(bucket, from, to, len) in &self.copies {
            let b = &arena.buckets[bucket];
            encoder.copy_buffer_to_buffer(
                &b.lambda,
                (from * 4) as u64,
                &b.weights,
                (to * 4) as u64,
                (len * 4) as u64,
            );
        }
        for p in &self.passes {
            let b = &arena.buckets[p.bucket];
            let source = if p.stage == 0 {
                &b.lambda
            } else {
                temps[(p.stage + 1) % 2]
            };
            let mut bindings = vec![
                (1, table.as_entire_binding()),
                (2, source.as_entire_binding()),
                (3, temps[p.stage % 2].as_entire_binding()),
                (4, b.weights.as_entire_binding()),
            ];
            // A pass of one job (the per-axis layout) takes it from a uniform block.
            // Invocations: one per output for one job, else 64 per workgroup of the jobs.
            let (kernel, u, total) = if p.count == 1 && !p.rows {
                let job = &self.jobs[p.first as usize];
                let u = uniform(Uniform::Job(job));
                (&ctx.kernels.interp_one, (6, u), job.total)
            } else {
                let u = uniform(Uniform::Batch(&BatchParams {
                    first: p.first,
                    count: p.count,
                    groups: p.groups,
                    rows: self.rows_per,
                }));
                bindings.push((5, table.as_entire_binding()));
                let total = p
                    .groups
                    .checked_mul(WORKGROUP as u32)
                    .ok_or_else(|| GpuError::TooLarge("workgroups exceed u32".into()))?;
                let kernel = if p.rows {
                    &ctx.kernels.interp_rows
                } else {
                    &ctx.kernels.interp_batch
                };
                (kernel, (0, u), total)
            };
            bindings.push((u.0, u.1.as_entire_binding()));
            super::context::dispatch_at(ctx, encoder, kernel, &bindings, total);
        }
        Ok(())
    }

    /// The table to upload: the jobs, then the tail.
    pub fn table(&self) -> Vec<u32> {
        let mut table: Vec<u32> = bytemuck::cast_slice(&self.jobs).to_vec();
        table.extend_from_slice(&self.tail);
        table
    }
}
