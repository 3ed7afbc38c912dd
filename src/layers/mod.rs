//! One room per layer kind: everything innscope knows about an op lives in its module.
//!
//! A room owns its op's graph entry (the attributes written in files), its validation and
//! shape rule, which axes of its parameters may be continuous, its CPU forward (candle
//! tensors), its GPU forward (the Rust dispatch and its own WGSL file in `shaders/`), how L1
//! filter pruning treats it, and its tests. The engines and the shape check are small
//! interpreters that walk the graph and ask each node's [`Layer`] to do its part:
//!
//! | interpreter | asks | with |
//! |---|---|---|
//! | [`Model::infer_shapes`](crate::model::Model::infer_shapes) | [`Layer::output_shape`] | [`ShapeCx`] |
//! | [`Model::validate`](crate::model::Model::validate) | [`Layer::check`], [`Layer::param_axes`] | the model |
//! | [`run_graph`](crate::engine::cpu::run_graph) (CPU engine, training) | [`Layer::cpu`] | [`CpuCx`] |
//! | [`GpuEngine::forward`](crate::gpu::GpuEngine::forward) | [`Layer::gpu`] | [`GpuCx`] |
//! | [`l1_prune`](crate::model::prune::l1_prune) | [`Layer::l1_filters`], [`Layer::l1_prune`] | [`L1Pruning`] |
//!
//! # A new layer kind
//!
//! 1. `src/layers/NAME.rs`: a struct with the op's attributes (serde, as they appear in the
//!    native format's graph), `impl Layer`, and `#[cfg(test)]` tests against hand-derived or
//!    reference values.
//! 2. `shaders/NAME.wgsl` for its GPU kernels (compiled with `shaders/common.wgsl` before it;
//!    see [`shader!`](crate::layers::shader)); the room dispatches them through [`GpuCx`].
//! 3. One line in the `layers!` list below, which declares the module and adds the op to
//!    [`Op`].
//!
//! Nothing else changes: the engines, the shape check, validation, pruning and the panels go
//! through [`Layer`]. An importer of another format maps its own names onto the op's struct.

pub use crate::engine::cpu::CpuCx;
pub use crate::gpu::engine::{GpuCx, GpuValue};
pub use crate::model::ShapeCx;
pub use crate::model::prune::{Kept, L1Pruning};

use candle_core::Tensor;
use serde::{Deserialize, Serialize};

use crate::engine::EngineError;
use crate::gpu::GpuError;
use crate::model::{Model, ModelError};

/// What an axis of a layer's parameter means to the layer, and so whether it may be
/// continuous there: channel axes follow a group's partition, spatial axes the resolution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AxisRole {
    /// A channel axis (output, input, or the channels a per-channel parameter scales): may be
    /// continuous along a group.
    Channel,
    /// A kernel row or column: may be continuous in space where the layer allows it.
    Spatial,
}

/// Everything an op kind does; each room implements it once.
pub trait Layer {
    /// Values the op reads (its inputs in the graph).
    fn arity(&self) -> usize {
        1
    }

    /// Each parameter the op uses, with what each of its axes is.
    fn param_axes(&self) -> Vec<(&str, Vec<AxisRole>)> {
        Vec::new()
    }

    /// Checks of the attributes against the model that shapes alone do not catch (strides of
    /// zero, continuous kernels with a stride, ...).
    ///
    /// # Errors
    /// What is wrong, for the person who supplied the model.
    fn check(&self, _model: &Model) -> Result<(), String> {
        Ok(())
    }

