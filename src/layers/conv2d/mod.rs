//! `conv2d`: 2-D convolution, the INN's integral operator over channels and, for continuous
//! spatial kernels, over space.
//!
//! A weight `(C_out, C_in / groups, kh, kw)` may be continuous along both channel axes, and
//! along both spatial axes; then it is resampled at the input resolution (see
//! [`crate::inn::spatial`]) and padded "same" (`(k - 1) / 2 · dilation`), which needs stride 1.
//! Inference runs candle's convolution; training takes [`im2col::conv2d`], whose backward pass
//! is matrix products. GPU: `shaders/conv2d.wgsl`, one invocation per output value.

pub mod im2col;

use bytemuck::{Pod, Zeroable};
use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{AxisRole, CpuCx, GpuCx, GpuValue, Kept, L1Pruning, Layer, ShapeCx, Shader};
use crate::engine::EngineError;
use crate::gpu::GpuError;
use crate::gpu::context::u32_of;
use crate::inn::Resolved;
use crate::model::{Model, ModelError};

/// How a convolution pads its input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaddingMode {
    /// Pad with zeros. Default.
    #[default]
    Zeros,
    /// Repeat the border pixel (PyTorch `replicate`).
    Replicate,
}

fn one() -> usize {
    1
}

/// 2-D convolution.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Conv2d {
    /// Weight parameter `(C_out, C_in / groups, kh, kw)`.
    pub weight: String,
    /// Bias parameter `(C_out)`.
    #[serde(default)]
    pub bias: Option<String>,
    /// Stride `[sh, sw]`. Default `[1, 1]`.
    #[serde(default = "super::ones2")]
    pub stride: [usize; 2],
    /// Padding `[ph, pw]` at the native resolution. Default `[0, 0]`.
    #[serde(default = "super::zeros2")]
    pub padding: [usize; 2],
    /// Dilation `[dh, dw]`. Default `[1, 1]`.
    #[serde(default = "super::ones2")]
    pub dilation: [usize; 2],
    /// Channel groups. Default 1.
    #[serde(default = "one")]
    pub groups: usize,
    /// How the input is padded. Default zeros.
    #[serde(default)]
    pub padding_mode: PaddingMode,
}

impl Conv2d {
    /// A plain convolution of `weight` (stride 1, no padding, one group), for builders.
    #[must_use]
    pub fn new(weight: impl Into<String>, bias: Option<String>) -> Self {
        Self {
            weight: weight.into(),
            bias,
            stride: [1, 1],
            padding: [0, 0],
            dilation: [1, 1],
            groups: 1,
            padding_mode: PaddingMode::Zeros,
        }
    }

    /// The padding under `plan`: "same" for a continuous spatial kernel (its size follows the
    /// resolution), the stored padding otherwise.
    #[must_use]
    pub fn padding_at(&self, model: &Model, plan: &Resolved) -> [usize; 2] {
        match model.param(&self.weight) {
            Some(p) if p.layout.is_spatially_continuous() => {
                match p.layout.discrete_shape(plan).unwrap_or_default()[..] {
                    [_, _, kh, kw] => [
                        (kh - 1) / 2 * self.dilation[0],
                        (kw - 1) / 2 * self.dilation[1],
                    ],
                    _ => self.padding,
                }
            }
            _ => self.padding,
        }
    }

    /// Whether the training path (im2col) applies: stride 1, no dilation or groups, zeros.
    fn is_plain(&self) -> bool {
        self.stride == [1, 1]
            && self.dilation == [1, 1]
            && self.groups == 1
            && self.padding_mode == PaddingMode::Zeros
    }
}

/// The room's kernels.
pub(crate) const SHADER: Shader = super::shader!("conv2d.wgsl");

/// `ConvParams` of `shaders/conv2d.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct ConvParams {
    n: u32,
    cin: u32,
    h: u32,
    w: u32,
    cout: u32,
    oh: u32,
    ow: u32,
    kh: u32,
    kw: u32,
    sh: u32,
    sw: u32,
    ph: u32,
    pw: u32,
    dh: u32,
    dw: u32,
    groups: u32,
    replicate: u32,
    has_bias: u32,
    _pad: [u32; 2],
}

const _: () = assert!(size_of::<ConvParams>() == 80);

impl Layer for Conv2d {
    fn param_axes(&self) -> Vec<(&str, Vec<AxisRole>)> {
        use AxisRole::{Channel, Spatial};
        std::iter::once((self.weight.as_str(), vec![Channel, Channel, Spatial, Spatial]))
            .chain(self.bias.as_deref().map(|b| (b, vec![Channel])))
            .collect()
    }

