//! The GPU engine: re-discretization and forward pass as wgpu compute dispatches.
//!
//! λ of every parameter is uploaded once. A new plan writes one small table (the basis of each
//! partition: four tap indices and four weights per point, computed by
//! [`crate::inn::basis::Basis`], the one implementation of the spline math; a job per parameter
//! and pass) and dispatches a few passes over all the parameters it changes (see
//! `gpu::discretize`). The discrete weights stay on the GPU; a forward pass reads them there
//! and only the logits come back. Buffers are created once and grow only when a larger plan
//! needs them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytemuck::Pod;
use eframe::egui_wgpu::wgpu;
use ndarray::{Array2, ArrayD, ArrayView4, IxDyn};

use super::context::{GpuContext, STORAGE, Span, dispatch, new_buffer, u32_of};
use super::discretize::{
    Arena, Batch, DEFAULT_ROWS, Discretization, Uniform, check_rows, words_limit,
};
use super::params::{
    AddParams, BnParams, ConvParams, GapParams, LinearParams, PoolParams, SelectParams,
    SoftmaxParams, UnaryParams,
};
use super::{GpuError, GpuTimer};
use crate::inn::Resolved;
use crate::inn::discretize::BasisCache;
use crate::model::{DiscreteWeights, Model, Op, PaddingMode};

const UNIFORM_BYTES: u64 = 256;

/// A grow-only buffer: recreated (larger) only when a plan needs more than it holds.
struct Grow {
    buffer: wgpu::Buffer,
    bytes: u64,
}

/// Make sure `slot` holds at least `bytes`, growing by half again when it must grow.
fn ensure<'a>(
    ctx: &GpuContext,
    slot: &'a mut Option<Grow>,
    label: &str,
    bytes: u64,
    usage: wgpu::BufferUsages,
) -> Result<&'a wgpu::Buffer, GpuError> {
    let fits = slot.as_ref().is_some_and(|g| g.bytes >= bytes);
    if !fits {
        let want = slot
            .as_ref()
            .map_or(bytes, |g| bytes.max(g.bytes + g.bytes / 2));
        let buffer = new_buffer(ctx, label, want, usage)
            .or_else(|_| new_buffer(ctx, label, bytes, usage))?;
        *slot = Some(Grow {
            bytes: buffer.size(),
            buffer,
        });
    }
    Ok(&slot.as_ref().expect("just ensured").buffer)
}

/// The discrete shape of every parameter under `plan`.
fn discrete_shapes(
    model: &Model,
    plan: &Resolved,
) -> Result<BTreeMap<String, Vec<usize>>, GpuError> {
    model
        .doc
        .params
        .iter()
        .map(|p| {
            let shape = p
                .layout
                .discrete_shape(plan)
                .map_err(crate::model::ModelError::from)?;
            Ok((p.name.clone(), shape))
        })
        .collect()
}

/// Values of each shape.
fn needs(shapes: &BTreeMap<String, Vec<usize>>) -> BTreeMap<String, usize> {
    shapes
        .iter()
        .map(|(k, s)| (k.clone(), s.iter().product()))
        .collect()
}

fn bytes_of(len: usize) -> u64 {
    (len * 4) as u64
}

/// Per-dispatch resources reused across frames: uniform blocks and small storage buffers.
#[derive(Default)]
struct Scratch {
    uniforms: Vec<wgpu::Buffer>,
    next_uniform: usize,
    small: Vec<Option<Grow>>,
    next_small: usize,
}

impl Scratch {
    fn reset(&mut self) {
        self.next_uniform = 0;
        self.next_small = 0;
    }

    fn uniform<T: Pod>(&mut self, ctx: &GpuContext, value: &T) -> wgpu::Buffer {
        if self.next_uniform == self.uniforms.len() {
            self.uniforms
                .push(ctx.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("innscope params"),
                    size: UNIFORM_BYTES,
                    usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                }));
        }
        let buffer = self.uniforms[self.next_uniform].clone();
        self.next_uniform += 1;
        ctx.queue
            .write_buffer(&buffer, 0, bytemuck::bytes_of(value));
        buffer
    }

    fn storage(&mut self, ctx: &GpuContext, data: &[u8]) -> Result<wgpu::Buffer, GpuError> {
        if self.next_small == self.small.len() {
            self.small.push(None);
        }
        let slot = &mut self.small[self.next_small];
        self.next_small += 1;
        let buffer = ensure(ctx, slot, "innscope basis", data.len() as u64, STORAGE)?.clone();
        ctx.queue.write_buffer(&buffer, 0, data);
        Ok(buffer)
    }
}

