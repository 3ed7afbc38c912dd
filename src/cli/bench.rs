//! `innscope bench`: how fast re-discretization and the forward pass are on each engine.
//!
//! For each model (the given one or the bundled demo, and a synthetic ResNet-18-sized INN) and
//! each engine (CPU; GPU where an adapter exists) it times
//! (a) re-discretizing every kernel for a new partition, (b) a forward pass of one input,
//! (c) one slider tick = (a) + (b), (d) batched throughput; and, as memory bounds of (a),
//! writing the discrete weights once and copying (reading λ and writing the weights in one
//! pass), timed in turn with (a); on the GPU's clock also that copy done by a compute shader
//! (`shaders/bench.wgsl`), the least any shader re-discretizing must do. Medians and 95th
//! percentiles over repeated runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;
use innscope::engine::Engine;
use innscope::engine::cpu::CpuEngine;
use innscope::gpu::{Discretization, GpuContext, GpuEngine, GpuTimer, MAX_ROWS};
use innscope::inn::{GroupId, Plan, Resolved};
use innscope::model::{Model, arch};
use ndarray::Array4;
use rayon::prelude::*;
use serde_json::json;

/// Arguments of `innscope bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Model (`*.inn.safetensors`); the bundled demo when omitted.
    pub model: Option<PathBuf>,
    /// Engines to time: `all` (CPU, and GPU where an adapter exists), `cpu` or `gpu`.
    #[arg(long, value_enum, default_value_t = BenchEngines::All)]
    pub engine: BenchEngines,
    /// Skip the synthetic ResNet-18-sized INN.
    #[arg(long)]
    pub no_resnet: bool,
    /// Input resolution for the ResNet-18-sized INN's forward passes (its native is 224).
    #[arg(long, default_value_t = 112)]
    pub resnet_resolution: usize,
    /// Runs per measurement (fewer when a measurement exceeds its time budget).
    #[arg(long, default_value_t = 30)]
    pub iters: usize,
    /// Seconds at most per measurement (at least 3 runs are made).
    #[arg(long, default_value_t = 8.0)]
    pub budget_secs: f64,
    /// Batch size for throughput (d).
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// How GPU discretization is laid out: `auto` (the engine's default, `rows`),
    /// `per-axis` (one axis a pass), `pairs` (two axes a pass, a value per invocation) or
    /// `rows` (two axes a pass, long rows in whole rows).
    #[arg(long, value_enum, default_value_t = GpuPasses::Auto)]
    pub gpu_passes: GpuPasses,
    /// Output rows each invocation computes where the `rows` layout takes a parameter in
    /// whole rows (the engine's default, 8, when omitted).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..=i64::from(MAX_ROWS)))]
    pub gpu_rows: Option<u32>,
    /// How the host waits for the GPU: `auto` (poll briefly, then block, on hardware GPUs;
    /// block on software ones), `spin` or `block`.
    #[arg(long, value_enum, default_value_t = GpuWait::Auto)]
    pub gpu_wait: GpuWait,
}

/// See [`BenchArgs::engine`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum BenchEngines {
    /// The CPU engine, and the GPU engine where an adapter exists.
    All,
    /// The CPU engine only.
    Cpu,
    /// The GPU engine only (an error without an adapter).
    Gpu,
}

/// See [`BenchArgs::gpu_wait`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GpuWait {
    /// The context's choice for the adapter.
    Auto,
    /// Poll for a few milliseconds before blocking.
    Spin,
    /// Block at once.
    Block,
}

/// See [`BenchArgs::gpu_passes`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum GpuPasses {
    /// The engine's default.
    Auto,
    /// Two axes per pass.
    Pairs,
    /// One axis per pass.
    PerAxis,
    /// Two axes per pass, long rows in whole rows.
    Rows,
}

/// Median and 95th percentile of a set of timings, in milliseconds.
#[derive(Clone, Copy, Debug)]
struct Stats {
    median_ms: f64,
    p95_ms: f64,
    runs: usize,
}

fn stats(samples: &[Duration]) -> Stats {
    let ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    let (median_ms, p95_ms) = innscope::timing::median_p95(&ms).unwrap_or((f64::NAN, f64::NAN));
    Stats {
        median_ms,
        p95_ms,
        runs: samples.len(),
    }
}

