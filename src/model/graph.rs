//! The layer graph: named values flowing through ops, in forward order.
//!
//! Each [`Node`] reads named values (`in`) and writes one (`out`). The first node is the
//! `input`; the last node's value is the network's output (logits). Parameters are referred to
//! by name (the original module path, e.g. `conv_2.weight`).

use serde::{Deserialize, Serialize};

/// One step of the forward pass.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Names of the values read, in order.
    #[serde(rename = "in", default)]
    pub inputs: Vec<String>,
    /// Name of the value written.
    pub out: String,
    /// What the step computes.
    #[serde(flatten)]
    pub op: Op,
}

/// How a convolution pads its input.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PaddingMode {
    /// Pad with zeros. Default.
    #[default]
    Zeros,
    /// Repeat the border pixel (PyTorch `replicate`).
    Replicate,
}

fn one() -> usize {
    1
}
fn ones2() -> [usize; 2] {
    [1, 1]
}
fn zeros2() -> [usize; 2] {
    [0, 0]
}
fn yes() -> bool {
    true
}
fn bn_eps() -> f32 {
    1e-5
}

/// The operations innscope runs. Shapes are NCHW for images, `(N, F)` for features.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Op {
    /// The network input, `(N, C, H, W)` at the plan's resolution.
    Input,
    /// 2-D convolution. A weight whose spatial axes are continuous is resampled at the input
    /// resolution and padded "same" (`(k - 1) / 2 * dilation`); it needs stride 1.
    Conv2d {
        /// Weight parameter `(C_out, C_in / groups, kh, kw)`.
        weight: String,
        /// Bias parameter `(C_out)`.
        #[serde(default)]
        bias: Option<String>,
        /// Stride `[sh, sw]`. Default `[1, 1]`.
        #[serde(default = "ones2")]
        stride: [usize; 2],
        /// Padding `[ph, pw]` at the native resolution. Default `[0, 0]`.
        #[serde(default = "zeros2")]
        padding: [usize; 2],
        /// Dilation `[dh, dw]`. Default `[1, 1]`.
        #[serde(default = "ones2")]
        dilation: [usize; 2],
        /// Channel groups. Default 1.
        #[serde(default = "one")]
        groups: usize,
        /// How the input is padded. Default zeros.
        #[serde(default)]
        padding_mode: PaddingMode,
    },
    /// `x · Wᵀ + b` on `(N, F)`.
    Linear {
        /// Weight parameter `(F_out, F_in)`.
        weight: String,
        /// Bias parameter `(F_out)`.
        #[serde(default)]
        bias: Option<String>,
    },
    /// `max(x, 0)`.
    Relu,
    /// GELU (erf form, PyTorch's default).
    Gelu,
    /// SiLU, `x · sigmoid(x)`.
    Silu,
    /// Average pooling.
    AvgPool2d {
        /// Window `[kh, kw]`.
        kernel: [usize; 2],
        /// Stride `[sh, sw]`.
        stride: [usize; 2],
        /// Zero padding `[ph, pw]`. Default `[0, 0]`.
        #[serde(default = "zeros2")]
        padding: [usize; 2],
        /// Whether padded zeros count in the average. Default true (PyTorch's default).
        #[serde(default = "yes")]
        count_include_pad: bool,
    },
    /// Max pooling.
    MaxPool2d {
        /// Window `[kh, kw]`.
        kernel: [usize; 2],
        /// Stride `[sh, sw]`.
        stride: [usize; 2],
        /// Padding `[ph, pw]` (padded values never win). Default `[0, 0]`.
        #[serde(default = "zeros2")]
        padding: [usize; 2],
    },
    /// Mean over all pixels: `(N, C, H, W)` → `(N, C)`. Resolution-independent head.
    GlobalAvgPool,
    /// Inference BatchNorm: `(x - mean) / sqrt(var + eps) · weight + bias`, per channel.
    BatchNorm2d {
        /// Scale parameter `(C)`.
        #[serde(default)]
        weight: Option<String>,
        /// Shift parameter `(C)`.
        #[serde(default)]
        bias: Option<String>,
        /// Running mean parameter `(C)`.
        running_mean: String,
        /// Running variance parameter `(C)`.
        running_var: String,
        /// Added to the variance. Default 1e-5.
        #[serde(default = "bn_eps")]
        eps: f32,
    },
    /// Element-wise sum of two values of one shape (residual connection).
    Add,
    /// `(N, ...)` → `(N, F)`.
    Flatten,
    /// `x[:, :, h, w]`: one pixel of every channel, `(N, C, H, W)` → `(N, C)`.
    Select {
        /// Row.
        h: usize,
        /// Column.
        w: usize,
    },
    /// Softmax over the last axis.
    Softmax,
}

impl Op {
    /// Short name as written in files (`conv2d`, `relu`, …).
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            Self::Input => "input",
            Self::Conv2d { .. } => "conv2d",
            Self::Linear { .. } => "linear",
            Self::Relu => "relu",
            Self::Gelu => "gelu",
            Self::Silu => "silu",
            Self::AvgPool2d { .. } => "avg_pool2d",
            Self::MaxPool2d { .. } => "max_pool2d",
            Self::GlobalAvgPool => "global_avg_pool",
            Self::BatchNorm2d { .. } => "batch_norm2d",
            Self::Add => "add",
            Self::Flatten => "flatten",
            Self::Select { .. } => "select",
            Self::Softmax => "softmax",
        }
    }

    /// Number of inputs the op reads.
    #[must_use]
    pub fn arity(&self) -> usize {
        match self {
            Self::Input => 0,
            Self::Add => 2,
            _ => 1,
        }
    }

    /// Names of the parameters the op uses.
    #[must_use]
    pub fn params(&self) -> Vec<&str> {
        match self {
            Self::Conv2d { weight, bias, .. } | Self::Linear { weight, bias } => {
                std::iter::once(weight.as_str())
                    .chain(bias.as_deref())
                    .collect()
            }
            Self::BatchNorm2d {
                weight,
                bias,
                running_mean,
                running_var,
                ..
            } => weight
                .as_deref()
                .into_iter()
                .chain(bias.as_deref())
                .chain([running_mean.as_str(), running_var.as_str()])
                .collect(),
            _ => Vec::new(),
        }
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
