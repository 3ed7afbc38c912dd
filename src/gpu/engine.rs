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
use ndarray::{Array2, Array3, ArrayD, ArrayView4, IxDyn};

use super::context::{Bind, GpuContext, Kernel, STORAGE, Span, dispatch, new_buffer, u32_of};
use super::discretize::{
    Arena, Batch, DEFAULT_ROWS, Discretization, Uniform, check_rows, words_limit,
};
use super::{GpuError, GpuTimer, WeightView};
use crate::inn::Resolved;
use crate::inn::discretize::BasisCache;
use crate::layers::Shader;
use crate::model::{DiscreteWeights, Model};

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

/// The current shape of discretized parameter `name`.
fn weight_shape(shapes: &BTreeMap<String, Vec<usize>>, name: &str) -> Result<Vec<usize>, GpuError> {
    shapes
        .get(name)
        .cloned()
        .ok_or_else(|| GpuError::Invalid(format!("no discretized parameter {name}")))
}

/// Where discretized parameter `name` is in `arena`, and how many values it has.
fn weight_span(
    arena: &Arena,
    shapes: &BTreeMap<String, Vec<usize>>,
    name: &str,
) -> Result<(Span, usize), GpuError> {
    let len = weight_shape(shapes, name)?.iter().product();
    let span = arena
        .span(name, len)
        .ok_or_else(|| GpuError::Invalid(format!("no discretized parameter {name}")))?;
    Ok((span, len))
}

/// The buffer of activation `name`, `len` values at least.
fn activation(
    ctx: &GpuContext,
    activations: &mut BTreeMap<String, Option<Grow>>,
    name: &str,
    len: usize,
) -> Result<wgpu::Buffer, GpuError> {
    let slot = activations.entry(name.to_string()).or_insert(None);
    Ok(ensure(ctx, slot, name, bytes_of(len), STORAGE)?.clone())
}

/// A value of the graph on the GPU: its buffer and its shape (batch first).
pub struct GpuValue {
    /// The buffer (at least as long as the value; grown buffers are reused).
    pub buffer: wgpu::Buffer,
    /// The shape, batch first.
    pub shape: Vec<usize>,
}

impl GpuValue {
    /// Number of values, as a dispatch size.
    ///
    /// # Errors
    /// More than `u32::MAX` values.
    pub fn elements(&self) -> Result<u32, GpuError> {
        u32_of(self.shape.iter().product(), "elements")
    }
}

/// What a room's [`Layer::gpu`](crate::layers::Layer::gpu) records its dispatches with: the
/// context, the model and plan, the discrete weights on the GPU, and the command encoder of
/// the forward pass.
pub struct GpuCx<'a> {
    /// Device, queue and kernels.
    pub ctx: &'a GpuContext,
    /// The model.
    pub model: &'a Model,
    /// The plan the weights are discretized under.
    pub plan: &'a Resolved,
    input: ArrayView4<'a, f32>,
    encoder: &'a mut wgpu::CommandEncoder,
    scratch: &'a mut Scratch,
    arena: &'a Arena,
    shapes: &'a BTreeMap<String, Vec<usize>>,
    dummy: &'a wgpu::Buffer,
}

