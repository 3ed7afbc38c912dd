//! `flatten`: `(N, ...)` → `(N, F)`. The values stay where they are: on the CPU a reshape, on
//! the GPU a buffer copy, no shader.

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::{CpuCx, GpuCx, GpuValue, Kept, L1Pruning, Layer, ShapeCx};
use crate::engine::EngineError;
use crate::gpu::GpuError;
use crate::model::ModelError;

/// Flatten all but the batch axis.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flatten;

impl Layer for Flatten {
    fn output_shape(&self, _cx: &ShapeCx<'_>, inputs: &[&[usize]]) -> Result<Vec<usize>, String> {
        Ok(vec![inputs[0][0], inputs[0].iter().skip(1).product()])
    }

    fn cpu(&self, _cx: &CpuCx<'_>, inputs: &[&Tensor]) -> Result<Tensor, EngineError> {
        Ok(inputs[0].flatten_from(1)?)
    }

    fn gpu(
        &self,
        cx: &mut GpuCx<'_>,
        inputs: &[GpuValue],
        out: &GpuValue,
    ) -> Result<(), GpuError> {
        let bytes = u64::from(out.elements()?) * 4;
        cx.encoder()
            .copy_buffer_to_buffer(&inputs[0].buffer, 0, &out.buffer, 0, bytes);
        Ok(())
    }

    /// Channels of a narrowed layer would be scattered over the features: only pooled heads
    /// are pruned.
    fn l1_prune(&self, _cx: &mut L1Pruning<'_>, input: Kept) -> Result<Kept, ModelError> {
        if input.is_some() {
            return Err(ModelError::invalid(
                "a pruned layer feeds a flatten; only pooled heads are supported",
            ));
        }
        Ok(None)
    }
}