    /// The output's shape from the inputs' shapes (batch first) under the plan in `cx`.
    ///
    /// # Errors
    /// Inputs or parameters that do not fit, described.
    fn output_shape(&self, cx: &ShapeCx<'_>, inputs: &[&[usize]]) -> Result<Vec<usize>, String>;

    /// The forward pass on candle tensors (inference, and training with gradients).
    ///
    /// # Errors
    /// A missing parameter, or an op failure.
    fn cpu(&self, cx: &CpuCx<'_>, inputs: &[&Tensor]) -> Result<Tensor, EngineError>;

    /// Record the forward pass on the GPU: read `inputs`, write `out`.
    ///
    /// # Errors
    /// Sizes beyond the device's limits, a missing weight, a kernel that does not build.
    fn gpu(&self, cx: &mut GpuCx<'_>, inputs: &[GpuValue], out: &GpuValue) -> Result<(), GpuError>;

    /// The weight whose output filters L1 filter pruning ranks, if the op is one it narrows
    /// (`produces_output`: the node writes the network's output, whose classes stay).
    fn l1_filters(&self, _produces_output: bool) -> Option<&str> {
        None
    }

    /// L1 filter pruning of a discrete network: drop from this op's parameters the input
    /// channels `input` no longer has (`None`: all kept), keep `cx.width` output filters if
    /// [`Layer::l1_filters`] names one, and return the channels the output keeps.
    ///
    /// # Errors
    /// An op that cannot be narrowed this way.
    fn l1_prune(&self, cx: &mut L1Pruning<'_>, input: Kept) -> Result<Kept, ModelError>;
}

/// A WGSL file of `shaders/`, compiled with `shaders/common.wgsl` before it.
#[derive(Debug)]
pub struct Shader {
    /// File name in `shaders/`.
    pub file: &'static str,
    /// `common.wgsl` followed by the file.
    pub source: &'static str,
}

/// The [`Shader`] of `shaders/FILE`, for a room's GPU kernels.
#[macro_export]
#[doc(hidden)]
macro_rules! __shader {
    ($file:literal) => {
        $crate::layers::Shader {
            file: $file,
            source: concat!(
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/common.wgsl")),
                include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/shaders/", $file)),
            ),
        }
    };
}
pub use crate::__shader as shader;

/// Declares each room's module and the [`Op`] enum over their structs: one line per kind,
/// `module { Variant = "name in files", ... }`.
macro_rules! layers {
    ($($module:ident { $($variant:ident = $name:literal),+ $(,)? })*) => {
        $(pub mod $module;)*

        /// The operations innscope runs, one per room; written in files as `{"op": NAME,
        /// ...attributes}`. Shapes are NCHW for images, `(N, F)` for features.
        #[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "op")]
        pub enum Op {
            $($(
                #[doc = concat!("`", $name, "`: see [`", stringify!($module), "::", stringify!($variant), "`].")]
                #[serde(rename = $name)]
                $variant($module::$variant),
            )+)*
        }

        impl Op {
            /// Name as written in files (`conv2d`, `relu`, ...).
            #[must_use]
            pub fn name(&self) -> &'static str {
                match self {
                    $($(Self::$variant(_) => $name,)+)*
                }
            }

            /// What the op does, through its room.
            #[must_use]
            pub fn layer(&self) -> &dyn Layer {
                match self {
                    $($(Self::$variant(l) => l,)+)*
                }
            }

            /// Every op name innscope knows, in registry order.
            pub const NAMES: &[&str] = &[$($($name,)+)*];
        }
    };
}

layers! {
    input { Input = "input" }
    conv2d { Conv2d = "conv2d" }
    linear { Linear = "linear" }
    activation { Relu = "relu", Gelu = "gelu", Silu = "silu" }
    pool { AvgPool2d = "avg_pool2d", MaxPool2d = "max_pool2d" }
    global_avg_pool { GlobalAvgPool = "global_avg_pool" }
    batch_norm { BatchNorm2d = "batch_norm2d" }
    add { Add = "add" }
    flatten { Flatten = "flatten" }
    select { Select = "select" }
    softmax { Softmax = "softmax" }
}

impl Op {
    /// Number of inputs the op reads.
    #[must_use]
    pub fn arity(&self) -> usize {
        self.layer().arity()
    }

    /// Names of the parameters the op uses.
    #[must_use]
    pub fn params(&self) -> Vec<&str> {
        self.layer()
            .param_axes()
            .into_iter()
            .map(|(name, _)| name)
            .collect()
    }
}

/// Output size of a sliding window (convolution or pooling), `None` when the window does not
/// fit: `floor((n + 2p - d(k - 1) - 1) / s) + 1`.
#[must_use]
pub fn window_out(
    n: usize,
    kernel: usize,
    stride: usize,
    padding: usize,
    dilation: usize,
) -> Option<usize> {
    let span = dilation
        .checked_mul(kernel.checked_sub(1)?)?
        .checked_add(1)?;
    let padded = n.checked_add(padding.checked_mul(2)?)?;
    if stride == 0 || padded < span {
        return None;
    }
    Some((padded - span) / stride + 1)
}

/// `(C, H, W)` of an image shape `(N, C, H, W)`.
///
/// # Errors
/// Any other rank, described.
pub fn image_shape(s: &[usize]) -> Result<[usize; 3], String> {
    match s {
        [_, c, h, w] => Ok([*c, *h, *w]),
        _ => Err(format!("needs an image (N, C, H, W), got {s:?}")),
    }
}

/// `F` of a feature shape `(N, F)`.
///
/// # Errors
/// Any other rank, described.
pub fn feature_shape(s: &[usize]) -> Result<usize, String> {
    match s {
        [_, f] => Ok(*f),
        _ => Err(format!("needs features (N, F), got {s:?}")),
    }
}

/// `[n, n]`, the default of stride and dilation attributes.
pub(crate) fn ones2() -> [usize; 2] {
    [1, 1]
}

/// `[0, 0]`, the default of padding attributes.
pub(crate) fn zeros2() -> [usize; 2] {
    [0, 0]
}

#[cfg(test)]
mod tests {
    use super::Op;

    /// Every room's WGSL parses and validates (with `common.wgsl` before it), so a broken
    /// shader fails here rather than on the first forward pass on a device.
    #[test]
    fn every_layer_shader_validates() {
        let shaders = [
            &super::conv2d::SHADER,
            &super::linear::SHADER,
            &super::activation::SHADER,
            &super::pool::SHADER,
            &super::global_avg_pool::SHADER,
            &super::batch_norm::SHADER,
            &super::add::SHADER,
            &super::select::SHADER,
            &super::softmax::SHADER,
        ];
        for s in shaders {
            let module = naga::front::wgsl::parse_str(s.source)
                .unwrap_or_else(|e| panic!("{}: {}", s.file, e.emit_to_string(s.source)));
            naga::valid::Validator::new(
                naga::valid::ValidationFlags::all(),
                naga::valid::Capabilities::empty(),
            )
            .validate(&module)
            .unwrap_or_else(|e| panic!("{}: {e:?}", s.file));
        }
    }

    /// Ops read from files by name, attributes inline, defaults filled in; unknown names are
    /// refused with the name.
    #[test]
    fn ops_round_trip_through_json_by_name() {
        for (json, name) in [
            (r#"{"op":"relu"}"#, "relu"),
            (r#"{"op":"global_avg_pool"}"#, "global_avg_pool"),
            (r#"{"op":"conv2d","weight":"c.weight"}"#, "conv2d"),
            (r#"{"op":"select","h":1,"w":2}"#, "select"),
        ] {
            let op: Op = serde_json::from_str(json).expect(json);
            assert_eq!(op.name(), name);
            let again: Op = serde_json::from_str(&serde_json::to_string(&op).expect("json"))
                .expect("round trip");
            assert_eq!(again, op);
        }
        let Op::Conv2d(c) = serde_json::from_str(r#"{"op":"conv2d","weight":"w"}"#).expect("conv")
        else {
            panic!("not a conv2d");
        };
        assert_eq!((c.stride, c.padding, c.groups), ([1, 1], [0, 0], 1));
        let err = serde_json::from_str::<Op>(r#"{"op":"warp"}"#).expect_err("unknown op");
        assert!(err.to_string().contains("warp"), "{err}");
        assert!(Op::NAMES.contains(&"batch_norm2d"));
    }
}
