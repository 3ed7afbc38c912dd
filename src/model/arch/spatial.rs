//! A small INN continuous in space as well as in channels, for tests of the engines.

use super::super::graph::Op;
use super::super::{Model, ModelError};
use super::{Builder, grey_28};
use crate::layers::{
    activation::{Gelu, Silu},
    global_avg_pool::GlobalAvgPool,
    pool::{AvgPool2d, MaxPool2d},
};

/// A small INN on 28x28 greyscale input whose convolutions are continuous in space (native
/// 3x3 and 5x5 taps; the second kernel has a 4x4 control grid) as well as in channels, with a
/// global-average-pool head: it runs at any input resolution.
///
/// # Errors
/// Never for these fixed shapes (kept fallible like every model constructor).
pub fn spatial_demo(seed: u64) -> Result<Model, ModelError> {
    let mut b = Builder::new(seed);
    let g0 = b.group(8, "conv1 out / conv2 in");
    let g1 = b.group(16, "conv2 out / linear in");
    let x = b.conv("x", "conv1", None, 1, g0, 3, 1, Some(3));
    let x = b.node(&[&x], Op::Gelu(Gelu));
    let x = b.node(
        &[&x],
        Op::AvgPool2d(AvgPool2d {
            kernel: [2, 2],
            stride: [2, 2],
            padding: [0, 0],
            count_include_pad: true,
        }),
    );
    let x = b.conv(&x, "conv2", Some(g0), 8, g1, 5, 1, Some(4));
    let x = b.node(&[&x], Op::Silu(Silu));
    let x = b.node(
        &[&x],
        Op::MaxPool2d(MaxPool2d {
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
        }),
    );
    let x = b.node(&[&x], Op::GlobalAvgPool(GlobalAvgPool));
    b.linear(&x, "fc", g1, 10);
    b.finish("spatial demo (random)", grey_28(0.5, 0.5), 10)
}
