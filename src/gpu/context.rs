//! The GPU context: device, queue and every compute pipeline, created once.
//!
//! The context either shares a device that already exists (eframe's renderer, a test's
//! software device) through [`GpuContext::new`], or makes its own headless one with
//! [`GpuContext::headless`], preferring a hardware adapter and taking a software one (Mesa's
//! lavapipe) when that is all there is.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use eframe::egui_wgpu::wgpu;

use super::GpuError;
use crate::layers::Shader;

/// WGSL of the discretization kernels.
pub const DISCRETIZE_WGSL: &str = include_str!("../../shaders/discretize.wgsl");

/// A compute pipeline and its bind group layout.
pub struct Kernel {
    /// The pipeline.
    pub pipeline: wgpu::ComputePipeline,
    /// Layout of bind group 0.
    pub layout: wgpu::BindGroupLayout,
}

impl Kernel {
    /// The compute pipeline of `entry` in `module`, with the layout derived from the shader.
    #[must_use]
    pub fn new(device: &wgpu::Device, module: &wgpu::ShaderModule, entry: &str) -> Self {
        let pipeline = device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(entry),
            layout: None,
            module,
            entry_point: Some(entry),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            cache: None,
        });
        let layout = pipeline.get_bind_group_layout(0);
        Self { pipeline, layout }
    }
}

/// Invocations per workgroup of every 1-D kernel.
const WORKGROUP: u32 = 64;
/// Most workgroups along x; larger grids go 2-D.
const MAX_GROUPS_X: u32 = 65_535;

/// `v` as `u32`, or an error naming `what`.
pub(crate) fn u32_of(v: usize, what: &str) -> Result<u32, GpuError> {
    u32::try_from(v).map_err(|_| GpuError::TooLarge(format!("{what} = {v} exceeds u32")))
}

/// Storage buffers innscope fills, binds and reads back.
pub(crate) const STORAGE: wgpu::BufferUsages = wgpu::BufferUsages::STORAGE
    .union(wgpu::BufferUsages::COPY_DST)
    .union(wgpu::BufferUsages::COPY_SRC);

/// A buffer of at least `bytes` (16 at least, a multiple of 4), or an error naming `label`
/// where it exceeds what the adapter allows.
pub(crate) fn new_buffer(
    ctx: &GpuContext,
    label: &str,
    bytes: u64,
    usage: wgpu::BufferUsages,
) -> Result<wgpu::Buffer, GpuError> {
    let limits = ctx.device.limits();
    let bytes = bytes.max(16).div_ceil(4) * 4;
    if bytes > limits.max_buffer_size
        || (usage.contains(wgpu::BufferUsages::STORAGE)
            && bytes > limits.max_storage_buffer_binding_size)
    {
        return Err(GpuError::TooLarge(format!(
            "{label}: {bytes} bytes exceed this adapter's buffer limit ({} bytes)",
            limits.max_storage_buffer_binding_size
        )));
    }
    Ok(ctx.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: bytes,
        usage,
        mapped_at_creation: false,
    }))
}

/// Workgroup grid for `total` invocations (2-D when more than 65 535 groups are needed).
fn groups_for(total: u32) -> (u32, u32) {
    let groups = total.div_ceil(WORKGROUP).max(1);
    if groups <= MAX_GROUPS_X {
        (groups, 1)
    } else {
        (MAX_GROUPS_X, groups.div_ceil(MAX_GROUPS_X))
    }
}

/// A range of a buffer, bound as a whole: one discrete tensor in a weight arena.
#[derive(Clone, Debug)]
pub struct Span {
    /// The buffer.
    pub buffer: wgpu::Buffer,
    /// First byte (a multiple of the adapter's storage offset alignment).
    pub offset: u64,
    /// Bytes (at least 4).
    pub bytes: u64,
}

impl Span {
    /// All of `buffer`.
    #[must_use]
    pub fn whole(buffer: &wgpu::Buffer) -> Self {
        Self {
            buffer: buffer.clone(),
            offset: 0,
            bytes: buffer.size(),
        }
    }

