//! Views of the discrete weights that stay on the GPU (`shaders/weight_view.wgsl`): a 2-D
//! slice of a weight buffer coloured straight into a texture the window draws, so a slider
//! tick does not bring the weights back to the CPU. What comes back is one number per slice
//! (its colour range, for the legend), the value under the pointer, and, for the spectra,
//! the first output channels' kernels summed over input channels (a few hundred floats).

use std::sync::Arc;

use bytemuck::{Pod, Zeroable};
use eframe::egui_wgpu::wgpu;
use ndarray::Array3;

use super::context::{GpuContext, Kernel, Span, dispatch, u32_of};
use super::{GpuEngine, GpuError};

/// WGSL of the weight views.
pub const WEIGHT_VIEW_WGSL: &str = include_str!("../../shaders/weight_view.wgsl");

/// Texture format of a view: what egui's renderer expects of a native texture (gamma-space
/// bytes, as egui's own textures).
pub const VIEW_FORMAT: wgpu::TextureFormat = wgpu::TextureFormat::Rgba8Unorm;

/// A 2-D slice of a flat row-major tensor: entry `(r, c)` is at
/// `offset + r * row_stride + c * col_stride`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SliceSpec {
    /// Index of entry (0, 0).
    pub offset: usize,
    /// Rows (drawn top to bottom).
    pub rows: usize,
    /// Columns (drawn left to right).
    pub cols: usize,
    /// Distance between rows.
    pub row_stride: usize,
    /// Distance between columns.
    pub col_stride: usize,
}

impl SliceSpec {
    /// Index of entry `(r, c)` in the flat tensor.
    #[must_use]
    pub fn index(&self, r: usize, c: usize) -> usize {
        self.offset + r * self.row_stride + c * self.col_stride
    }

    /// Every k-th row and every l-th column, the smallest k and l for which neither side
    /// exceeds `max_side` (the slice itself when it fits): what a texture of at most
    /// `max_side` texels a side can show of it.
    #[must_use]
    pub fn fitted(&self, max_side: usize) -> Self {
        let max_side = max_side.max(1);
        let (k, l) = (
            self.rows.div_ceil(max_side).max(1),
            self.cols.div_ceil(max_side).max(1),
        );
        Self {
            offset: self.offset,
            rows: self.rows.div_ceil(k),
            cols: self.cols.div_ceil(l),
            row_stride: self.row_stride * k,
            col_stride: self.col_stride * l,
        }
    }

    /// Highest flat index the slice touches (`None` when empty).
    fn last(&self) -> Option<usize> {
        (self.rows > 0 && self.cols > 0).then(|| self.index(self.rows - 1, self.cols - 1))
    }
}