/// Discrete weights of one plan on the GPU, and the forward pass.
pub struct GpuEngine {
    ctx: Arc<GpuContext>,
    /// λ and the discrete weights of every parameter.
    arena: Arena,
    /// The discrete shape of every parameter under `plan`.
    shapes: BTreeMap<String, Vec<usize>>,
    temps: [Option<Grow>; 2],
    activations: BTreeMap<String, Option<Grow>>,
    readback: Option<Grow>,
    dummy: wgpu::Buffer,
    scratch: Scratch,
    plan: Resolved,
    layout: Discretization,
    /// Output rows each invocation of `interp_rows` computes.
    rows: u32,
    /// Whether every weight holds its values under `plan` (not after a failed change, nor
    /// after switching the discretization passes).
    complete: bool,
    /// Parameters re-discretized by the last plan change, of all.
    last_change: (usize, usize),
    /// Timestamps around each plan change's GPU work, when asked for.
    timer: Option<GpuTimer>,
}

impl GpuEngine {
    /// Upload `model`'s control values and discretize for `plan`.
    ///
    /// # Errors
    /// Buffers beyond the adapter's limits, a lost device, or a plan the model refuses.
    pub fn new(ctx: Arc<GpuContext>, model: &Model, plan: &Resolved) -> Result<Self, GpuError> {
        model.check_plan(plan)?;
        let shapes = discrete_shapes(model, plan)?;
        let arena = Arena::new(&ctx, model, &needs(&shapes))?;
        let dummy = new_buffer(&ctx, "innscope dummy", 16, STORAGE)?;
        let mut engine = Self {
            ctx,
            arena,
            shapes,
            temps: [None, None],
            activations: BTreeMap::new(),
            readback: None,
            dummy,
            scratch: Scratch::default(),
            plan: plan.clone(),
            layout: Discretization::default(),
            rows: DEFAULT_ROWS,
            complete: false,
            last_change: (0, 0),
            timer: None,
        };
        engine.set_plan(model, plan)?;
        Ok(engine)
    }

    /// Lay out the discretization passes as `layout` says (same float operations, same
    /// results). Takes effect at the next plan, for every parameter.
    pub fn set_discretization(&mut self, layout: Discretization) {
        self.layout = layout;
        self.complete = false;
    }

    /// How the discretization passes are laid out.
    #[must_use]
    pub fn discretization(&self) -> Discretization {
        self.layout
    }

    /// Output rows each invocation computes where [`Discretization::Rows`] takes parameters in
    /// whole rows (same float operations, same results; [`DEFAULT_ROWS`] unless set). Takes
    /// effect at the next plan.
    ///
    /// # Errors
    /// `rows` outside 1 to [`MAX_ROWS`]; nothing changes then.
    pub fn set_rows_per_invocation(&mut self, rows: u32) -> Result<(), GpuError> {
        self.rows = check_rows(rows)?;
        self.complete = false;
        Ok(())
    }

    /// Output rows each invocation of the whole-row layout computes.
    #[must_use]
    pub fn rows_per_invocation(&self) -> u32 {
        self.rows
    }

    /// Time each plan change's GPU work with timestamps (for benchmarks); false where the
    /// device has no timestamp queries inside encoders.
    pub fn time_on_gpu(&mut self) -> bool {
        if self.timer.is_none() {
            self.timer = GpuTimer::new(&self.ctx);
        }
        self.timer.is_some()
    }

    /// GPU time of the last plan change's work, when [`GpuEngine::time_on_gpu`] is on (waits
    /// for the GPU).
    ///
    /// # Errors
    /// A failed read-back or a lost device.
    pub fn last_gpu_time(&self) -> Result<Option<Duration>, GpuError> {
        self.timer.as_ref().map(|t| t.read(&self.ctx)).transpose()
    }

    /// The context (device, queue, adapter).
    #[must_use]
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// The plan the weights belong to.
    #[must_use]
    pub fn plan(&self) -> &Resolved {
        &self.plan
    }

    fn check_alive(&self) -> Result<(), GpuError> {
        if self.ctx.is_lost() {
            return Err(GpuError::Lost);
        }
        Ok(())
    }