    /// The span as a binding.
    #[must_use]
    pub fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: &self.buffer,
            offset: self.offset,
            size: wgpu::BufferSize::new(self.bytes),
        })
    }

    /// Its first 32-bit word in the buffer.
    #[must_use]
    pub fn first_word(&self) -> usize {
        usize::try_from(self.offset / 4).unwrap_or(usize::MAX)
    }
}

/// What a kernel binds: a whole buffer, or a [`Span`] of one.
pub trait Bind {
    /// As a binding resource.
    fn resource(&self) -> wgpu::BindingResource<'_>;
}

impl Bind for wgpu::Buffer {
    fn resource(&self) -> wgpu::BindingResource<'_> {
        self.as_entire_binding()
    }
}

impl Bind for Span {
    fn resource(&self) -> wgpu::BindingResource<'_> {
        self.binding()
    }
}

/// Record one dispatch of `kernel` over `total` invocations with `bindings` at 0...
pub(crate) fn dispatch(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    kernel: &Kernel,
    bindings: &[&dyn Bind],
    total: u32,
) {
    let numbered: Vec<(u32, wgpu::BindingResource<'_>)> = bindings
        .iter()
        .enumerate()
        .map(|(i, b)| (u32::try_from(i).unwrap_or(0), b.resource()))
        .collect();
    dispatch_at(ctx, encoder, kernel, &numbered, total);
}

/// Record one dispatch of `kernel` over `total` invocations with each resource at its binding.
pub(crate) fn dispatch_at(
    ctx: &GpuContext,
    encoder: &mut wgpu::CommandEncoder,
    kernel: &Kernel,
    bindings: &[(u32, wgpu::BindingResource<'_>)],
    total: u32,
) {
    let entries: Vec<wgpu::BindGroupEntry<'_>> = bindings
        .iter()
        .map(|(binding, b)| wgpu::BindGroupEntry {
            binding: *binding,
            resource: b.clone(),
        })
        .collect();
    let bind = ctx.device.create_bind_group(&wgpu::BindGroupDescriptor {
        label: None,
        layout: &kernel.layout,
        entries: &entries,
    });
    let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
    pass.set_pipeline(&kernel.pipeline);
    pass.set_bind_group(0, &bind, &[]);
    let (x, y) = groups_for(total);
    pass.dispatch_workgroups(x, y, 1);
}

/// The discretization kernels, built with the context (each layer's room builds its own on
/// first use, through [`GpuContext::kernel`]).
pub struct Kernels {
    /// Cubic interpolation of many parameters along one or two axes each (`discretize.wgsl`).
    pub interp_batch: Kernel,
    /// The same for one parameter, its job in a uniform block.
    pub interp_one: Kernel,
    /// The same in whole output rows, for parameters with long rows.
    pub interp_rows: Kernel,
}

/// Device, queue, adapter description and kernels.
pub struct GpuContext {
    /// The device.
    pub device: wgpu::Device,
    /// Its queue.
    pub queue: wgpu::Queue,
    /// What the adapter is (name, backend, device type).
    pub adapter: wgpu::AdapterInfo,
    /// The discretization pipelines.
    pub kernels: Kernels,
    /// The layers' pipelines, by shader file and entry point, built on first use.
    layer_kernels: Mutex<HashMap<(&'static str, &'static str), Arc<Kernel>>>,
    /// Set when the device reports itself lost.
    lost: Arc<AtomicBool>,
    /// Whether [`GpuContext::wait`] polls before it blocks.
    spin_wait: AtomicBool,
}

/// How long [`GpuContext::wait`] polls before it blocks.
pub const SPIN_WAIT: std::time::Duration = std::time::Duration::from_millis(5);

/// Storage buffers bound at once by the widest kernel (batch norm).
pub const STORAGE_BUFFERS_NEEDED: u32 = 6;

/// The limits innscope asks for: downlevel defaults raised to what the adapter offers for the
/// buffers compute needs.
#[must_use]
pub fn required_limits(adapter: &wgpu::Limits) -> wgpu::Limits {
    wgpu::Limits {
        max_storage_buffers_per_shader_stage: STORAGE_BUFFERS_NEEDED
            .max(adapter.max_storage_buffers_per_shader_stage.min(8)),
        max_storage_buffer_binding_size: adapter.max_storage_buffer_binding_size,
        max_buffer_size: adapter.max_buffer_size,
        max_compute_workgroups_per_dimension: adapter.max_compute_workgroups_per_dimension,
        ..wgpu::Limits::downlevel_defaults()
    }
    .using_resolution(adapter.clone())
}

/// Whether an adapter can run innscope's compute kernels, and if not, why.
pub fn check_adapter(adapter: &wgpu::Adapter) -> Result<(), String> {
    let caps = adapter.get_downlevel_capabilities();
    if !caps.flags.contains(wgpu::DownlevelFlags::COMPUTE_SHADERS) {
        return Err("no compute shaders".into());
    }
    let limits = adapter.limits();
    if limits.max_storage_buffers_per_shader_stage < STORAGE_BUFFERS_NEEDED {
        return Err(format!(
            "{} storage buffers per stage, {STORAGE_BUFFERS_NEEDED} needed",
            limits.max_storage_buffers_per_shader_stage
        ));
    }
    Ok(())
}

/// The process's one instance for headless devices: drivers are loaded and their adapters
/// enumerated once, however many contexts are made.
fn instance() -> &'static wgpu::Instance {
    static INSTANCE: OnceLock<wgpu::Instance> = OnceLock::new();
    INSTANCE.get_or_init(|| {
        wgpu::Instance::new(wgpu::InstanceDescriptor::new_without_display_handle_from_env())
    })
}

/// Held while adapters are enumerated and a headless device and its pipelines are made. Vulkan
/// drivers are not all safe to initialise from several threads at once: the GPU tests, each
/// making its own device concurrently, hung twice at start-up on NVIDIA's driver (the cause
/// was not found), and wgpu's tracker has reports of crashes and hangs from concurrent device
/// and pipeline creation. One at a time costs nothing in the program, which makes one device.
static DEVICE_CREATION: Mutex<()> = Mutex::new(());

/// Adapters in order of preference: hardware before software, Vulkan first. Vulkan, Metal and
/// DX12 are asked first; OpenGL only when none of those has an adapter (its EGL probing is
/// noisy and its compute support limited). `WGPU_BACKEND` overrides. Call with
/// [`DEVICE_CREATION`] held.
fn candidate_adapters() -> Vec<wgpu::Adapter> {
    let explicit = std::env::var_os("WGPU_BACKEND").is_some();
    let instance = instance();
    let mut adapters = pollster::block_on(instance.enumerate_adapters(if explicit {
        wgpu::Backends::all()
    } else {
        wgpu::Backends::PRIMARY
    }));
    if adapters.is_empty() && !explicit {
        adapters = pollster::block_on(instance.enumerate_adapters(wgpu::Backends::SECONDARY));
    }
    adapters.sort_by_key(|a| {
        (
            rank(a.get_info().device_type),
            a.get_info().backend != wgpu::Backend::Vulkan,
        )
    });
    adapters
}

/// The adapter [`GpuContext::headless`] would take, without creating a device.
#[must_use]
pub fn best_adapter() -> Option<wgpu::AdapterInfo> {
    // A panic elsewhere while holding the lock leaves nothing half-made that matters here.
    let _one_at_a_time = DEVICE_CREATION
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    candidate_adapters()
        .into_iter()
        .find(|a| check_adapter(a).is_ok())
        .map(|a| a.get_info())
}

fn rank(t: wgpu::DeviceType) -> u8 {
    match t {
        wgpu::DeviceType::DiscreteGpu => 0,
        wgpu::DeviceType::IntegratedGpu => 1,
        wgpu::DeviceType::VirtualGpu => 2,
        wgpu::DeviceType::Other => 3,
        wgpu::DeviceType::Cpu => 4,
    }
}

impl GpuContext {
    /// Build the kernels on an existing device.
    ///
    /// # Errors
    /// A shader that does not compile on this device.
    pub fn new(
        device: wgpu::Device,
        queue: wgpu::Queue,
        adapter: wgpu::AdapterInfo,
    ) -> Result<Self, GpuError> {
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = |label: &str, src: &str| {
            device.create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(label),
                source: wgpu::ShaderSource::Wgsl(src.into()),
            })
        };
        let disc = module("innscope discretize.wgsl", DISCRETIZE_WGSL);
        let kernel = |m: &wgpu::ShaderModule, entry: &str| Kernel::new(&device, m, entry);
        let kernels = Kernels {
            interp_batch: kernel(&disc, "interp_batch"),
            interp_one: kernel(&disc, "interp_one"),
            interp_rows: kernel(&disc, "interp_rows"),
        };
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Setup(format!("compute pipelines: {err}")));
        }
        Ok(Self {
            device,
            queue,
            spin_wait: AtomicBool::new(adapter.device_type != wgpu::DeviceType::Cpu),
            adapter,
            kernels,
            layer_kernels: Mutex::new(HashMap::new()),
            lost: Arc::new(AtomicBool::new(false)),
        })
    }

    /// The compute pipeline of `entry` in a layer's `shader`, built on first use and kept.
    ///
    /// # Errors
    /// A shader that does not compile on this device.
    pub fn kernel(
        &self,
        shader: &'static Shader,
        entry: &'static str,
    ) -> Result<Arc<Kernel>, GpuError> {
        let mut built = self
            .layer_kernels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(k) = built.get(&(shader.file, entry)) {
            return Ok(Arc::clone(k));
        }
        let scope = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = self
            .device
            .create_shader_module(wgpu::ShaderModuleDescriptor {
                label: Some(shader.file),
                source: wgpu::ShaderSource::Wgsl(shader.source.into()),
            });
        let kernel = Arc::new(Kernel::new(&self.device, &module, entry));
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Setup(format!("{} ({entry}): {err}", shader.file)));
        }
        built.insert((shader.file, entry), Arc::clone(&kernel));
        Ok(kernel)
    }

    /// Whether [`GpuContext::wait`] polls before it blocks (the default on hardware adapters;
    /// a software adapter needs the core for the work itself).
    pub fn set_spin_wait(&self, spin: bool) {
        self.spin_wait.store(spin, Ordering::Relaxed);
    }

    /// Whether [`GpuContext::wait`] polls before it blocks.
    #[must_use]
    pub fn spin_wait(&self) -> bool {
        self.spin_wait.load(Ordering::Relaxed)
    }

    /// Wait until every submission has finished. On a hardware adapter it polls for up to
    /// [`SPIN_WAIT`] first: a plan change or a forward pass is done well within it, and a
    /// blocking wait can sleep past the end of short work.
    ///
    /// # Errors
    /// A lost device.
    pub fn wait(&self) -> Result<(), GpuError> {
        let err = |e: wgpu::PollError| GpuError::Device(e.to_string());
        if self.spin_wait.load(Ordering::Relaxed) {
            let start = std::time::Instant::now();
            while start.elapsed() < SPIN_WAIT {
                if self
                    .device
                    .poll(wgpu::PollType::Poll)
                    .map_err(err)?
                    .is_queue_empty()
                {
                    return Ok(());
                }
                std::thread::yield_now();
            }
        }
        self.device
            .poll(wgpu::PollType::wait_indefinitely())
            .map(|_| ())
            .map_err(err)
    }

    /// Whether the device has been lost (a headless context watches for it; a shared device
    /// reports through its owner).
    #[must_use]
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::Relaxed)
    }

    /// Submit `encoder` (which copies into `staging`, a `MAP_READ` buffer), wait for the GPU,
    /// and return `staging`'s first `bytes`: the one way anything comes back to the CPU.
    ///
    /// # Errors
    /// A failed map or a lost device.
    pub fn map_read(
        &self,
        encoder: wgpu::CommandEncoder,
        staging: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<Vec<u8>, GpuError> {
        self.queue.submit([encoder.finish()]);
        let slice = staging.slice(..bytes);
        let (tx, rx) = std::sync::mpsc::channel();
        slice.map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        // The map's callback ran in the poll that found the queue empty; wait on if not.
        let mapped = match rx.try_recv() {
            Ok(r) => r,
            Err(_) => {
                self.device
                    .poll(wgpu::PollType::wait_indefinitely())
                    .map_err(|e| GpuError::Device(e.to_string()))?;
                rx.recv().map_err(|_| GpuError::Lost)?
            }
        };
        mapped.map_err(|e| GpuError::Device(e.to_string()))?;
        let data = slice
            .get_mapped_range()
            .map_err(|e| GpuError::Device(e.to_string()))?
            .to_vec();
        staging.unmap();
        if self.is_lost() {
            return Err(GpuError::Lost);
        }
        Ok(data)
    }

    /// `count` 32-bit words of `src` from word `start`, through a staging buffer of their own
    /// (for occasional reads: exports, tests, a hovered value), after submitting `encoder`.
    ///
    /// # Errors
    /// A failed map or a lost device.
    pub fn read_words(
        &self,
        mut encoder: wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        start: usize,
        count: usize,
    ) -> Result<Vec<u32>, GpuError> {
        let bytes = (count.max(1) * 4) as u64;
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("innscope readback"),
            size: bytes,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        if count > 0 {
            encoder.copy_buffer_to_buffer(src, (start * 4) as u64, &staging, 0, bytes);
        }
        let data = self.map_read(encoder, &staging, bytes)?;
        Ok(bytemuck::cast_slice::<u8, u32>(&data)[..count].to_vec())
    }

    /// A new command encoder labelled `label`.
    #[must_use]
    pub fn encoder(&self, label: &str) -> wgpu::CommandEncoder {
        self.device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some(label) })
    }

    /// Create a headless device: the best hardware adapter, else a software one.
    ///
    /// # Errors
    /// No adapter at all, or none that can run compute shaders (with the reasons).
    pub fn headless() -> Result<Self, GpuError> {
        Self::headless_limited(u64::MAX)
    }

    /// [`GpuContext::headless`] with storage bindings of at most `binding_bytes` (as a small
    /// device would have; a model beyond it is spread over several buffers).
    ///
    /// # Errors
    /// No adapter at all, or none that can run compute shaders (with the reasons).
    pub fn headless_limited(binding_bytes: u64) -> Result<Self, GpuError> {
        let _one_at_a_time = DEVICE_CREATION
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut refused = Vec::new();
        for adapter in candidate_adapters() {
            let info = adapter.get_info();
            if let Err(why) = check_adapter(&adapter) {
                refused.push(format!("{} ({:?}): {why}", info.name, info.backend));
                continue;
            }
            let desc = wgpu::DeviceDescriptor {
                label: Some("innscope compute"),
                // Timestamps where the adapter has them, for `innscope bench`.
                required_features: adapter.features() & super::timer::TIMER_FEATURES,
                required_limits: {
                    let mut limits = required_limits(&adapter.limits());
                    limits.max_storage_buffer_binding_size =
                        limits.max_storage_buffer_binding_size.min(binding_bytes);
                    limits
                },
                ..Default::default()
            };
            match pollster::block_on(adapter.request_device(&desc)) {
                Ok((device, queue)) => {
                    // Errors outside an error scope are reported, not fatal: every operation
                    // that can fail runs inside a scope and returns the error.
                    device.on_uncaptured_error(Arc::new(|e: wgpu::Error| {
                        eprintln!("GPU error: {e}");
                    }));
                    let ctx = Self::new(device, queue, info)?;
                    let lost = Arc::clone(&ctx.lost);
                    ctx.device
                        .set_device_lost_callback(move |_, _| lost.store(true, Ordering::Relaxed));
                    return Ok(ctx);
                }
                Err(e) => refused.push(format!("{} ({:?}): {e}", info.name, info.backend)),
            }
        }
        Err(GpuError::NoAdapter(if refused.is_empty() {
            "no GPU adapter found (on Linux without a GPU, install mesa-vulkan-drivers for the software Vulkan device)".into()
        } else {
            format!("no usable GPU adapter: {}", refused.join("; "))
        }))
    }

    /// One line naming the adapter, e.g. `llvmpipe (LLVM 15.0.6, 256 bits) (Vulkan, Cpu)`.
    #[must_use]
    pub fn describe(&self) -> String {
        format!(
            "{} ({:?}, {:?})",
            self.adapter.name, self.adapter.backend, self.adapter.device_type
        )
    }
}
