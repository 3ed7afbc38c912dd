//! `softmax` over the last axis, shifted by the row maximum. GPU: `shaders/softmax.wgsl`, one
//! invocation per row.

use bytemuck::{Pod, Zeroable};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::{CpuCx, GpuCx, GpuValue, Kept, L1Pruning, Layer, ShapeCx, Shader};
use crate::engine::EngineError;
use crate::gpu::GpuError;
use crate::gpu::context::u32_of;
use crate::model::ModelError;

/// Softmax over the last axis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Softmax;

/// The room's kernels.
pub(crate) const SHADER: Shader = super::shader!("softmax.wgsl");

/// `SoftmaxParams` of `shaders/softmax.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct SoftmaxParams {
    rows: u32,
    cols: u32,
    _pad: [u32; 2],
}

const _: () = assert!(size_of::<SoftmaxParams>() == 16);

impl Layer for Softmax {
    fn output_shape(&self, _cx: &ShapeCx<'_>, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        Ok(inputs[0].to_vec())
    }

    fn cpu(&self, _cx: &CpuCx<'_>, inputs: &[&Tensor]) -> Result<Tensor, EngineError> {
        Ok(softmax_last(inputs[0])?)
    }

    fn gpu(
        &self,
        cx: &mut GpuCx<'_>,
        inputs: &[GpuValue],
        out: &GpuValue,
    ) -> Result<(), GpuError> {
        let cols = inputs[0].shape.last().copied().unwrap_or(1).max(1);
        let rows = u32_of(inputs[0].shape.iter().product::<usize>() / cols, "rows")?;
        let p = SoftmaxParams {
            rows,
            cols: u32_of(cols, "cols")?,
            _pad: [0; 2],
        };
        let u = cx.uniform(&p);
        let kernel = cx.kernel(&SHADER, "softmax")?;
        cx.dispatch(&kernel, &[&u, &inputs[0].buffer, &out.buffer], rows);
        Ok(())
    }

    fn l1_prune(&self, _cx: &mut L1Pruning<'_>, input: Kept) -> Result<Kept, ModelError> {
        if input.is_some() {
            return Err(ModelError::invalid(
                "a pruned layer feeds a softmax; only pooled heads are supported",
            ));
        }
        Ok(None)
    }
}

/// Softmax over the last axis, shifted by the maximum for stability.
fn softmax_last(x: &Tensor) -> candle_core::Result<Tensor> {
    let last = x.rank() - 1;
    let shifted = x.broadcast_sub(&x.max_keepdim(last)?)?;
    let e = shifted.exp()?;
    e.broadcast_div(&e.sum_keepdim(last)?)
}

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    /// Rows [0, ln 3] and [1000, 1000]: probabilities 1/4, 3/4 and 1/2, 1/2 (the shift keeps
    /// exp from overflowing at 1000).
    #[test]
    fn rows_sum_to_one_and_large_values_do_not_overflow() {
        let x = Tensor::new(&[[0.0_f32, 3.0_f32.ln()], [1000.0, 1000.0]], &Device::Cpu).expect("x");
        let p: Vec<Vec<f32>> = super::softmax_last(&x).and_then(|t| t.to_vec2()).expect("softmax");
        for (got, want) in p.concat().iter().zip([0.25, 0.75, 0.5, 0.5]) {
            assert!((got - want).abs() < 1e-6, "{got} vs {want}");
        }
    }
}
