//! `select`: `x[:, :, h, w]`, one pixel of every channel, `(N, C, H, W)` → `(N, C)` (the head
//! of TorchIntegral's example network). GPU: `shaders/select.wgsl`.

use bytemuck::{Pod, Zeroable};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::{CpuCx, GpuCx, GpuValue, Kept, L1Pruning, Layer, ShapeCx, Shader};
use crate::engine::EngineError;
use crate::gpu::GpuError;
use crate::gpu::context::u32_of;
use crate::model::ModelError;

/// One pixel of every channel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Select {
    /// Row.
    pub h: usize,
    /// Column.
    pub w: usize,
}

/// The room's kernels.
pub(crate) const SHADER: Shader = super::shader!("select.wgsl");

/// `SelectParams` of `shaders/select.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct SelectParams {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    y: u32,
    x: u32,
    _pad: [u32; 2],
}

const _: () = assert!(size_of::<SelectParams>() == 32);

impl Layer for Select {
    fn output_shape(&self, _cx: &ShapeCx<'_>, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [c, ih, iw] = super::image_shape(inputs[0])?;
        let Self { h, w } = *self;
        if h >= ih || w >= iw {
            return Err(format!("pixel ({h}, {w}) is outside a {ih}x{iw} map"));
        }
        Ok(vec![inputs[0][0], c])
    }

    fn cpu(&self, _cx: &CpuCx<'_>, inputs: &[&Tensor]) -> Result<Tensor, EngineError> {
        Ok(inputs[0]
            .narrow(2, self.h, 1)?
            .narrow(3, self.w, 1)?
            .flatten_from(1)?)
    }

    fn gpu(
        &self,
        cx: &mut GpuCx<'_>,
        inputs: &[GpuValue],
        out: &GpuValue,
    ) -> Result<(), GpuError> {
        let xs = &inputs[0].shape;
        let p = SelectParams {
            n: u32_of(xs[0], "n")?,
            c: u32_of(xs[1], "c")?,
            h: u32_of(xs[2], "h")?,
            w: u32_of(xs[3], "w")?,
            y: u32_of(self.h, "y")?,
            x: u32_of(self.w, "x")?,
            _pad: [0; 2],
        };
        let u = cx.uniform(&p);
        let kernel = cx.kernel(&SHADER, "select_pixel")?;
        cx.dispatch(&kernel, &[&u, &inputs[0].buffer, &out.buffer], out.elements()?);
        Ok(())
    }

    fn l1_prune(&self, _cx: &mut L1Pruning<'_>, input: Kept) -> Result<Kept, ModelError> {
        Ok(input)
    }
}