/// Time `f` up to `iters` times within `budget` (at least 3 runs), after one warm-up run.
fn measure(
    iters: usize,
    budget: Duration,
    mut f: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Stats> {
    let stats = measure_in_turn(iters, budget, &mut [&mut f])?;
    Ok(stats[0])
}

/// Time each of `fs` in turn, one run of each per round, up to `iters` rounds within `budget`
/// (at least 3), after one warm-up run of each: all see the same state of the machine, so the
/// ratios of their medians do not drift with it.
fn measure_in_turn(
    iters: usize,
    budget: Duration,
    fs: &mut [&mut dyn FnMut() -> anyhow::Result<()>],
) -> anyhow::Result<Vec<Stats>> {
    for f in fs.iter_mut() {
        f()?;
    }
    let start = Instant::now();
    let mut times = vec![Vec::new(); fs.len()];
    let rounds = |times: &[Vec<Duration>]| times.first().map_or(0, Vec::len);
    while rounds(&times) < iters.max(3) && (rounds(&times) < 3 || start.elapsed() < budget) {
        for (f, t) in fs.iter_mut().zip(&mut times) {
            let t0 = Instant::now();
            f()?;
            t.push(t0.elapsed());
        }
    }
    Ok(times.iter().map(|t| stats(t)).collect())
}

/// A storage buffer of `bytes` on the GPU for the memory-bound measurements, a source and a
/// target of copies. Rounded up to whole [`STREAM_UNIT`]s, at least one, so that the copy
/// shader can bind it.
fn bench_buffer(ctx: &GpuContext, bytes: u64, label: &str) -> eframe::egui_wgpu::wgpu::Buffer {
    use eframe::egui_wgpu::wgpu::{BufferDescriptor, BufferUsages};
    ctx.device.create_buffer(&BufferDescriptor {
        label: Some(label),
        size: bytes.max(STREAM_UNIT).next_multiple_of(STREAM_UNIT),
        usage: BufferUsages::STORAGE | BufferUsages::COPY_SRC | BufferUsages::COPY_DST,
        mapped_at_creation: false,
    })
}

/// A buffer of `bytes` on the GPU for the write-once measurements.
fn write_target(ctx: &GpuContext, bytes: u64) -> eframe::egui_wgpu::wgpu::Buffer {
    bench_buffer(ctx, bytes, "innscope bench write")
}

/// A buffer of `bytes` on the GPU to copy from, for the copy measurements.
fn copy_source(ctx: &GpuContext, bytes: u64) -> eframe::egui_wgpu::wgpu::Buffer {
    bench_buffer(ctx, bytes, "innscope bench copy source")
}

/// Writing `bytes` of discrete weights once on the engine's device: the memory bound of
/// re-discretization. On the CPU on every core, as re-discretization runs (one thread does not
/// reach the memory bandwidth: 3.5 ms against 2.0-2.6 ms on two cores for the
/// ResNet-18-sized weights here).
fn write_once(
    gpu: Option<&Arc<GpuContext>>,
    bytes: u64,
) -> Box<dyn FnMut() -> anyhow::Result<()> + '_> {
    match gpu {
        Some(ctx) => {
            let buffer = write_target(ctx, bytes);
            Box::new(move || {
                let mut enc = ctx.encoder("innscope bench write");
                enc.clear_buffer(&buffer, 0, None);
                ctx.queue.submit([enc.finish()]);
                ctx.wait()?;
                Ok(())
            })
        }
        None => {
            let mut dst = vec![0.0_f32; usize::try_from(bytes / 4).unwrap_or(0)];
            let mut v = 0.0_f32;
            Box::new(move || {
                v += 1.0;
                dst.par_chunks_mut(1 << 16).for_each(|c| c.fill(v));
                std::hint::black_box(&dst);
                Ok(())
            })
        }
    }
}

/// Reading `lambda_bytes` and writing `discrete_bytes` in one pass, as a copy does: the memory
/// bound of a re-discretization that reads λ once and writes the weights once (on the CPU on
/// every core). Where one is longer, its excess is read or written alone. On the GPU a buffer
/// copy, then a clear for the excess of the weights (excess λ is not read there: no model
/// here has more control values than full-width weights).
fn stream_once(
    gpu: Option<&Arc<GpuContext>>,
    lambda_bytes: u64,
    discrete_bytes: u64,
) -> Box<dyn FnMut() -> anyhow::Result<()> + '_> {
    match gpu {
        Some(ctx) => {
            let src = copy_source(ctx, lambda_bytes);
            let dst = write_target(ctx, discrete_bytes);
            let common = lambda_bytes.min(discrete_bytes) / 4 * 4;
            Box::new(move || {
                let mut enc = ctx.encoder("innscope bench copy");
                stream_commands(&mut enc, &src, &dst, common);
                ctx.queue.submit([enc.finish()]);
                ctx.wait()?;
                Ok(())
            })
        }
        None => {
            let words = |b: u64| usize::try_from(b / 4).unwrap_or(0);
            let src: Vec<f32> = (0..words(lambda_bytes)).map(|i| (i % 7) as f32).collect();
            let mut dst = vec![0.0_f32; words(discrete_bytes)];
            Box::new(move || {
                const CHUNK: usize = 1 << 16;
                let common = src.len().min(dst.len());
                let (dst_common, dst_rest) = dst.split_at_mut(common);
                dst_common
                    .par_chunks_mut(CHUNK)
                    .zip(src[..common].par_chunks(CHUNK))
                    .for_each(|(d, s)| d.copy_from_slice(s));
                dst_rest.par_chunks_mut(CHUNK).for_each(|c| c.fill(1.0));
                let rest: f32 = src[common..]
                    .par_chunks(CHUNK)
                    .map(|c| c.iter().sum::<f32>())
                    .sum();
                std::hint::black_box((&dst, rest));
                Ok(())
            })
        }
    }
}

