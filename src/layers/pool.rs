//! Pooling: `avg_pool2d` and `max_pool2d` over windows of NCHW images (no dilation; padded
//! values never win a max, and count in an average only with `count_include_pad`). Channels
//! pass through. GPU: `shaders/pool2d.wgsl`, one entry point for both.

use bytemuck::{Pod, Zeroable};
use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use super::conv2d::{PaddingMode, pad2d};
use super::{CpuCx, GpuCx, GpuValue, Kept, L1Pruning, Layer, ShapeCx, Shader};
use crate::engine::EngineError;
use crate::gpu::GpuError;
use crate::gpu::context::u32_of;
use crate::model::{Model, ModelError};

fn yes() -> bool {
    true
}

/// Average pooling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AvgPool2d {
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Zero padding `[ph, pw]`. Default `[0, 0]`.
    #[serde(default = "super::zeros2")]
    pub padding: [usize; 2],
    /// Whether padded zeros count in the average. Default true (PyTorch's default).
    #[serde(default = "yes")]
    pub count_include_pad: bool,
}

/// Max pooling.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaxPool2d {
    /// Window `[kh, kw]`.
    pub kernel: [usize; 2],
    /// Stride `[sh, sw]`.
    pub stride: [usize; 2],
    /// Padding `[ph, pw]` (padded values never win). Default `[0, 0]`.
    #[serde(default = "super::zeros2")]
    pub padding: [usize; 2],
}

/// The room's kernels.
pub(crate) const SHADER: Shader = super::shader!("pool2d.wgsl");

/// `PoolParams` of `shaders/pool2d.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct PoolParams {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    is_max: u32,
    count_include_pad: u32,
    _pad: [u32; 2],
}

const _: () = assert!(size_of::<PoolParams>() == 64);

/// What both kinds share: the window.
struct Window {
    kernel: [usize; 2],
    stride: [usize; 2],
    padding: [usize; 2],
}

impl Window {
    fn check(&self) -> Result<(), String> {
        if self.stride.contains(&0) {
            return Err("pooling stride must be positive".into());
        }
        Ok(())
    }

    fn output_shape(&self, input: &[usize]) -> Result<Vec<usize>, String> {
        let [c, h, w] = super::image_shape(input)?;
        let Self {
            kernel,
            stride,
            padding,
        } = self;
        if padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1] {
            return Err("padding must be at most half the window".into());
        }
        let oh = super::window_out(h, kernel[0], stride[0], padding[0], 1);
        let ow = super::window_out(w, kernel[1], stride[1], padding[1], 1);
        match (oh, ow) {
            (Some(oh), Some(ow)) => Ok(vec![input[0], c, oh, ow]),
            _ => Err(format!("window {kernel:?} does not fit a {h}x{w} input")),
        }
    }

    fn gpu(
        &self,
        cx: &mut GpuCx<'_>,
        is_max: bool,
        count_include_pad: bool,
        inputs: &[GpuValue],
        out: &GpuValue,
    ) -> Result<(), GpuError> {
        let (xs, os) = (&inputs[0].shape, &out.shape);
        let p = PoolParams {
            n: u32_of(xs[0], "n")?,
            c: u32_of(xs[1], "c")?,
            h: u32_of(xs[2], "h")?,
            w: u32_of(xs[3], "w")?,
            oh: u32_of(os[2], "oh")?,
            ow: u32_of(os[3], "ow")?,
            kh: u32_of(self.kernel[0], "kh")?,
            kw: u32_of(self.kernel[1], "kw")?,
            sh: u32_of(self.stride[0], "sh")?,
            sw: u32_of(self.stride[1], "sw")?,
            ph: u32_of(self.padding[0], "ph")?,
            pw: u32_of(self.padding[1], "pw")?,
            is_max: u32::from(is_max),
            count_include_pad: u32::from(count_include_pad),
            _pad: [0; 2],
        };
        let u = cx.uniform(&p);
        let kernel = cx.kernel(&SHADER, "pool2d")?;
        cx.dispatch(&kernel, &[&u, &inputs[0].buffer, &out.buffer], out.elements()?);
        Ok(())
    }
}

impl AvgPool2d {
    fn window(&self) -> Window {
        Window {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
        }
    }
}

impl MaxPool2d {
    fn window(&self) -> Window {
        Window {
            kernel: self.kernel,
            stride: self.stride,
            padding: self.padding,
        }
    }
}

