//! `linear`: `x · Wᵀ + b` on features `(N, F)`; continuous in both channel axes for an INN's
//! fully connected layers. GPU: `shaders/linear.wgsl`, one invocation per output value.

use bytemuck::{Pod, Zeroable};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::{AxisRole, CpuCx, GpuCx, GpuValue, Kept, L1Pruning, Layer, ShapeCx, Shader};
use crate::engine::EngineError;
use crate::gpu::GpuError;
use crate::gpu::context::u32_of;
use crate::model::ModelError;

/// A fully connected layer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Linear {
    /// Weight parameter `(F_out, F_in)`.
    pub weight: String,
    /// Bias parameter `(F_out)`.
    #[serde(default)]
    pub bias: Option<String>,
}

/// The room's kernels.
pub(crate) const SHADER: Shader = super::shader!("linear.wgsl");

/// `LinearParams` of `shaders/linear.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct LinearParams {
    n: u32,
    fin: u32,
    fout: u32,
    has_bias: u32,
}

const _: () = assert!(size_of::<LinearParams>() == 16);

impl Layer for Linear {
    fn param_axes(&self) -> Vec<(&str, Vec<AxisRole>)> {
        use AxisRole::Channel;
        std::iter::once((self.weight.as_str(), vec![Channel, Channel]))
            .chain(self.bias.as_deref().map(|b| (b, vec![Channel])))
            .collect()
    }

    fn output_shape(&self, cx: &ShapeCx<'_>, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let f = super::feature_shape(inputs[0])?;
        let weight = &self.weight;
        let ws = cx.param_shape(weight)?;
        if ws.len() != 2 || ws[1] != f {
            return Err(format!("{f} input features but weight {weight} is {ws:?}"));
        }
        if let Some(b) = &self.bias {
            let bs = cx.param_shape(b)?;
            if bs != [ws[0]] {
                return Err(format!("bias {b} {bs:?} does not match {} outputs", ws[0]));
            }
        }
        Ok(vec![inputs[0][0], ws[0]])
    }

    fn cpu(&self, cx: &CpuCx<'_>, inputs: &[&Tensor]) -> Result<Tensor, EngineError> {
        let y = inputs[0].matmul(&cx.param(&self.weight)?.t()?)?;
        Ok(match &self.bias {
            Some(b) => y.broadcast_add(&cx.param(b)?)?,
            None => y,
        })
    }

    fn gpu(
        &self,
        cx: &mut GpuCx<'_>,
        inputs: &[GpuValue],
        out: &GpuValue,
    ) -> Result<(), GpuError> {
        let (x, xs) = (&inputs[0].buffer, &inputs[0].shape);
        let p = LinearParams {
            n: u32_of(xs[0], "n")?,
            fin: u32_of(xs[1], "fin")?,
            fout: u32_of(out.shape[1], "fout")?,
            has_bias: u32::from(self.bias.is_some()),
        };
        let w = cx.weight(&self.weight)?;
        let b = cx.optional_weight(self.bias.as_deref())?;
        let u = cx.uniform(&p);
        let kernel = cx.kernel(&SHADER, "linear")?;
        cx.dispatch(&kernel, &[&u, x, &w, &b, &out.buffer], out.elements()?);
        Ok(())
    }

    /// Hidden fully connected layers are narrowed (their rows are filters); the classifier is
    /// not.
    fn l1_filters(&self, produces_output: bool) -> Option<&str> {
        (!produces_output).then_some(self.weight.as_str())
    }

    fn l1_prune(&self, cx: &mut L1Pruning<'_>, input: Kept) -> Result<Kept, ModelError> {
        if let Some(idx) = &input {
            cx.select(&self.weight, 1, idx)?;
        }
        cx.keep_strongest(&self.weight, self.bias.as_deref())
    }
}