/// The GPU commands of [`stream_once`]: copy `common` bytes of `src` to `dst`, clear the rest
/// of `dst`.
fn stream_commands(
    enc: &mut eframe::egui_wgpu::wgpu::CommandEncoder,
    src: &eframe::egui_wgpu::wgpu::Buffer,
    dst: &eframe::egui_wgpu::wgpu::Buffer,
    common: u64,
) {
    if common > 0 {
        enc.copy_buffer_to_buffer(src, 0, dst, 0, common);
    }
    if dst.size() > common {
        enc.clear_buffer(dst, common, None);
    }
}

/// The compute shader of the copy on the GPU's clock.
const BENCH_WGSL: &str = include_str!("../../shaders/bench.wgsl");
/// Bytes the copy shader moves per invocation and step: a `vec4<f32>`.
const STREAM_UNIT: u64 = 16;
/// Invocations per workgroup of `stream` (its `@workgroup_size`).
const STREAM_WORKGROUP: u32 = 64;
/// Workgroups of a `stream` dispatch at most, each invocation looping over the units left:
/// 262 144 invocations, about as many as a large GPU keeps resident at once (132 cores × 2048
/// on an H100 or H200).
const STREAM_GROUPS: u32 = 4096;

/// Reading λ and writing the weights in one pass of a compute shader (`stream` in
/// `shaders/bench.wgsl`): what any shader that re-discretizes must do at least, nothing
/// computed. Beside the buffer copy it shows the adapter's own cost of moving values through a
/// shader. Whole [`STREAM_UNIT`]s only (up to 12 bytes of each end are left out).
struct ShaderStream {
    kernel: innscope::gpu::context::Kernel,
    bind: eframe::egui_wgpu::wgpu::BindGroup,
    groups: u32,
}

impl ShaderStream {
    /// Copy `lambda_bytes` of `src` to `dst` and clear the rest of `discrete_bytes` there;
    /// `None` where the weights do not fit one storage binding of the device (the engine
    /// splits such models over several; this measurement does not).
    fn new(
        ctx: &GpuContext,
        src: &eframe::egui_wgpu::wgpu::Buffer,
        dst: &eframe::egui_wgpu::wgpu::Buffer,
        (lambda_bytes, discrete_bytes): (u64, u64),
    ) -> Option<Self> {
        use eframe::egui_wgpu::wgpu::{self, util::DeviceExt};
        /// The first `n` units of `buffer` (it holds one at least).
        fn whole(buffer: &wgpu::Buffer, n: u32) -> wgpu::BindingResource<'_> {
            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer,
                offset: 0,
                size: wgpu::BufferSize::new(u64::from(n.max(1)) * STREAM_UNIT),
            })
        }
        let limit = ctx
            .device
            .limits()
            .max_storage_buffer_binding_size
            .min(u64::from(u32::MAX) * STREAM_UNIT);
        if discrete_bytes > limit {
            return None;
        }
        let units = |bytes: u64| u32::try_from(bytes / STREAM_UNIT).unwrap_or(u32::MAX);
        let (copied, written) = (
            units(lambda_bytes.min(discrete_bytes)),
            units(discrete_bytes),
        );
        let groups = written.div_ceil(STREAM_WORKGROUP).clamp(1, STREAM_GROUPS);
        let params = ctx
            .device
            .create_buffer_init(&wgpu::util::BufferInitDescriptor {
                label: Some("innscope bench stream params"),
                contents: bytemuck::cast_slice(&[copied, written, groups * STREAM_WORKGROUP, 0]),
                usage: wgpu::BufferUsages::UNIFORM,
            });
        let module = ctx
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some("bench.wgsl"),
                source: wgpu::ShaderSource::Wgsl(BENCH_WGSL.into()),
            });
        let kernel = innscope::gpu::context::Kernel::new(&ctx.device, &module, "stream");
        let bind = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: Some("innscope bench stream"),
            layout: &kernel.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: params.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: whole(src, copied),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: whole(dst, written),
                },
            ],
        });
        Some(Self {
            kernel,
            bind,
            groups,
        })
    }

    fn record(&self, encoder: &mut eframe::egui_wgpu::wgpu::CommandEncoder) {
        let mut pass = encoder.begin_compute_pass(&Default::default());
        pass.set_pipeline(&self.kernel.pipeline);
        pass.set_bind_group(0, &self.bind, &[]);
        pass.dispatch_workgroups(self.groups, 1, 1);
    }
}

