//! `batch_norm2d`: inference batch norm, `(x - mean) / sqrt(var + eps) · weight + bias` per
//! channel; its per-channel parameters follow the channels' group. GPU:
//! `shaders/batch_norm.wgsl`, one invocation per value.

use bytemuck::{Pod, Zeroable};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::{AxisRole, CpuCx, GpuCx, GpuValue, Kept, L1Pruning, Layer, ShapeCx, Shader};
use crate::engine::EngineError;
use crate::gpu::GpuError;
use crate::gpu::context::u32_of;
use crate::model::ModelError;

fn bn_eps() -> f32 {
    1e-5
}

/// Inference BatchNorm over `(N, C, H, W)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BatchNorm2d {
    /// Scale parameter `(C)`.
    #[serde(default)]
    pub weight: Option<String>,
    /// Shift parameter `(C)`.
    #[serde(default)]
    pub bias: Option<String>,
    /// Running mean parameter `(C)`.
    pub running_mean: String,
    /// Running variance parameter `(C)`.
    pub running_var: String,
    /// Added to the variance. Default 1e-5.
    #[serde(default = "bn_eps")]
    pub eps: f32,
}

/// The room's kernels.
pub(crate) const SHADER: Shader = super::shader!("batch_norm.wgsl");

/// `BnParams` of `shaders/batch_norm.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct BnParams {
    n: u32,
    c: u32,
    hw: u32,
    eps: f32,
    has_weight: u32,
    has_bias: u32,
    _pad: [u32; 2],
}

const _: () = assert!(size_of::<BnParams>() == 32);

impl BatchNorm2d {
    /// Every parameter, the optional ones where present.
    fn all_params(&self) -> impl Iterator<Item = &str> {
        self.weight
            .as_deref()
            .into_iter()
            .chain(self.bias.as_deref())
            .chain([self.running_mean.as_str(), self.running_var.as_str()])
    }
}

impl Layer for BatchNorm2d {
    fn param_axes(&self) -> Vec<(&str, Vec<AxisRole>)> {
        self.all_params()
            .map(|p| (p, vec![AxisRole::Channel]))
            .collect()
    }

    fn output_shape(&self, cx: &ShapeCx<'_>, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [c, _, _] = super::image_shape(inputs[0])?;
        for p in self.all_params() {
            let s = cx.param_shape(p)?;
            if s != [c] {
                return Err(format!("{p} is {s:?}, expected [{c}]"));
            }
        }
        Ok(inputs[0].to_vec())
    }

    fn cpu(&self, cx: &CpuCx<'_>, inputs: &[&Tensor]) -> Result<Tensor, EngineError> {
        let per_channel = |t: &Tensor| t.reshape((1, (), 1, 1));
        let mean = per_channel(&cx.param(&self.running_mean)?)?;
        let var = cx.param(&self.running_var)?;
        let inv = per_channel(&(var + f64::from(self.eps))?.sqrt()?.recip()?)?;
        let mut y = inputs[0].broadcast_sub(&mean)?.broadcast_mul(&inv)?;
        if let Some(w) = &self.weight {
            y = y.broadcast_mul(&per_channel(&cx.param(w)?)?)?;
        }
        if let Some(b) = &self.bias {
            y = y.broadcast_add(&per_channel(&cx.param(b)?)?)?;
        }
        Ok(y)
    }

    fn gpu(
        &self,
        cx: &mut GpuCx<'_>,
        inputs: &[GpuValue],
        out: &GpuValue,
    ) -> Result<(), GpuError> {
        let xs = &inputs[0].shape;
        let p = BnParams {
            n: u32_of(xs[0], "n")?,
            c: u32_of(xs[1], "c")?,
            hw: u32_of(xs[2..].iter().product(), "hw")?,
            eps: self.eps,
            has_weight: u32::from(self.weight.is_some()),
            has_bias: u32::from(self.bias.is_some()),
            _pad: [0; 2],
        };
        let mean = cx.weight(&self.running_mean)?;
        let var = cx.weight(&self.running_var)?;
        let w = cx.optional_weight(self.weight.as_deref())?;
        let b = cx.optional_weight(self.bias.as_deref())?;
        let u = cx.uniform(&p);
        let kernel = cx.kernel(&SHADER, "batch_norm")?;
        let x = &inputs[0].buffer;
        cx.dispatch(&kernel, &[&u, x, &mean, &var, &w, &b, &out.buffer], out.elements()?);
        Ok(())
    }

    fn l1_prune(&self, cx: &mut L1Pruning<'_>, input: Kept) -> Result<Kept, ModelError> {
        if let Some(idx) = &input {
            for name in self.all_params() {
                cx.select(name, 0, idx)?;
            }
        }
        Ok(input)
    }
}
