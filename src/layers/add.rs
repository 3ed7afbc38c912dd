//! `add`: the element-wise sum of two values of one shape (a residual connection). Its two
//! inputs' channels are one group. GPU: `shaders/add.wgsl`.

use bytemuck::{Pod, Zeroable};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::{CpuCx, GpuCx, GpuValue, Kept, L1Pruning, Layer, ShapeCx, Shader};
use crate::engine::EngineError;
use crate::gpu::GpuError;
use crate::model::ModelError;

/// Element-wise sum.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Add;

/// The room's kernels.
pub(crate) const SHADER: Shader = super::shader!("add.wgsl");

/// `AddParams` of `shaders/add.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct AddParams {
    len: u32,
    _pad: [u32; 3],
}

const _: () = assert!(size_of::<AddParams>() == 16);

impl Layer for Add {
    fn arity(&self) -> usize {
        2
    }

    fn output_shape(&self, _cx: &ShapeCx<'_>, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        if inputs[0] != inputs[1] {
            return Err(format!("adds {:?} and {:?}", inputs[0], inputs[1]));
        }
        Ok(inputs[0].to_vec())
    }

    fn cpu(&self, _cx: &CpuCx<'_>, inputs: &[&Tensor]) -> Result<Tensor, EngineError> {
        Ok((inputs[0] + inputs[1])?)
    }

    fn gpu(
        &self,
        cx: &mut GpuCx<'_>,
        inputs: &[GpuValue],
        out: &GpuValue,
    ) -> Result<(), GpuError> {
        let len = out.elements()?;
        let u = cx.uniform(&AddParams { len, _pad: [0; 3] });
        let kernel = cx.kernel(&SHADER, "add")?;
        let (a, b) = (&inputs[0].buffer, &inputs[1].buffer);
        cx.dispatch(&kernel, &[&u, a, b, &out.buffer], len);
        Ok(())
    }

    fn l1_prune(&self, _cx: &mut L1Pruning<'_>, _input: Kept) -> Result<Kept, ModelError> {
        Err(ModelError::invalid(
            "residual additions are not supported by L1 filter pruning here",
        ))
    }
}