fn input(model: &Model, n: usize, res: [usize; 2]) -> Array4<f32> {
    Array4::from_shape_fn(
        (n, model.doc.input.channels, res[0], res[1]),
        |(b, c, y, x)| (((b * 7 + c * 3 + y * 5 + x) % 11) as f32 / 5.0) - 1.0,
    )
}

/// Bytes every re-discretization must move at least: read λ, write the discrete weights.
fn bytes_moved(model: &Model, plan: &Resolved) -> anyhow::Result<(u64, u64)> {
    let lambda: usize = model.tensors.values().map(ndarray::ArrayBase::len).sum();
    let discrete = model.param_count(plan)?;
    Ok(((lambda * 4) as u64, (discrete * 4) as u64))
}

struct Case<'a> {
    label: &'a str,
    model: &'a Model,
    plans: [Resolved; 2],
    /// One group's slider: the group, and the full plan with only it changed.
    one_group: (GroupId, Resolved),
    batch: usize,
}

fn bench_engine(
    args: &BenchArgs,
    case: &Case<'_>,
    engine: &mut Engine,
    gpu: Option<&Arc<GpuContext>>,
) -> anyhow::Result<serde_json::Value> {
    let budget = Duration::from_secs_f64(args.budget_secs);
    let model = case.model;
    let [p0, p1] = &case.plans;
    let one = input(model, 1, p0.resolution);
    let many = input(model, case.batch, p0.resolution);
    let mut flip = false;
    let mut next_plan = || {
        flip = !flip;
        if flip { p1.clone() } else { p0.clone() }
    };
    // Memory bounds of (a): write the discrete weights of the larger plan once, and read λ and
    // write those weights in one pass, timed in turn with (a).
    let (lambda_bytes, discrete_bytes) = bytes_moved(model, p0)?;
    // The host's share of (a): recording and submitting, before the wait.
    let mut submit = Vec::new();
    let mut rediscretize = || {
        let plan = next_plan();
        let t = Instant::now();
        engine.set_plan(model, &plan)?;
        submit.push(t.elapsed());
        engine.wait()?;
        Ok(())
    };
    let (mut write, mut stream) = (
        write_once(gpu, discrete_bytes),
        stream_once(gpu, lambda_bytes, discrete_bytes),
    );
    let timed = measure_in_turn(
        args.iters,
        budget,
        &mut [&mut rediscretize, &mut *write, &mut *stream],
    )?;
    drop((write, stream));
    let [discretize, write_once, stream_once] = [timed[0], timed[1], timed[2]];
    let submit = stats(&submit);
    let (changed, all) = engine.last_change();
    engine.set_plan(model, p0)?;
    let forward = measure(args.iters, budget, || {
        engine.forward(model, one.view())?;
        Ok(())
    })?;
    let tick = measure(args.iters, budget, || {
        let plan = next_plan();
        engine.set_plan(model, &plan)?;
        engine.forward(model, input(model, 1, plan.resolution).view())?;
        Ok(())
    })?;
    // One group's slider: only the tensors of that group are redone.
    let (group, one) = &case.one_group;
    let mut to_one = false;
    let one_group = measure(args.iters, budget, || {
        to_one = !to_one;
        engine.set_plan(model, if to_one { one } else { p0 })?;
        engine.wait()?;
        Ok(())
    })?;
    // From the full plan, whichever plan the timing ended on.
    engine.set_plan(model, p0)?;
    engine.set_plan(model, one)?;
    let one_group_tensors = engine.last_change();
    engine.set_plan(model, p0)?;
    let batched = measure(args.iters.min(10), budget, || {
        engine.forward(model, many.view())?;
        Ok(())
    })?;
    // Last, as the timestamps stay on: (a) and the write on the GPU's own clock.
    let device_times = match (&mut *engine, gpu) {
        (Engine::Gpu(g), Some(ctx)) => device_times(
            args,
            g,
            ctx,
            model,
            &case.plans,
            (lambda_bytes, discrete_bytes),
        )?,
        _ => None,
    };
    let gbps = (lambda_bytes + discrete_bytes) as f64 / (discretize.median_ms * 1e-3) / 1e9;
    #[expect(clippy::cast_precision_loss, reason = "batch sizes are small")]
    let images_per_s = case.batch as f64 / (batched.median_ms * 1e-3);
    let s = |st: Stats| json!({"median_ms": st.median_ms, "p95_ms": st.p95_ms, "runs": st.runs});
    let on_device = device_times.map_or(serde_json::Value::Null, |[a, w, c, sh]| {
        json!({
            "rediscretize": s(a),
            "write_weights_once": s(w),
            "rediscretize_over_write_once": a.median_ms / w.median_ms,
            "stream_once": s(c),
            "rediscretize_over_stream_once": a.median_ms / c.median_ms,
            "shader_stream_once": s(sh),
            "rediscretize_over_shader_stream_once": a.median_ms / sh.median_ms,
        })
    });
    Ok(json!({
        "model": case.label,
        "engine": engine.describe(),
        "parameters": model.param_count(p0)?,
        "rediscretize": s(discretize),
        "forward_one": s(forward),
        "slider_tick": s(tick),
        "batched": s(batched),
        "batch": case.batch,
        "images_per_s": images_per_s,
        "bytes_lambda": lambda_bytes,
        "bytes_discrete": discrete_bytes,
        "rediscretize_gb_per_s": gbps,
        "write_weights_once": s(write_once),
        "rediscretize_over_write_once": discretize.median_ms / write_once.median_ms,
        "stream_once": s(stream_once),
        "rediscretize_over_stream_once": discretize.median_ms / stream_once.median_ms,
        "rediscretize_submit": s(submit),
        "gpu_timestamps": on_device,
        "rediscretized_tensors": [changed, all],
        "rediscretize_one_group": {
            "group": group,
            "tensors": [one_group_tensors.0, one_group_tensors.1],
            "median_ms": one_group.median_ms,
            "p95_ms": one_group.p95_ms,
            "runs": one_group.runs,
        },
        "resolution": p0.resolution,
    }))
}