/// The diverging colour map: sRGB bytes at 0, at `-max|v|` and at `+max|v|`, mixed linearly
/// and rounded (the window's own colouring of signed values).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Diverging {
    /// Colour at zero.
    pub mid: [u8; 3],
    /// Colour at the most negative value.
    pub negative: [u8; 3],
    /// Colour at the most positive value.
    pub positive: [u8; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct SliceParams {
    offset: u32,
    rows: u32,
    cols: u32,
    row_stride: u32,
    col_stride: u32,
    _pad: [u32; 3],
    mid: [f32; 4],
    neg: [f32; 4],
    pos: [f32; 4],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct SumParams {
    n_out: u32,
    cin: u32,
    plane: u32,
    _pad: u32,
}

const _: () = assert!(size_of::<SliceParams>() == 80 && size_of::<SumParams>() == 16);

/// Pipelines and small buffers of the weight views, and the texture of the current view.
pub struct WeightView {
    ctx: Arc<GpuContext>,
    slice_range: Kernel,
    colorize: Kernel,
    channel_sums: Kernel,
    /// Uniforms of the whole slice (range) and of the texels shown (colours).
    params: [wgpu::Buffer; 2],
    range: wgpu::Buffer,
    texture: Option<(wgpu::Texture, wgpu::TextureView)>,
}

impl WeightView {
    /// Build the pipelines on `ctx`'s device.
    ///
    /// # Errors
    /// Pipelines the device refuses.
    pub fn new(ctx: Arc<GpuContext>) -> Result<Self, GpuError> {
        let device = &ctx.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some("innscope weight_view.wgsl"),
            source: wgpu::ShaderSource::Wgsl(WEIGHT_VIEW_WGSL.into()),
        });
        let kernel = |entry: &str| Kernel::new(device, &module, entry);
        let (slice_range, colorize, channel_sums) = (
            kernel("slice_range"),
            kernel("colorize"),
            kernel("channel_sums"),
        );
        let buffer = |label: &str, size: u64, usage: wgpu::BufferUsages| {
            device.create_buffer(&wgpu::BufferDescriptor {
                label: Some(label),
                size,
                usage,
                mapped_at_creation: false,
            })
        };
        let params = [0, 1].map(|_| {
            buffer(
                "innscope view params",
                size_of::<SliceParams>() as u64,
                wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            )
        });
        let range = buffer(
            "innscope view range",
            16,
            wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
        );
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Setup(format!("weight view pipelines: {err}")));
        }
        Ok(Self {
            ctx,
            slice_range,
            colorize,
            channel_sums,
            params,
            range,
            texture: None,
        })
    }

    /// The device the views live on.
    #[must_use]
    pub fn context(&self) -> &Arc<GpuContext> {
        &self.ctx
    }

    /// Colour `slice` of parameter `name`'s discrete weights into the view's texture (one
    /// texel per entry; every k-th row or column where the slice is larger than a texture may
    /// be, see [`SliceSpec::fitted`]) on `±max|v|` of the whole slice, and return that
    /// `max|v|`: the only number that comes back. The texture is recreated when its size
    /// changes; `true` in the result says it was (a window must then point its texture id at
    /// [`Self::texture_view`]).
    ///
    /// # Errors
    /// An unknown parameter, a slice outside it, a lost device.
    pub fn render(
        &mut self,
        engine: &GpuEngine,
        name: &str,
        slice: SliceSpec,
        colors: Diverging,
    ) -> Result<(f32, bool), GpuError> {
        let buffer = self.checked(engine, name, &slice)?;
        let max_side = self.ctx.device.limits().max_texture_dimension_2d;
        let shown = slice.fitted(max_side as usize);
        let rgb = |c: [u8; 3]| [f32::from(c[0]), f32::from(c[1]), f32::from(c[2]), 0.0];
        let params = |s: &SliceSpec| -> Result<SliceParams, GpuError> {
            Ok(SliceParams {
                offset: u32_of(s.offset, "offset")?,
                rows: u32_of(s.rows, "rows")?,
                cols: u32_of(s.cols, "columns")?,
                row_stride: u32_of(s.row_stride, "row stride")?,
                col_stride: u32_of(s.col_stride, "column stride")?,
                _pad: [0; 3],
                mid: rgb(colors.mid),
                neg: rgb(colors.negative),
                pos: rgb(colors.positive),
            })
        };
        let (whole, texels) = (params(&slice)?, params(&shown)?);
        let (rows, cols) = (texels.rows, texels.cols);
        let recreated = self.ensure_texture(cols, rows);
        let Some((_, view)) = &self.texture else {
            return Err(GpuError::Invalid("no view texture".into()));
        };
        let device = &self.ctx.device;
        let scope = device.push_error_scope(wgpu::ErrorFilter::Validation);
        for (buffer, p) in self.params.iter().zip([whole, texels]) {
            self.ctx
                .queue
                .write_buffer(buffer, 0, bytemuck::bytes_of(&p));
        }
        let mut encoder = self.ctx.encoder("innscope weight view");
        encoder.clear_buffer(&self.range, 0, None);
        // The range over the whole slice, then the colours of the texels shown.
        dispatch(
            &self.ctx,
            &mut encoder,
            &self.slice_range,
            &[&self.params[0], &buffer, &self.range],
            whole.rows * whole.cols,
        );
        let group = device.create_bind_group(&wgpu::BindGroupDescriptor {
            label: None,
            layout: &self.colorize.layout,
            entries: &[
                wgpu::BindGroupEntry {
                    binding: 0,
                    resource: self.params[1].as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 1,
                    resource: buffer.binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 2,
                    resource: self.range.as_entire_binding(),
                },
                wgpu::BindGroupEntry {
                    binding: 3,
                    resource: wgpu::BindingResource::TextureView(view),
                },
            ],
        });
        {
            let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
            pass.set_pipeline(&self.colorize.pipeline);
            pass.set_bind_group(0, &group, &[]);
            pass.dispatch_workgroups(cols.div_ceil(8), rows.div_ceil(8), 1);
        }
        let bits = self.ctx.read_words(encoder, &self.range, 0, 1)?;
        if let Some(err) = pollster::block_on(scope.pop()) {
            return Err(GpuError::Device(err.to_string()));
        }
        Ok((f32::from_bits(bits[0]), recreated))
    }

    /// The texture of the last [`Self::render`] (a `cols × rows` [`VIEW_FORMAT`] texture).
    #[must_use]
    pub fn texture_view(&self) -> Option<&wgpu::TextureView> {
        self.texture.as_ref().map(|(_, v)| v)
    }

    /// The texels of the last [`Self::render`], rows top to bottom (RGBA bytes), read back:
    /// for tests and image exports, not for drawing.
    ///
    /// # Errors
    /// No view rendered yet, a lost device.
    pub fn read_texture(&self) -> Result<Vec<[u8; 4]>, GpuError> {
        let Some((texture, _)) = &self.texture else {
            return Err(GpuError::Invalid("no view rendered yet".into()));
        };
        let (w, h) = (texture.width(), texture.height());
        let row_bytes = (w * 4).div_ceil(wgpu::COPY_BYTES_PER_ROW_ALIGNMENT)
            * wgpu::COPY_BYTES_PER_ROW_ALIGNMENT;
        let staging = self.ctx.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("innscope view readback"),
            size: u64::from(row_bytes * h),
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.ctx.encoder("innscope view readback");
        encoder.copy_texture_to_buffer(
            texture.as_image_copy(),
            wgpu::TexelCopyBufferInfo {
                buffer: &staging,
                layout: wgpu::TexelCopyBufferLayout {
                    offset: 0,
                    bytes_per_row: Some(row_bytes),
                    rows_per_image: Some(h),
                },
            },
            texture.size(),
        );
        let bytes = self
            .ctx
            .map_read(encoder, &staging, u64::from(row_bytes * h))?;
        let mut out = Vec::with_capacity((w * h) as usize);
        for r in 0..h as usize {
            let row = &bytes[r * row_bytes as usize..][..w as usize * 4];
            out.extend(row.chunks_exact(4).map(|p| [p[0], p[1], p[2], p[3]]));
        }
        Ok(out)
    }

    /// Entry `index` of parameter `name`'s discrete weights (the value under the pointer).
    ///
    /// # Errors
    /// An unknown parameter, an index outside it, a lost device.
    pub fn value_at(&self, engine: &GpuEngine, name: &str, index: usize) -> Result<f32, GpuError> {
        let (buffer, len) = engine.weight_buffer_len(name)?;
        if index >= len {
            return Err(GpuError::Invalid(format!(
                "index {index} outside {name} ({len} values)"
            )));
        }
        let bits = self.ctx.read_words(
            self.ctx.encoder("innscope hovered value"),
            &buffer.buffer,
            buffer.first_word() + index,
            1,
        )?;
        Ok(f32::from_bits(bits[0]))
    }

    /// The first `n` output channels of a 4-D kernel `(C_out, C_in, kh, kw)` summed over input
    /// channels (in ascending order), shape `(n, kh, kw)`; `n` is capped at `C_out`.
    ///
    /// # Errors
    /// An unknown parameter, one that is not 4-D, a lost device.
    pub fn channel_sums(
        &self,
        engine: &GpuEngine,
        name: &str,
        n: usize,
    ) -> Result<Array3<f32>, GpuError> {
        let shape = engine.weight_shape(name)?;
        let &[c_out, c_in, kh, kw] = shape.as_slice() else {
            return Err(GpuError::Invalid(format!("{name} is not a 4-D kernel")));
        };
        let (buffer, _) = engine.weight_buffer_len(name)?;
        let n = n.min(c_out);
        let plane = kh * kw;
        let total = n * plane;
        if total == 0 {
            return Ok(Array3::zeros((n, kh, kw)));
        }
        let device = &self.ctx.device;
        let params = SumParams {
            n_out: u32_of(n, "channels")?,
            cin: u32_of(c_in, "input channels")?,
            plane: u32_of(plane, "kernel plane")?,
            _pad: 0,
        };
        let uniform = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("innscope sums params"),
            size: size_of::<SumParams>() as u64,
            usage: wgpu::BufferUsages::UNIFORM | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        self.ctx
            .queue
            .write_buffer(&uniform, 0, bytemuck::bytes_of(&params));
        let out = device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("innscope sums"),
            size: (total * 4) as u64,
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC,
            mapped_at_creation: false,
        });
        let mut encoder = self.ctx.encoder("innscope channel sums");
        dispatch(
            &self.ctx,
            &mut encoder,
            &self.channel_sums,
            &[&uniform, &buffer, &out],
            u32_of(total, "sums")?,
        );
        let bits = self.ctx.read_words(encoder, &out, 0, total)?;
        let values = bits.into_iter().map(f32::from_bits).collect();
        Array3::from_shape_vec((n, kh, kw), values).map_err(|e| GpuError::Invalid(e.to_string()))
    }

    fn checked(&self, engine: &GpuEngine, name: &str, slice: &SliceSpec) -> Result<Span, GpuError> {
        if !Arc::ptr_eq(engine.context(), &self.ctx) {
            return Err(GpuError::Invalid(
                "the view and the engine are on different devices".into(),
            ));
        }
        let (buffer, len) = engine.weight_buffer_len(name)?;
        match slice.last() {
            Some(last) if last < len => Ok(buffer),
            Some(last) => Err(GpuError::Invalid(format!(
                "slice reaches index {last} of {name}, which has {len} values"
            ))),
            None => Err(GpuError::Invalid("empty slice".into())),
        }
    }

    fn ensure_texture(&mut self, width: u32, height: u32) -> bool {
        if self
            .texture
            .as_ref()
            .is_some_and(|(t, _)| t.width() == width && t.height() == height)
        {
            return false;
        }
        let texture = self.ctx.device.create_texture(&wgpu::TextureDescriptor {
            label: Some("innscope weight view"),
            size: wgpu::Extent3d {
                width,
                height,
                depth_or_array_layers: 1,
            },
            mip_level_count: 1,
            sample_count: 1,
            dimension: wgpu::TextureDimension::D2,
            format: VIEW_FORMAT,
            usage: wgpu::TextureUsages::STORAGE_BINDING
                | wgpu::TextureUsages::TEXTURE_BINDING
                | wgpu::TextureUsages::COPY_SRC,
            view_formats: &[],
        });
        let view = texture.create_view(&wgpu::TextureViewDescriptor::default());
        self.texture = Some((texture, view));
        true
    }
}

