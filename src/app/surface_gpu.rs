//! Drawing the spline weight surface with wgpu: a render pipeline (`shaders/surface.wgsl`)
//! kept in egui's callback resources, and a paint callback per frame that uploads the
//! triangles (projected and ordered by [`super::surface`]) and draws them in egui's pass.

use bytemuck::{Pod, Zeroable};
use eframe::egui::{Color32, Pos2, Rect};
use eframe::egui_wgpu::{self, CallbackResources, CallbackTrait, wgpu};

/// WGSL of the surface renderer.
pub const SURFACE_WGSL: &str = include_str!("../../shaders/surface.wgsl");

/// One vertex: clip-space position and colour.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
pub struct GpuVertex {
    position: [f32; 2],
    color: [f32; 4],
}

const _: () = assert!(size_of::<GpuVertex>() == 24);

impl GpuVertex {
    /// A vertex at screen point `p` inside `rect`, coloured `color` (converted to linear when
    /// the target format is sRGB, as egui's own shader does).
    #[must_use]
    pub fn new(p: Pos2, rect: Rect, color: Color32, srgb_target: bool) -> Self {
        let c = rect.center();
        let color = if srgb_target {
            eframe::egui::Rgba::from(color).to_array()
        } else {
            color.to_array().map(|v| f32::from(v) / 255.0)
        };
        Self {
            position: [
                (p.x - c.x) / (rect.width() / 2.0),
                -(p.y - c.y) / (rect.height() / 2.0),
            ],
            color,
        }
    }
}

/// The pipeline and a grow-only vertex buffer, created once per window.
struct SurfaceResources {
    pipeline: wgpu::RenderPipeline,
    vertices: wgpu::Buffer,
    count: u32,
}

/// Create the pipeline on the window's device and keep it in egui's callback resources.
pub fn install(rs: &egui_wgpu::RenderState) {
    let device = &rs.device;
    let shader = device.create_shader_module(wgpu::ShaderModuleDescriptor {
        label: Some("innscope surface.wgsl"),
        source: wgpu::ShaderSource::Wgsl(SURFACE_WGSL.into()),
    });
    let layout = device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
        label: Some("innscope surface"),
        bind_group_layouts: &[],
        immediate_size: 0,
    });
    let pipeline = device.create_render_pipeline(&wgpu::RenderPipelineDescriptor {
        label: Some("innscope surface"),
        layout: Some(&layout),
        vertex: wgpu::VertexState {
            module: &shader,
            entry_point: Some("vs_main"),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            buffers: &[Some(wgpu::VertexBufferLayout {
                array_stride: size_of::<GpuVertex>() as u64,
                step_mode: wgpu::VertexStepMode::Vertex,
                attributes: &wgpu::vertex_attr_array![0 => Float32x2, 1 => Float32x4],
            })],
        },
        fragment: Some(wgpu::FragmentState {
            module: &shader,
            entry_point: Some("fs_main"),
            compilation_options: wgpu::PipelineCompilationOptions::default(),
            targets: &[Some(wgpu::ColorTargetState {
                format: rs.target_format,
                blend: Some(wgpu::BlendState::PREMULTIPLIED_ALPHA_BLENDING),
                write_mask: wgpu::ColorWrites::ALL,
            })],
        }),
        primitive: wgpu::PrimitiveState::default(),
        depth_stencil: None,
        multisample: wgpu::MultisampleState::default(),
        multiview_mask: None,
        cache: None,
    });
    let vertices = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("innscope surface vertices"),
        size: 1 << 16,
        usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    rs.renderer
        .write()
        .callback_resources
        .insert(SurfaceResources {
            pipeline,
            vertices,
            count: 0,
        });
}

/// This frame's triangles (three vertices each).
pub struct SurfaceCallback {
    /// Vertices, far to near.
    pub vertices: Vec<GpuVertex>,
}

impl CallbackTrait for SurfaceCallback {
    fn prepare(
        &self,
        device: &wgpu::Device,
        queue: &wgpu::Queue,
        _screen: &egui_wgpu::ScreenDescriptor,
        _encoder: &mut wgpu::CommandEncoder,
        resources: &mut CallbackResources,
    ) -> Vec<wgpu::CommandBuffer> {
        let Some(res) = resources.get_mut::<SurfaceResources>() else {
            return Vec::new();
        };
        let bytes: &[u8] = bytemuck::cast_slice(&self.vertices);
        if res.vertices.size() < bytes.len() as u64 {
            res.vertices = device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("innscope surface vertices"),
                size: (bytes.len() as u64).next_power_of_two(),
                usage: wgpu::BufferUsages::VERTEX | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
        }
        queue.write_buffer(&res.vertices, 0, bytes);
        res.count = u32::try_from(self.vertices.len()).unwrap_or(0);
        Vec::new()
    }

    fn paint(
        &self,
        _info: eframe::egui::PaintCallbackInfo,
        pass: &mut wgpu::RenderPass<'static>,
        resources: &CallbackResources,
    ) {
        let Some(res) = resources.get::<SurfaceResources>() else {
            return;
        };
        if res.count == 0 {
            return;
        }
        pass.set_pipeline(&res.pipeline);
        pass.set_vertex_buffer(0, res.vertices.slice(..));
        pass.draw(0..res.count, 0..1);
    }
}