/// (a), writing the weights once, the copy of [`stream_once`] and that copy in a shader
/// ([`ShaderStream`]), each between two GPU timestamps, in turn: the device's own time without
/// recording, submission and waiting. `None` where the device has no timestamps.
fn device_times(
    args: &BenchArgs,
    engine: &mut GpuEngine,
    ctx: &Arc<GpuContext>,
    model: &Model,
    plans: &[Resolved; 2],
    (lambda_bytes, discrete_bytes): (u64, u64),
) -> anyhow::Result<Option<[Stats; 4]>> {
    use eframe::egui_wgpu::wgpu;
    let Some(timer) = GpuTimer::new(ctx) else {
        return Ok(None);
    };
    if !engine.time_on_gpu() {
        return Ok(None);
    }
    let buffer = write_target(ctx, discrete_bytes);
    let src = copy_source(ctx, lambda_bytes);
    let common = lambda_bytes.min(discrete_bytes) / 4 * 4;
    let shader = ShaderStream::new(ctx, &src, &buffer, (lambda_bytes, discrete_bytes));
    let (mut a, mut w, mut c, mut sh) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let timed = |record: &dyn Fn(&mut wgpu::CommandEncoder)| -> anyhow::Result<Duration> {
        let mut enc = ctx.encoder("innscope bench memory bound");
        timer.start(&mut enc);
        record(&mut enc);
        timer.stop(&mut enc);
        ctx.queue.submit([enc.finish()]);
        Ok(timer.read(ctx)?)
    };
    // One warm-up round, then as many rounds as the other measurements.
    for round in 0..=args.iters.max(3) {
        engine.set_plan(model, &plans[round % 2])?;
        let ta = engine.last_gpu_time()?;
        let tw = timed(&|enc| enc.clear_buffer(&buffer, 0, None))?;
        let tc = timed(&|enc| stream_commands(enc, &src, &buffer, common))?;
        let ts = match &shader {
            Some(shader) => Some(timed(&|enc| shader.record(enc))?),
            None => None,
        };
        if round > 0 {
            a.extend(ta);
            w.push(tw);
            c.push(tc);
            sh.extend(ts);
        }
    }
    Ok(Some([stats(&a), stats(&w), stats(&c), stats(&sh)]))
}

