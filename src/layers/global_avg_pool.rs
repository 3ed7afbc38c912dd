//! `global_avg_pool`: the mean over all pixels, `(N, C, H, W)` → `(N, C)`: the
//! resolution-independent head. GPU: `shaders/global_avg_pool.wgsl`, one invocation per
//! (image, channel), summing in pixel order.

use bytemuck::{Pod, Zeroable};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::{CpuCx, GpuCx, GpuValue, Kept, L1Pruning, Layer, ShapeCx, Shader};
use crate::engine::EngineError;
use crate::gpu::GpuError;
use crate::gpu::context::u32_of;
use crate::model::ModelError;

/// Mean over all pixels.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GlobalAvgPool;

/// The room's kernels.
pub(crate) const SHADER: Shader = super::shader!("global_avg_pool.wgsl");

/// `GapParams` of `shaders/global_avg_pool.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct GapParams {
    n: u32,
    c: u32,
    hw: u32,
    _pad: u32,
}

const _: () = assert!(size_of::<GapParams>() == 16);

impl Layer for GlobalAvgPool {
    fn output_shape(&self, _cx: &ShapeCx<'_>, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [c, _, _] = super::image_shape(inputs[0])?;
        Ok(vec![inputs[0][0], c])
    }

    fn cpu(&self, _cx: &CpuCx<'_>, inputs: &[&Tensor]) -> Result<Tensor, EngineError> {
        Ok(inputs[0].mean((2, 3))?)
    }

    fn gpu(
        &self,
        cx: &mut GpuCx<'_>,
        inputs: &[GpuValue],
        out: &GpuValue,
    ) -> Result<(), GpuError> {
        let xs = &inputs[0].shape;
        let p = GapParams {
            n: u32_of(xs[0], "n")?,
            c: u32_of(xs[1], "c")?,
            hw: u32_of(xs[2] * xs[3], "hw")?,
            _pad: 0,
        };
        let u = cx.uniform(&p);
        let kernel = cx.kernel(&SHADER, "global_avg_pool")?;
        cx.dispatch(&kernel, &[&u, &inputs[0].buffer, &out.buffer], out.elements()?);
        Ok(())
    }

    fn l1_prune(&self, _cx: &mut L1Pruning<'_>, input: Kept) -> Result<Kept, ModelError> {
        Ok(input)
    }
}
