//! Element-wise activations: `relu`, `gelu` (erf form, PyTorch's default) and `silu`
//! (`x · sigmoid(x)`). Shapes and channels pass through. GPU: `shaders/activation.wgsl`, one
//! entry point for the three (an op code in its parameters).

use bytemuck::{Pod, Zeroable};
use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use super::{CpuCx, GpuCx, GpuValue, Kept, L1Pruning, Layer, ShapeCx, Shader};
use crate::engine::EngineError;
use crate::gpu::GpuError;
use crate::model::ModelError;

/// `max(x, 0)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Relu;

/// GELU, `0.5 · x · (1 + erf(x / √2))`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Gelu;

/// SiLU, `x · sigmoid(x)`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Silu;

/// The room's kernels.
pub(crate) const SHADER: Shader = super::shader!("activation.wgsl");

/// `UnaryParams` of `shaders/activation.wgsl`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Pod, Zeroable)]
struct UnaryParams {
    len: u32,
    op: u32,
    _pad: [u32; 2],
}

const _: () = assert!(size_of::<UnaryParams>() == 16);

/// Dispatch the shader's `unary` with `op` (0 ReLU, 1 GELU, 2 SiLU).
fn dispatch(cx: &mut GpuCx<'_>, op: u32, inputs: &[GpuValue], out: &GpuValue) -> Result<(), GpuError> {
    let len = out.elements()?;
    let u = cx.uniform(&UnaryParams {
        len,
        op,
        _pad: [0; 2],
    });
    let kernel = cx.kernel(&SHADER, "unary")?;
    cx.dispatch(&kernel, &[&u, &inputs[0].buffer, &out.buffer], len);
    Ok(())
}

macro_rules! activation {
    ($ty:ident, $code:literal, |$x:ident| $cpu:expr) => {
        impl Layer for $ty {
            fn output_shape(
                &self,
                _cx: &ShapeCx<'_>,
                inputs: &[&[usize]],
            ) -> Result<Vec<usize>, String> {
                Ok(inputs[0].to_vec())
            }

            fn cpu(&self, _cx: &CpuCx<'_>, inputs: &[&Tensor]) -> Result<Tensor, EngineError> {
                let $x = inputs[0];
                Ok($cpu?)
            }

            fn gpu(
                &self,
                cx: &mut GpuCx<'_>,
                inputs: &[GpuValue],
                out: &GpuValue,
            ) -> Result<(), GpuError> {
                dispatch(cx, $code, inputs, out)
            }

            fn l1_prune(&self, _cx: &mut L1Pruning<'_>, input: Kept) -> Result<Kept, ModelError> {
                Ok(input)
            }
        }
    };
}

activation!(Relu, 0, |x| x.relu());
activation!(Gelu, 1, |x| x.gelu_erf());
activation!(Silu, 2, |x| x.silu());

#[cfg(test)]
mod tests {
    use candle_core::{Device, Tensor};

    /// Values worked out by hand: ReLU clips, SiLU(1) = 1 / (1 + e⁻¹), GELU(1) = ½(1 +
    /// erf(1/√2)) with erf(1/√2) = 0.682689492 (the one-sigma mass of a normal).
    #[test]
    fn activations_at_hand_worked_points() {
        let x = Tensor::new(&[-1.0_f32, 0.0, 1.0], &Device::Cpu).expect("x");
        let v = |t: candle_core::Result<Tensor>| t.and_then(|t| t.to_vec1::<f32>()).expect("op");
        assert_eq!(v(x.relu()), [0.0, 0.0, 1.0]);
        let silu = v(x.silu());
        assert!((silu[2] - 1.0 / (1.0 + (-1.0_f32).exp())).abs() < 1e-6);
        assert!((silu[0] + 1.0 / (1.0 + 1.0_f32.exp())).abs() < 1e-6);
        let gelu = v(x.gelu_erf());
        assert!((gelu[2] - 0.5 * (1.0 + 0.682_689_5)).abs() < 1e-6);
        assert!((gelu[0] + 0.5 * (1.0 - 0.682_689_5)).abs() < 1e-6);
    }
}