/// The full plan at `res`, every group at 90 %, and only the widest group at 90 % (the last
/// of the widest: the deepest layers), with that group's id.
fn plans(model: &Model, res: [usize; 2]) -> anyhow::Result<([Resolved; 2], (GroupId, Resolved))> {
    let mut full = Plan::native(model.native());
    full.resolution = res;
    let mut smaller = full.clone();
    smaller.set_keep(&model.doc.groups, 0.9);
    let widest = model
        .doc
        .groups
        .iter()
        .max_by_key(|g| g.original_size)
        .map_or(0, |g| g.id);
    let mut one = full.clone();
    if let Some(&size) = smaller.sizes.get(&widest) {
        one.sizes.insert(widest, size);
    }
    Ok((
        [model.resolve(&full)?, model.resolve(&smaller)?],
        (widest, model.resolve(&one)?),
    ))
}

pub fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let demo = super::load_model(args.model.as_deref())?;
    let resnet = if args.no_resnet {
        None
    } else {
        Some(arch::resnet18(1)?)
    };
    let (demo_plans, demo_one) = plans(&demo, demo.native())?;
    let mut cases = vec![Case {
        label: "demo",
        model: &demo,
        plans: demo_plans,
        one_group: demo_one,
        batch: args.batch,
    }];
    if let Some(r) = &resnet {
        let (r_plans, r_one) = plans(r, [args.resnet_resolution; 2])?;
        cases.push(Case {
            label: "resnet18-sized",
            model: r,
            plans: r_plans,
            one_group: r_one,
            batch: args.batch.clamp(1, 8),
        });
    }
    let want_cpu = args.engine != BenchEngines::Gpu;
    let want_gpu = args.engine != BenchEngines::Cpu;
    let gpu = if want_gpu {
        match GpuContext::headless() {
            Ok(ctx) => {
                match args.gpu_wait {
                    GpuWait::Auto => {}
                    GpuWait::Spin => ctx.set_spin_wait(true),
                    GpuWait::Block => ctx.set_spin_wait(false),
                }
                Some(Arc::new(ctx))
            }
            Err(e) if args.engine == BenchEngines::Gpu => return Err(e.into()),
            Err(e) => {
                eprintln!("note: no GPU engine ({e}); timing the CPU engine only");
                None
            }
        }
    } else {
        None
    };
    let mut rows = Vec::new();
    for case in &cases {
        let [p0, _] = &case.plans;
        if want_cpu {
            eprintln!("timing {} on the CPU engine...", case.label);
            let mut e = Engine::Cpu(CpuEngine::new(case.model, p0)?);
            rows.push(bench_engine(args, case, &mut e, None)?);
        }
        if let Some(ctx) = &gpu {
            eprintln!(
                "timing {} on the GPU engine ({})...",
                case.label,
                ctx.describe()
            );
            let mut g = GpuEngine::new(Arc::clone(ctx), case.model, p0)?;
            match args.gpu_passes {
                GpuPasses::Auto => {}
                GpuPasses::Pairs => g.set_discretization(Discretization::Pairs),
                GpuPasses::PerAxis => g.set_discretization(Discretization::PerAxis),
                GpuPasses::Rows => g.set_discretization(Discretization::Rows),
            }
            if let Some(rows) = args.gpu_rows {
                g.set_rows_per_invocation(rows)?;
            }
            let passes = match g.discretization() {
                Discretization::PerAxis => "one axis per pass".to_owned(),
                Discretization::Pairs => "two axes per pass".to_owned(),
                Discretization::Rows => format!(
                    "two axes per pass, long rows whole ({} rows an invocation)",
                    g.rows_per_invocation()
                ),
            };
            let mut e = Engine::Gpu(Box::new(g));
            let mut row = bench_engine(args, case, &mut e, Some(ctx))?;
            row["gpu_discretize"] = json!(passes);
            row["gpu_wait"] = json!(if ctx.spin_wait() { "spin" } else { "block" });
            rows.push(row);
        }
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
        return Ok(());
    }
    print_table(&rows);
    Ok(())
}

/// Megabytes (10^6 bytes) a row's re-discretization must move: λ read and the discrete
/// weights written.
fn megabytes(row: &serde_json::Value) -> f64 {
    let bytes = |k: &str| row[k].as_u64().unwrap_or(0);
    #[expect(clippy::cast_precision_loss, reason = "byte counts far below 2^52")]
    let total = (bytes("bytes_lambda") + bytes("bytes_discrete")) as f64;
    total / 1e6
}

/// "model (engine kind)" of a row, for the lines under the table.
fn row_label(r: &serde_json::Value) -> String {
    let engine = r["engine"].as_str().unwrap_or("");
    format!(
        "{} ({})",
        r["model"].as_str().unwrap_or(""),
        engine.split(':').next().unwrap_or("")
    )
}