impl GpuCx<'_> {
    /// The current shape of discretized parameter `name`.
    ///
    /// # Errors
    /// An unknown parameter.
    pub fn weight_shape(&self, name: &str) -> Result<Vec<usize>, GpuError> {
        weight_shape(self.shapes, name)
    }

    /// Where discretized parameter `name` is, to bind.
    ///
    /// # Errors
    /// An unknown parameter.
    pub fn weight(&self, name: &str) -> Result<Span, GpuError> {
        Ok(weight_span(self.arena, self.shapes, name)?.0)
    }

    /// [`GpuCx::weight`] for an optional parameter; a small dummy buffer where there is none
    /// (the kernel is told not to read it).
    ///
    /// # Errors
    /// An unknown parameter.
    pub fn optional_weight(&self, name: Option<&str>) -> Result<Span, GpuError> {
        match name {
            Some(name) => self.weight(name),
            None => Ok(Span::whole(self.dummy)),
        }
    }

    /// A uniform block holding `value` (one of the forward pass's reused blocks).
    pub fn uniform<T: Pod>(&mut self, value: &T) -> wgpu::Buffer {
        self.scratch.uniform(self.ctx, value)
    }

    /// The compute pipeline of `entry` in `shader` (built on first use).
    ///
    /// # Errors
    /// A shader that does not build on this device.
    pub fn kernel(
        &self,
        shader: &'static Shader,
        entry: &'static str,
    ) -> Result<Arc<Kernel>, GpuError> {
        self.ctx.kernel(shader, entry)
    }

    /// Record one dispatch of `kernel` over `total` invocations, `bindings` at 0, 1, ...
    pub fn dispatch(&mut self, kernel: &Kernel, bindings: &[&dyn Bind], total: u32) {
        dispatch(self.ctx, self.encoder, kernel, bindings, total);
    }

    /// The forward pass's command encoder, for copies.
    pub fn encoder(&mut self) -> &mut wgpu::CommandEncoder {
        self.encoder
    }

    /// Write the network's input batch into `buffer`.
    pub fn write_input(&mut self, buffer: &wgpu::Buffer) {
        let data: Vec<f32> = self.input.iter().copied().collect();
        self.ctx
            .queue
            .write_buffer(buffer, 0, bytemuck::cast_slice(&data));
    }
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
    /// Views of the weights where they are (channel sums), made on first use.
    view: std::sync::OnceLock<WeightView>,
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
            view: std::sync::OnceLock::new(),
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
    /// `rows` outside 1 to [`MAX_ROWS`](super::MAX_ROWS); nothing changes then.
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

    fn weight_buffer(&self, name: &str) -> Result<Span, GpuError> {
        Ok(self.weight_buffer_len(name)?.0)
    }

    /// Where a discretized parameter's values are, and how many (for views that read the
    /// weights where they are).
    pub(crate) fn weight_buffer_len(&self, name: &str) -> Result<(Span, usize), GpuError> {
        weight_span(&self.arena, &self.shapes, name)
    }

    /// The current shape of a discretized parameter.
    ///
    /// # Errors
    /// An unknown parameter.
    pub fn weight_shape(&self, name: &str) -> Result<Vec<usize>, GpuError> {
        weight_shape(&self.shapes, name)
    }

    /// Run the network on a batch `(N, C, H, W)` at the plan's resolution: each node's room
    /// records its dispatches ([`Layer::gpu`](crate::layers::Layer::gpu)), and only the
    /// logits come back.
    ///
    /// # Errors
    /// An input of the wrong shape, buffers beyond the adapter's limits, a lost device.
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
        let scope = ctx.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let mut encoder = ctx.encoder("innscope forward");
        self.scratch.reset();
        for node in &model.doc.graph {
            let value = |name: &str, slot: &Option<Grow>| -> Result<GpuValue, GpuError> {
                let buffer = slot
                    .as_ref()
                    .map(|g| g.buffer.clone())
                    .ok_or_else(|| GpuError::Invalid(format!("value {name:?} missing")))?;
                Ok(GpuValue {
                    buffer,
                    shape: shapes.get(name).cloned().unwrap_or_default(),
                })
            };
            let out_shape = shapes[&node.out].clone();
            let len = out_shape.iter().product();
            let out = GpuValue {
                buffer: activation(&ctx, &mut self.activations, &node.out, len)?,
                shape: out_shape,
            };
            let inputs = node
                .inputs
                .iter()
                .map(|name| value(name, self.activations.get(name).unwrap_or(&None)))
                .collect::<Result<Vec<_>, _>>()?;
            let mut cx = GpuCx {
                ctx: &ctx,
                model,
                plan: &plan,
                input,
                encoder: &mut encoder,
                scratch: &mut self.scratch,
                arena: &self.arena,
                shapes: &self.shapes,
                dummy: &self.dummy,
            };
            node.op.layer().gpu(&mut cx, &inputs, &out)?;
        }
        let out_name = model.output_name();
        let out_shape = shapes[out_name].clone();
        let len: usize = out_shape.iter().product();
        let src = activation(&ctx, &mut self.activations, out_name, len)?;
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

    /// The first `n` output channels of the 4-D weight `name` summed over input channels,
    /// `(n, kh, kw)`, computed where the weights are: only the sums come back.
    ///
    /// # Errors
    /// An unknown or not 4-D parameter, a lost device.
    pub fn channel_sums(&self, name: &str, n: usize) -> Result<Array3<f32>, GpuError> {
        let view = match self.view.get() {
            Some(v) => v,
            None => {
                let v = WeightView::new(Arc::clone(&self.ctx))?;
                self.view.get_or_init(|| v)
            }
        };
        view.channel_sums(self, name, n)
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