    fn check(&self, model: &Model) -> Result<(), String> {
        if self.stride.contains(&0) || self.dilation.contains(&0) {
            return Err("stride and dilation must be positive".into());
        }
        let layout = model.param(&self.weight).map(|p| &p.layout);
        if let Some(layout) = layout.filter(|l| l.is_spatially_continuous()) {
            let same = [
                (layout.shape[2] - 1) / 2 * self.dilation[0],
                (layout.shape[3] - 1) / 2 * self.dilation[1],
            ];
            if self.stride != [1, 1] || self.padding != same {
                return Err(format!(
                    "a kernel with continuous spatial axes needs stride 1 and \"same\" padding {same:?}"
                ));
            }
        }
        Ok(())
    }

    fn output_shape(&self, cx: &ShapeCx<'_>, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [c, h, w] = super::image_shape(inputs[0])?;
        let weight = &self.weight;
        let ws = cx.param_shape(weight)?;
        if ws.len() != 4 {
            return Err(format!("weight {weight} must be 4-D, is {ws:?}"));
        }
        let groups = self.groups;
        if groups == 0 || c != ws[1] * groups || ws[0] % groups != 0 {
            return Err(format!(
                "input has {c} channels but weight {weight} {ws:?} with {groups} groups expects {}",
                ws[1] * groups
            ));
        }
        if let Some(b) = &self.bias {
            let bs = cx.param_shape(b)?;
            if bs != [ws[0]] {
                return Err(format!(
                    "bias {b} {bs:?} does not match {} output channels",
                    ws[0]
                ));
            }
        }
        let pad = self.padding_at(cx.model, cx.plan);
        let misfit = || format!("kernel {}x{} does not fit a {h}x{w} input", ws[2], ws[3]);
        let oh = super::window_out(h, ws[2], self.stride[0], pad[0], self.dilation[0])
            .ok_or_else(misfit)?;
        let ow = super::window_out(w, ws[3], self.stride[1], pad[1], self.dilation[1])
            .ok_or_else(misfit)?;
        Ok(vec![inputs[0][0], ws[0], oh, ow])
    }

    fn cpu(&self, cx: &CpuCx<'_>, inputs: &[&Tensor]) -> Result<Tensor, EngineError> {
        let w = cx.param(&self.weight)?;
        let pad = self.padding_at(cx.model, cx.plan);
        let y = if cx.training && self.is_plain() {
            im2col::conv2d(inputs[0], &w, pad)?
        } else {
            let x = pad2d(inputs[0], pad, self.padding_mode)?;
            conv_padded(&x, &w, self.stride, self.dilation, self.groups)?
        };
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(&cx.param(b)?.reshape((1, (), 1, 1))?)?,
            None => y,
        })
    }

    fn gpu(
        &self,
        cx: &mut GpuCx<'_>,
        inputs: &[GpuValue],
        out: &GpuValue,
    ) -> Result<(), GpuError> {
        let (x, xs, os) = (&inputs[0].buffer, &inputs[0].shape, &out.shape);
        let ws = cx.weight_shape(&self.weight)?;
        let pad = self.padding_at(cx.model, cx.plan);
        let p = ConvParams {
            n: u32_of(xs[0], "n")?,
            cin: u32_of(xs[1], "cin")?,
            h: u32_of(xs[2], "h")?,
            w: u32_of(xs[3], "w")?,
            cout: u32_of(os[1], "cout")?,
            oh: u32_of(os[2], "oh")?,
            ow: u32_of(os[3], "ow")?,
            kh: u32_of(ws[2], "kh")?,
            kw: u32_of(ws[3], "kw")?,
            sh: u32_of(self.stride[0], "sh")?,
            sw: u32_of(self.stride[1], "sw")?,
            ph: u32_of(pad[0], "ph")?,
            pw: u32_of(pad[1], "pw")?,
            dh: u32_of(self.dilation[0], "dh")?,
            dw: u32_of(self.dilation[1], "dw")?,
            groups: u32_of(self.groups, "groups")?,
            replicate: u32::from(self.padding_mode == PaddingMode::Replicate),
            has_bias: u32::from(self.bias.is_some()),
            _pad: [0; 2],
        };
        let w = cx.weight(&self.weight)?;
        let b = cx.optional_weight(self.bias.as_deref())?;
        let u = cx.uniform(&p);
        let kernel = cx.kernel(&SHADER, "conv2d")?;
        cx.dispatch(&kernel, &[&u, x, &w, &b, &out.buffer], out.elements()?);
        Ok(())
    }

    fn l1_filters(&self, _produces_output: bool) -> Option<&str> {
        Some(&self.weight)
    }

    fn l1_prune(&self, cx: &mut L1Pruning<'_>, input: Kept) -> Result<Kept, ModelError> {
        if self.groups != 1 {
            return Err(ModelError::invalid(format!(
                "{}: grouped convolutions are not pruned",
                self.weight
            )));
        }
        if let Some(idx) = &input {
            cx.select(&self.weight, 1, idx)?;
        }
        cx.keep_strongest(&self.weight, self.bias.as_deref())
    }
}