fn print_table(rows: &[serde_json::Value]) {
    let f = |v: &serde_json::Value, k: &str, s: &str| v[k][s].as_f64().unwrap_or(f64::NAN);
    println!(
        "{:<15} {:<7} {:>10} {:>17} {:>17} {:>17} {:>10} {:>9} {:>8} {:>10} {:>14}",
        "model",
        "engine",
        "params",
        "(a) rediscr ms",
        "(b) forward ms",
        "(c) tick ms",
        "(d) img/s",
        "(a) MB",
        "(a) GB/s",
        "write ms",
        "(a)/write-once"
    );
    println!(
        "{:<15} {:<7} {:>10} {:>17} {:>17} {:>17}",
        "", "", "", "median / p95", "median / p95", "median / p95"
    );
    for r in rows {
        let engine = r["engine"].as_str().unwrap_or("");
        let short = if engine.starts_with("gpu") {
            "gpu"
        } else {
            "cpu"
        };
        println!(
            "{:<15} {:<7} {:>10} {:>8.3} / {:<6.3} {:>8.3} / {:<6.3} {:>8.3} / {:<6.3} {:>10.1} {:>9.2} {:>8.2} {:>10.3} {:>14.2}",
            r["model"].as_str().unwrap_or(""),
            short,
            r["parameters"],
            f(r, "rediscretize", "median_ms"),
            f(r, "rediscretize", "p95_ms"),
            f(r, "forward_one", "median_ms"),
            f(r, "forward_one", "p95_ms"),
            f(r, "slider_tick", "median_ms"),
            f(r, "slider_tick", "p95_ms"),
            r["images_per_s"].as_f64().unwrap_or(f64::NAN),
            megabytes(r),
            r["rediscretize_gb_per_s"].as_f64().unwrap_or(f64::NAN),
            f(r, "write_weights_once", "median_ms"),
            r["rediscretize_over_write_once"]
                .as_f64()
                .unwrap_or(f64::NAN),
        );
    }
    for r in rows {
        let (t, g) = (&r["rediscretized_tensors"], &r["rediscretize_one_group"]);
        println!(
            "{}: (a) redoes {} of {} tensors per change; one group's slider (group {}, {} tensors): {:.3} / {:.3} ms",
            row_label(r),
            t[0],
            t[1],
            g["group"],
            g["tensors"][0],
            f(r, "rediscretize_one_group", "median_ms"),
            f(r, "rediscretize_one_group", "p95_ms"),
        );
    }
    for r in rows {
        let copy_ms = f(r, "stream_once", "median_ms");
        println!(
            "{}: copying, i.e. reading λ and writing the weights in one pass, takes {:.3} ms ({:.1} GB/s); (a) takes {:.2}x that",
            row_label(r),
            copy_ms,
            megabytes(r) / copy_ms,
            r["rediscretize_over_stream_once"]
                .as_f64()
                .unwrap_or(f64::NAN),
        );
    }
    for r in rows.iter().filter(|r| !r["gpu_timestamps"].is_null()) {
        let t = &r["gpu_timestamps"];
        let g = |k: &str| t[k]["median_ms"].as_f64().unwrap_or(f64::NAN);
        let ratio = |k: &str| t[k].as_f64().unwrap_or(f64::NAN);
        println!(
            "{} (gpu), on the GPU's clock: (a) {:.3} ms, write once {:.3} ms (ratio {:.2}), copy {:.3} ms (ratio {:.2}), copy in a shader {}; host recording and submitting (a): {:.3} ms",
            r["model"].as_str().unwrap_or(""),
            g("rediscretize"),
            g("write_weights_once"),
            ratio("rediscretize_over_write_once"),
            g("stream_once"),
            ratio("rediscretize_over_stream_once"),
            if t["shader_stream_once"]["runs"].as_u64().unwrap_or(0) > 0 {
                format!(
                    "{:.3} ms (ratio {:.2})",
                    g("shader_stream_once"),
                    ratio("rediscretize_over_shader_stream_once")
                )
            } else {
                "not timed (the weights exceed one storage binding)".to_owned()
            },
            f(r, "rediscretize_submit", "median_ms"),
        );
    }
    let mut ratios = Vec::new();
    // Each GPU row against the CPU row of the same model (none when only one engine ran).
    let is_gpu = |r: &serde_json::Value| r["engine"].as_str().is_some_and(|e| e.starts_with("gpu"));
    for g in rows.iter().filter(|r| is_gpu(r)) {
        if let Some(c) = rows.iter().find(|c| !is_gpu(c) && c["model"] == g["model"]) {
            ratios.push(format!(
                "{}: GPU/CPU time ratio (a) {:.2}, (b) {:.2}, (c) {:.2}",
                c["model"].as_str().unwrap_or(""),
                f(g, "rediscretize", "median_ms") / f(c, "rediscretize", "median_ms"),
                f(g, "forward_one", "median_ms") / f(c, "forward_one", "median_ms"),
                f(g, "slider_tick", "median_ms") / f(c, "slider_tick", "median_ms"),
            ));
        }
    }
    for r in ratios {
        println!("{r}");
    }
    if let Some(g) = rows
        .iter()
        .find(|r| r["engine"].as_str().is_some_and(|e| e.starts_with("gpu")))
    {
        println!(
            "GPU adapter: {}; discretization interpolates {}; the host waits for the GPU by {}",
            g["engine"]
                .as_str()
                .unwrap_or("")
                .trim_start_matches("gpu: "),
            g["gpu_discretize"].as_str().unwrap_or(""),
            if g["gpu_wait"] == "spin" {
                "polling, then blocking"
            } else {
                "blocking"
            }
        );
    }
    println!(
        "(a) re-discretize every kernel for a new partition; (b) forward pass of one input; (c) (a)+(b);"
    );
    println!(
        "(d) batched throughput; (a) MB = bytes (a) must move at least: λ read + discrete weights written;"
    );
    println!("(a) GB/s = (a) MB / median (a);");
    println!(
        "write ms = median time to write the discrete weights once (the memory bound; on the CPU, on every core);"
    );
    println!(
        "(a)/write-once = median (a) / write ms, each (a) timed in turn with a write and a copy (λ read, weights written, in one pass)."
    );
    if rows.iter().any(|r| !r["gpu_timestamps"].is_null()) {
        println!(
            "copy in a shader = that copy by a compute shader (shaders/bench.wgsl), the least a shader that re-discretizes must do."
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `context`'s device, or `None` (said) where there is no adapter and none is required.
    fn device(context: Result<GpuContext, innscope::gpu::GpuError>) -> Option<GpuContext> {
        match context {
            Ok(ctx) => Some(ctx),
            Err(e) => {
                assert!(
                    std::env::var_os("INNSCOPE_REQUIRE_GPU").is_none(),
                    "INNSCOPE_REQUIRE_GPU is set but there is no adapter: {e}"
                );
                eprintln!("skipped: no GPU adapter ({e})");
                None
            }
        }
    }

    /// Weights beyond one storage binding are not timed rather than timed in part.
    #[test]
    fn shader_copy_is_skipped_beyond_one_binding() {
        let Some(ctx) = device(GpuContext::headless_limited(1024)) else {
            return;
        };
        let (src, dst) = (copy_source(&ctx, 1024), write_target(&ctx, 2048));
        assert!(ShaderStream::new(&ctx, &src, &dst, (1024, 1024)).is_some());
        assert!(ShaderStream::new(&ctx, &src, &dst, (1024, 2048)).is_none());
    }

    /// The copy shader moves what it is timed for: λ's whole units into the weights, zeros
    /// over the rest of the weights' whole units, nothing past them.
    #[test]
    fn shader_copy_copies_whole_units_and_clears_the_rest() {
        let Some(ctx) = device(GpuContext::headless()) else {
            return;
        };
        // 37 words of λ (9 whole units and one word) into 50 of weights (12 units and two).
        let (lambda_words, weight_words) = (37_usize, 50_usize);
        let src = copy_source(&ctx, 4 * lambda_words as u64);
        let dst = write_target(&ctx, 4 * weight_words as u64);
        let lambda: Vec<f32> = (0..lambda_words).map(|i| i as f32 + 0.5).collect();
        ctx.queue
            .write_buffer(&src, 0, bytemuck::cast_slice(&lambda));
        let before = vec![-7.0_f32; dst.size() as usize / 4];
        ctx.queue
            .write_buffer(&dst, 0, bytemuck::cast_slice(&before));
        let shader = ShaderStream::new(
            &ctx,
            &src,
            &dst,
            (4 * lambda_words as u64, 4 * weight_words as u64),
        )
        .expect("a few words fit one binding");
        let mut enc = ctx.encoder("test stream");
        shader.record(&mut enc);
        let words = ctx
            .read_words(enc, &dst, 0, before.len())
            .expect("read back");
        let got: Vec<f32> = words.into_iter().map(f32::from_bits).collect();
        let mut want = before;
        want[..36].copy_from_slice(&lambda[..36]);
        want[36..48].fill(0.0);
        assert_eq!(got, want);
    }
}