#[cfg(test)]
mod tests {
    use super::SliceSpec;
    use ndarray::Array2;

    /// A slice too large for a texture is shown as every k-th row and column: the GPU view's
    /// strided spec picks the entries the window's CPU heatmap picks from the same array.
    #[test]
    fn fitted_slices_pick_what_the_cpu_heatmap_picks() {
        let (rows, cols, max_side) = (5000, 7, 2048);
        // A (rows, cols, 3) tensor sliced at plane 1: entry (r, c) has flat index r·cols·3 + c·3 + 1.
        let spec = SliceSpec {
            offset: 1,
            rows,
            cols,
            row_stride: cols * 3,
            col_stride: 3,
        };
        let values = Array2::from_shape_fn((rows, cols), |(r, c)| spec.index(r, c) as f32);
        let shown = crate::app::heatmap::fitted(values.view(), max_side);
        let fitted = spec.fitted(max_side);
        assert_eq!((fitted.rows, fitted.cols), shown.dim());
        assert!(fitted.rows <= max_side && fitted.rows * 3 >= rows);
        for ((r, c), &v) in shown.indexed_iter() {
            assert_eq!(fitted.index(r, c) as f32, v, "({r}, {c})");
        }
        // A slice that fits is left as it is.
        assert_eq!(spec.fitted(rows), spec);
    }
}