/// Pad the spatial axes of `(N, C, H, W)`.
pub(crate) fn pad2d(x: &Tensor, pad: [usize; 2], mode: PaddingMode) -> candle_core::Result<Tensor> {
    if pad == [0, 0] {
        return Ok(x.clone());
    }
    match mode {
        PaddingMode::Zeros => x
            .pad_with_zeros(2, pad[0], pad[0])?
            .pad_with_zeros(3, pad[1], pad[1]),
        PaddingMode::Replicate => x
            .pad_with_same(2, pad[0], pad[0])?
            .pad_with_same(3, pad[1], pad[1]),
    }
}

/// Convolution of an already padded input; unequal strides run at stride 1 and subsample.
fn conv_padded(
    x: &Tensor,
    w: &Tensor,
    stride: [usize; 2],
    dilation: [usize; 2],
    groups: usize,
) -> Result<Tensor, EngineError> {
    if dilation[0] != dilation[1] {
        return Err(EngineError::Invalid(format!(
            "unequal dilations {dilation:?} are not supported"
        )));
    }
    if stride[0] == stride[1] {
        return Ok(x.conv2d(w, 0, stride[0], dilation[0], groups)?);
    }
    let full = x.conv2d(w, 0, 1, dilation[0], groups)?;
    let pick = |len: usize, s: usize| -> candle_core::Result<Tensor> {
        let idx: Vec<u32> = (0..len)
            .step_by(s)
            .map(|i| u32::try_from(i).unwrap_or(u32::MAX))
            .collect();
        Tensor::new(idx.as_slice(), &Device::Cpu)
    };
    let (_, _, h, wd) = full.dims4()?;
    let full = full.index_select(&pick(h, stride[0])?, 2)?;
    Ok(full.index_select(&pick(wd, stride[1])?, 3)?)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    use super::{PaddingMode, conv_padded, pad2d};

    /// A 3x3 kernel of ones over a 4x4 ramp with zero padding 1: each output is the sum of
    /// the input's 3x3 neighbourhood, worked out by hand at the corners and the centre.
    #[test]
    fn box_kernel_sums_each_neighbourhood() {
        let x: Vec<f32> = (0..16u8).map(f32::from).collect();
        let x = Tensor::from_vec(x, (1, 1, 4, 4), &Device::Cpu).expect("x");
        let w = Tensor::ones((1, 1, 3, 3), candle_core::DType::F32, &Device::Cpu).expect("w");
        let y = conv_padded(&pad2d(&x, [1, 1], PaddingMode::Zeros).expect("pad"), &w, [1, 1], [1, 1], 1)
            .expect("conv");
        let y: Vec<f32> = y.flatten_all().and_then(|t| t.to_vec1()).expect("values");
        // Corner (0,0): 0+1+4+5 = 10. Interior (1,1): 0+1+2+4+5+6+8+9+10 = 45.
        // Corner (3,3): 10+11+14+15 = 50.
        assert_eq!((y[0], y[5], y[15]), (10.0, 45.0, 50.0));
    }

    /// Replicate padding repeats the border: a 1x3 kernel [1, 0, 0] shifted over the row
    /// [1, 2, 3] reads the left neighbour, the first pixel's being itself.
    #[test]
    fn replicate_padding_repeats_the_border() {
        let x = Tensor::from_vec(vec![1.0_f32, 2.0, 3.0], (1, 1, 1, 3), &Device::Cpu).expect("x");
        let w = Tensor::from_vec(vec![1.0_f32, 0.0, 0.0], (1, 1, 1, 3), &Device::Cpu).expect("w");
        let y = conv_padded(&pad2d(&x, [0, 1], PaddingMode::Replicate).expect("pad"), &w, [1, 1], [1, 1], 1)
            .expect("conv");
        let y: Vec<f32> = y.flatten_all().and_then(|t| t.to_vec1()).expect("values");
        assert_eq!(y, [1.0, 1.0, 2.0]);
    }

    /// Unequal strides subsample the stride-1 result: rows every 2, columns every 1.
    #[test]
    fn unequal_strides_subsample() {
        let x: Vec<f32> = (0..12u8).map(f32::from).collect();
        let x = Tensor::from_vec(x, (1, 1, 4, 3), &Device::Cpu).expect("x");
        let w = Tensor::ones((1, 1, 1, 1), candle_core::DType::F32, &Device::Cpu).expect("w");
        let y = conv_padded(&x, &w, [2, 1], [1, 1], 1).expect("conv");
        assert_eq!(y.dims(), [1, 1, 2, 3]);
        let y: Vec<f32> = y.flatten_all().and_then(|t| t.to_vec1()).expect("values");
        assert_eq!(y, [0.0, 1.0, 2.0, 6.0, 7.0, 8.0]);
    }
}