impl Layer for AvgPool2d {
    fn check(&self, _model: &Model) -> Result<(), String> {
        self.window().check()
    }

    fn output_shape(&self, _cx: &ShapeCx<'_>, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        self.window().output_shape(inputs[0])
    }

    fn cpu(&self, _cx: &CpuCx<'_>, inputs: &[&Tensor]) -> Result<Tensor, EngineError> {
        let x = inputs[0];
        let (k, s) = ((self.kernel[0], self.kernel[1]), (self.stride[0], self.stride[1]));
        let sum = pad2d(x, self.padding, PaddingMode::Zeros)?.avg_pool2d_with_stride(k, s)?;
        if self.count_include_pad || self.padding == [0, 0] {
            return Ok(sum);
        }
        // The share of each window inside the image, to divide by instead of the window.
        let ones = Tensor::ones((1, 1, x.dim(2)?, x.dim(3)?), DType::F32, &Device::Cpu)?;
        let frac = pad2d(&ones, self.padding, PaddingMode::Zeros)?.avg_pool2d_with_stride(k, s)?;
        Ok(sum.broadcast_div(&frac)?)
    }

    fn gpu(
        &self,
        cx: &mut GpuCx<'_>,
        inputs: &[GpuValue],
        out: &GpuValue,
    ) -> Result<(), GpuError> {
        self.window()
            .gpu(cx, false, self.count_include_pad, inputs, out)
    }

    fn l1_prune(&self, _cx: &mut L1Pruning<'_>, input: Kept) -> Result<Kept, ModelError> {
        Ok(input)
    }
}

impl Layer for MaxPool2d {
    fn check(&self, _model: &Model) -> Result<(), String> {
        self.window().check()
    }

    fn output_shape(&self, _cx: &ShapeCx<'_>, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        self.window().output_shape(inputs[0])
    }

    fn cpu(&self, _cx: &CpuCx<'_>, inputs: &[&Tensor]) -> Result<Tensor, EngineError> {
        let padded = pad_value(inputs[0], self.padding, f32::NEG_INFINITY)?;
        Ok(padded.max_pool2d_with_stride(
            (self.kernel[0], self.kernel[1]),
            (self.stride[0], self.stride[1]),
        )?)
    }

    fn gpu(
        &self,
        cx: &mut GpuCx<'_>,
        inputs: &[GpuValue],
        out: &GpuValue,
    ) -> Result<(), GpuError> {
        self.window().gpu(cx, true, true, inputs, out)
    }

    fn l1_prune(&self, _cx: &mut L1Pruning<'_>, input: Kept) -> Result<Kept, ModelError> {
        Ok(input)
    }
}

/// Pad the spatial axes with a constant.
fn pad_value(x: &Tensor, pad: [usize; 2], value: f32) -> candle_core::Result<Tensor> {
    if pad == [0, 0] {
        return Ok(x.clone());
    }
    let (n, c, h, w) = x.dims4()?;
    let rows = Tensor::full(value, (n, c, pad[0], w), x.device())?;
    let x = Tensor::cat(&[&rows, x, &rows], 2)?;
    let cols = Tensor::full(value, (n, c, h + 2 * pad[0], pad[1]), x.device())?;
    Tensor::cat(&[&cols, &x, &cols], 3)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::pad_value;

    /// Max pooling with padding 1 over all-negative values: the padding (−∞) never wins, so
    /// the corner window's maximum is the largest of its four real pixels.
    #[test]
    fn padded_max_never_picks_the_padding() {
        let x: Vec<f32> = (1..=9u8).map(|v| -f32::from(v)).collect();
        let x = Tensor::from_vec(x, (1, 1, 3, 3), &Device::Cpu).expect("x");
        let y = pad_value(&x, [1, 1], f32::NEG_INFINITY)
            .and_then(|p| p.max_pool2d_with_stride((3, 3), (2, 2)))
            .and_then(|t| t.flatten_all())
            .and_then(|t| t.to_vec1::<f32>())
            .expect("pool");
        // Windows at (−1..1, −1..1): pixels -1 -2 -4 -5 → -1; (−1..1, 1..3): -2 -3 -5 -6 → -2.
        assert_eq!(y, [-1.0, -2.0, -4.0, -5.0]);
    }
}
