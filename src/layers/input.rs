//! `input`: the network's input, `(N, C, H, W)` at the plan's resolution; the first node of
//! every graph.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::{CpuCx, GpuCx, GpuValue, Kept, L1Pruning, Layer, ShapeCx};
use crate::engine::EngineError;
use crate::gpu::GpuError;
use crate::model::ModelError;

/// The network input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Input;

impl Layer for Input {
    fn arity(&self) -> usize {
        0
    }

    fn output_shape(&self, cx: &ShapeCx<'_>, _inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        let [h, w] = cx.plan.resolution;
        Ok(vec![1, cx.model.doc.input.channels, h, w])
    }

    fn cpu(&self, cx: &CpuCx<'_>, _inputs: &[&Tensor]) -> Result<Tensor, EngineError> {
        Ok(cx.input.clone())
    }

    fn gpu(
        &self,
        cx: &mut GpuCx<'_>,
        _inputs: &[GpuValue],
        out: &GpuValue,
    ) -> Result<(), GpuError> {
        cx.write_input(&out.buffer);
        Ok(())
    }

    fn l1_prune(&self, _cx: &mut L1Pruning<'_>, _input: Kept) -> Result<Kept, ModelError> {
        Ok(None)
    }
}