    /// Re-discretize on the GPU (no read-back) the parameters `plan` changes: those with an
    /// axis sampled differently (see [`crate::engine::cpu::CpuEngine::set_plan`]). On error the
    /// engine keeps its previous plan's shapes, and the next change redoes every parameter.
    ///
    /// # Errors
    /// A plan the model refuses, buffers beyond the adapter's limits, a lost device.
    pub fn set_plan(&mut self, model: &Model, plan: &Resolved) -> Result<(), GpuError> {
        self.check_alive()?;
        model.check_plan(plan)?;
        let mut changed = model.params_to_redo(self.complete.then_some(&self.plan), plan);
        self.complete = false;
        let shapes = discrete_shapes(model, plan)?;
        let ctx = Arc::clone(&self.ctx);
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let needs = needs(&shapes);
        if !self.arena.fits(&needs) {
            // A parameter outgrew its room: lay everything out again, and redo it all.
            self.arena = Arena::new(&ctx, model, &self.arena.grown(&needs))?;
            changed = model.doc.params.iter().map(|p| p.name.clone()).collect();
        }
        // One basis per distinct axis for all the parameters redone (as the CPU engine does).
        let bases = BasisCache::new(
            model
                .doc
                .params
                .iter()
                .filter(|p| changed.contains(&p.name))
                .map(|p| (&p.layout, model.tensors[&p.name].shape())),
            plan,
        )
        .map_err(crate::model::ModelError::from)?;
        let layout = (self.layout, self.rows);
        let batch_of = |one_by_one: bool| {
            Batch::new(
                model,
                plan,
                &changed,
                &self.arena,
                &bases,
                layout,
                one_by_one,
            )
        };
        let mut batch = batch_of(self.layout == Discretization::PerAxis)?;
        if batch.temp_words.iter().any(|&w| w > words_limit(&ctx)) {
            // Temporaries for every parameter at once would exceed a binding: one at a time.
            batch = batch_of(true)?;
        }
        let mut encoder = ctx.encoder("innscope discretize");
        if let Some(t) = &self.timer {
            t.start(&mut encoder);
        }
        self.scratch.reset();
        let table = self
            .scratch
            .storage(&ctx, bytemuck::cast_slice(&batch.table()))?;
        let mut temps = Vec::with_capacity(2);
        for (slot, words) in self.temps.iter_mut().zip(batch.temp_words) {
            temps.push(ensure(&ctx, slot, "innscope temp", bytes_of(words), STORAGE)?.clone());
        }
        let scratch = &mut self.scratch;
        batch.encode(
            &ctx,
            &mut encoder,
            &self.arena,
            [&temps[0], &temps[1]],
            &table,
            &mut |u| match u {
                Uniform::Batch(p) => scratch.uniform(&ctx, p),
                Uniform::Job(j) => scratch.uniform(&ctx, j),
            },
        )?;
        if let Some(t) = &self.timer {
            t.stop(&mut encoder);
        }
        ctx.queue.submit([encoder.finish()]);
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Device(err.to_string()));
        }
        self.shapes = shapes;
        self.plan = plan.clone();
        self.complete = true;
        self.last_change = (changed.len(), model.doc.params.len());
        Ok(())
    }

    /// How many buffers the discrete weights are spread over (more than one where the model
    /// exceeds one storage binding of the device).
    #[must_use]
    pub fn weight_buffers(&self) -> usize {
        self.arena.buffers()
    }

    /// Parameters the last plan change re-discretized, and how many the model has.
    #[must_use]
    pub fn last_change(&self) -> (usize, usize) {
        self.last_change
    }

    fn activation(&mut self, name: &str, len: usize) -> Result<wgpu::Buffer, GpuError> {
        let slot = self.activations.entry(name.to_string()).or_insert(None);
        Ok(ensure(&self.ctx, slot, name, bytes_of(len), STORAGE)?.clone())
    }

    fn weight_buffer(&self, name: &str) -> Result<Span, GpuError> {
        Ok(self.weight_buffer_len(name)?.0)
    }

    /// Where a discretized parameter's values are, and how many (for views that read the
    /// weights where they are).
    pub(crate) fn weight_buffer_len(&self, name: &str) -> Result<(Span, usize), GpuError> {
        let len = self.weight_shape(name)?.iter().product();
        let span = self
            .arena
            .span(name, len)
            .ok_or_else(|| GpuError::Invalid(format!("no discretized parameter {name}")))?;
        Ok((span, len))
    }

    /// The current shape of a discretized parameter.
    ///
    /// # Errors
    /// An unknown parameter.
    pub fn weight_shape(&self, name: &str) -> Result<Vec<usize>, GpuError> {
        self.shapes
            .get(name)
            .cloned()
            .ok_or_else(|| GpuError::Invalid(format!("no discretized parameter {name}")))
    }

    /// Run the network on a batch `(N, C, H, W)` at the plan's resolution; only the logits
    /// come back.
    ///
    /// # Errors
    /// An input of the wrong shape, buffers beyond the adapter's limits, a lost device.
    #[expect(
        clippy::too_many_lines,
        reason = "one arm per op reads best as one match"
    )]
    pub fn forward(
        &mut self,
        model: &Model,
        input: ArrayView4<'_, f32>,
    ) -> Result<Array2<f32>, GpuError> {
        self.check_alive()?;
        let plan = self.plan.clone();
        let n = input.shape()[0];
        let want = [
            model.doc.input.channels,
            plan.resolution[0],
            plan.resolution[1],
        ];
        if input.shape()[1..] != want {
            return Err(GpuError::Invalid(format!(
                "input is {:?}, the plan expects (N, {}, {}, {})",
                input.shape(),
                want[0],
                want[1],
                want[2]
            )));
        }
        let shapes: BTreeMap<String, Vec<usize>> = model
            .infer_shapes(&plan)?
            .into_iter()
            .map(|(k, mut s)| {
                s[0] = n;
                (k, s)
            })
            .collect();
        let ctx = Arc::clone(&self.ctx);
        let k = &ctx.kernels;
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let mut encoder = ctx.encoder("innscope forward");
        self.scratch.reset();
        let size = |name: &str| -> usize { shapes.get(name).map_or(0, |s| s.iter().product()) };
        for node in &model.doc.graph {
            let out_shape = shapes[&node.out].clone();
            let out_len: usize = out_shape.iter().product();
            let out = self.activation(&node.out, out_len)?;
            let total = u32_of(out_len, "elements")?;
            let arg = |i: usize| -> Result<(wgpu::Buffer, Vec<usize>), GpuError> {
                let name = node.inputs.get(i).cloned().unwrap_or_default();
                let buf = self
                    .activations
                    .get(&name)
                    .and_then(|s| s.as_ref())
                    .map(|g| g.buffer.clone())
                    .ok_or_else(|| GpuError::Invalid(format!("value {name:?} missing")))?;
                Ok((buf, shapes.get(&name).cloned().unwrap_or_default()))
            };
            match &node.op {
                Op::Input => {
                    let data: Vec<f32> = input.iter().copied().collect();
                    ctx.queue.write_buffer(&out, 0, bytemuck::cast_slice(&data));
                }
                Op::Conv2d {
                    weight,
                    bias,
                    stride,
                    padding,
                    dilation,
                    groups,
                    padding_mode,
                } => {
                    let (x, xs) = arg(0)?;
                    let ws = self.shapes.get(weight).cloned().unwrap_or_default();
                    let pad = model.conv_padding(weight, *padding, *dilation, &plan);
                    let p = ConvParams {
                        n: u32_of(n, "n")?,
                        cin: u32_of(xs[1], "cin")?,
                        h: u32_of(xs[2], "h")?,
                        w: u32_of(xs[3], "w")?,
                        cout: u32_of(out_shape[1], "cout")?,
                        oh: u32_of(out_shape[2], "oh")?,
                        ow: u32_of(out_shape[3], "ow")?,
                        kh: u32_of(ws[2], "kh")?,
                        kw: u32_of(ws[3], "kw")?,
                        sh: u32_of(stride[0], "sh")?,
                        sw: u32_of(stride[1], "sw")?,
                        ph: u32_of(pad[0], "ph")?,
                        pw: u32_of(pad[1], "pw")?,
                        dh: u32_of(dilation[0], "dh")?,
                        dw: u32_of(dilation[1], "dw")?,
                        groups: u32_of(*groups, "groups")?,
                        replicate: u32::from(*padding_mode == PaddingMode::Replicate),
                        has_bias: u32::from(bias.is_some()),
                        _pad: [0; 2],
                    };
                    let wbuf = self.weight_buffer(weight)?;
                    let bbuf = match bias {
                        Some(b) => self.weight_buffer(b)?,
                        None => Span::whole(&self.dummy),
                    };
                    let u = self.scratch.uniform(&ctx, &p);
                    dispatch(
                        &ctx,
                        &mut encoder,
                        &k.conv2d,
                        &[&u, &x, &wbuf, &bbuf, &out],
                        total,
                    );
                }
                Op::Linear { weight, bias } => {
                    let (x, xs) = arg(0)?;
                    let p = LinearParams {
                        n: u32_of(n, "n")?,
                        fin: u32_of(xs[1], "fin")?,
                        fout: u32_of(out_shape[1], "fout")?,
                        has_bias: u32::from(bias.is_some()),
                    };
                    let wbuf = self.weight_buffer(weight)?;
                    let bbuf = match bias {
                        Some(b) => self.weight_buffer(b)?,
                        None => Span::whole(&self.dummy),
                    };
                    let u = self.scratch.uniform(&ctx, &p);
                    dispatch(
                        &ctx,
                        &mut encoder,
                        &k.linear,
                        &[&u, &x, &wbuf, &bbuf, &out],
                        total,
                    );
                }
                Op::Relu | Op::Gelu | Op::Silu => {
                    let (x, _) = arg(0)?;
                    let op = match node.op {
                        Op::Relu => 0,
                        Op::Gelu => 1,
                        _ => 2,
                    };
                    let u = self.scratch.uniform(
                        &ctx,
                        &UnaryParams {
                            len: total,
                            op,
                            _pad: [0; 2],
                        },
                    );
                    dispatch(&ctx, &mut encoder, &k.unary, &[&u, &x, &out], total);
                }
                Op::AvgPool2d {
                    kernel,
                    stride,
                    padding,
                    ..
                }
                | Op::MaxPool2d {
                    kernel,
                    stride,
                    padding,
                } => {
                    let (x, xs) = arg(0)?;
                    let (is_max, count_include_pad) = match node.op {
                        Op::MaxPool2d { .. } => (1, 1),
                        Op::AvgPool2d {
                            count_include_pad, ..
                        } => (0, u32::from(count_include_pad)),
                        _ => (0, 1),
                    };
                    let p = PoolParams {
                        n: u32_of(n, "n")?,
                        c: u32_of(xs[1], "c")?,
                        h: u32_of(xs[2], "h")?,
                        w: u32_of(xs[3], "w")?,
                        oh: u32_of(out_shape[2], "oh")?,
                        ow: u32_of(out_shape[3], "ow")?,
                        kh: u32_of(kernel[0], "kh")?,
                        kw: u32_of(kernel[1], "kw")?,
                        sh: u32_of(stride[0], "sh")?,
                        sw: u32_of(stride[1], "sw")?,
                        ph: u32_of(padding[0], "ph")?,
                        pw: u32_of(padding[1], "pw")?,
                        is_max,
                        count_include_pad,
                        _pad: [0; 2],
                    };
                    let u = self.scratch.uniform(&ctx, &p);
                    dispatch(&ctx, &mut encoder, &k.pool2d, &[&u, &x, &out], total);
                }
                Op::GlobalAvgPool => {
                    let (x, xs) = arg(0)?;
                    let p = GapParams {
                        n: u32_of(n, "n")?,
                        c: u32_of(xs[1], "c")?,
                        hw: u32_of(xs[2] * xs[3], "hw")?,
                        _pad: 0,
                    };
                    let u = self.scratch.uniform(&ctx, &p);
                    dispatch(
                        &ctx,
                        &mut encoder,
                        &k.global_avg_pool,
                        &[&u, &x, &out],
                        total,
                    );
                }
                Op::BatchNorm2d {
                    weight,
                    bias,
                    running_mean,
                    running_var,
                    eps,
                } => {
                    let (x, xs) = arg(0)?;
                    let p = BnParams {
                        n: u32_of(n, "n")?,
                        c: u32_of(xs[1], "c")?,
                        hw: u32_of(xs[2..].iter().product(), "hw")?,
                        eps: *eps,
                        has_weight: u32::from(weight.is_some()),
                        has_bias: u32::from(bias.is_some()),
                        _pad: [0; 2],
                    };
                    let mean = self.weight_buffer(running_mean)?;
                    let var = self.weight_buffer(running_var)?;
                    let wbuf = match weight {
                        Some(w) => self.weight_buffer(w)?,
                        None => Span::whole(&self.dummy),
                    };
                    let bbuf = match bias {
                        Some(b) => self.weight_buffer(b)?,
                        None => Span::whole(&self.dummy),
                    };
                    let u = self.scratch.uniform(&ctx, &p);
                    dispatch(
                        &ctx,
                        &mut encoder,
                        &k.batch_norm,
                        &[&u, &x, &mean, &var, &wbuf, &bbuf, &out],
                        total,
                    );
                }
                Op::Add => {
                    let (a, _) = arg(0)?;
                    let (b, _) = arg(1)?;
                    let u = self.scratch.uniform(
                        &ctx,
                        &AddParams {
                            len: total,
                            _pad: [0; 3],
                        },
                    );
                    dispatch(&ctx, &mut encoder, &k.add, &[&u, &a, &b, &out], total);
                }
                Op::Flatten => {
                    let (x, _) = arg(0)?;
                    encoder.copy_buffer_to_buffer(&x, 0, &out, 0, bytes_of(out_len));
                }
                Op::Select { h, w } => {
                    let (x, xs) = arg(0)?;
                    let p = SelectParams {
                        n: u32_of(n, "n")?,
                        c: u32_of(xs[1], "c")?,
                        h: u32_of(xs[2], "h")?,
                        w: u32_of(xs[3], "w")?,
                        y: u32_of(*h, "y")?,
                        x: u32_of(*w, "x")?,
                        _pad: [0; 2],
                    };
                    let u = self.scratch.uniform(&ctx, &p);
                    dispatch(&ctx, &mut encoder, &k.select_pixel, &[&u, &x, &out], total);
                }
                Op::Softmax => {
                    let (x, xs) = arg(0)?;
                    let cols = *xs.last().unwrap_or(&1);
                    let rows = size(&node.inputs[0]) / cols.max(1);
                    let p = SoftmaxParams {
                        rows: u32_of(rows, "rows")?,
                        cols: u32_of(cols, "cols")?,
                        _pad: [0; 2],
                    };
                    let u = self.scratch.uniform(&ctx, &p);
                    dispatch(
                        &ctx,
                        &mut encoder,
                        &k.softmax,
                        &[&u, &x, &out],
                        u32_of(rows, "rows")?,
                    );
                }
            }
        }
        let out_name = model.output_name();
        let out_shape = shapes[out_name].clone();
        let len: usize = out_shape.iter().product();
        let src = self.activation(out_name, len)?;
        let values = self.read_back(encoder, &src, len)?;
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Device(err.to_string()));
        }
        Array2::from_shape_vec((out_shape[0], len / out_shape[0].max(1)), values)
            .map_err(|e| GpuError::Invalid(e.to_string()))
    }

    /// Copy `len` floats of `src` back to the CPU (submitting `encoder` first).
    fn read_back(
        &mut self,
        mut encoder: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        len: usize,
    ) -> Result<Vec<f32>, GpuError> {
        let ctx = Arc::clone(&self.ctx);
        let bytes = bytes_of(len);
        let staging = ensure(
            &ctx,
            &mut self.readback,
            "innscope readback",
            bytes,
            wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        )?
        .clone();
        encoder.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
        let data = ctx.map_read(encoder, &staging, bytes)?;
        Ok(bytemuck::cast_slice::<u8, f32>(&data).to_vec())
    }

    /// Wait until every submitted dispatch has finished (for timing).
    ///
    /// # Errors
    /// A lost device.
    pub fn wait(&self) -> Result<(), GpuError> {
        self.ctx.wait()
    }

    /// Read every discretized parameter back (for tests and exports).
    ///
    /// # Errors
    /// A lost device.
    pub fn read_weights(&self) -> Result<DiscreteWeights, GpuError> {
        self.shapes
            .keys()
            .map(|name| Ok((name.clone(), self.read_weight(name)?)))
            .collect()
    }

    /// Read one discretized parameter back (for tests and exports).
    ///
    /// # Errors
    /// An unknown parameter or a lost device.
    pub fn read_weight(&self, name: &str) -> Result<ArrayD<f32>, GpuError> {
        let shape = self.weight_shape(name)?;
        let len: usize = shape.iter().product();
        let span = self.weight_buffer(name)?;
        let words = self.ctx.read_words(
            self.ctx.encoder("innscope read weight"),
            &span.buffer,
            span.first_word(),
            len,
        )?;
        let values = words.into_iter().map(f32::from_bits).collect();
        ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|e| GpuError::Invalid(e.to_string()))
    }
}
