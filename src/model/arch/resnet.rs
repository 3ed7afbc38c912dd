//! A ResNet-18-sized INN with random control values, for `innscope bench` and the GPU tests.

use super::super::InputSpec;
use super::super::graph::Op;
use super::super::{Model, ModelError};
use super::Builder;
use crate::layers::{activation::Relu, add::Add, global_avg_pool::GlobalAvgPool, pool::MaxPool2d};

/// A ResNet-18-shaped INN (BasicBlocks [2, 2, 2, 2], widths 64–512, 1 000 classes, 224x224
/// RGB input, about 11.7 M parameters) with random control values; every convolution is
/// continuous in both channel axes, residual connections share groups.
///
/// # Errors
/// Never for these fixed shapes.
pub fn resnet18(seed: u64) -> Result<Model, ModelError> {
    let mut b = Builder::new(seed);
    let stem = b.group(64, "stem / layer1");
    let x = b.conv("x", "conv1", None, 3, stem, 7, 2, None);
    let x = b.batch_norm(&x, "bn1", stem);
    let x = b.node(&[&x], Op::Relu(Relu));
    let mut x = b.node(
        &[&x],
        Op::MaxPool2d(MaxPool2d {
            kernel: [3, 3],
            stride: [2, 2],
            padding: [1, 1],
        }),
    );
    let mut g_prev = stem;
    for (stage, width) in [64_usize, 128, 256, 512].into_iter().enumerate() {
        let g_stage = if stage == 0 {
            stem
        } else {
            b.group(width, &format!("layer{} out", stage + 1))
        };
        for block in 0..2 {
            let name = format!("layer{}.{block}", stage + 1);
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let g_mid = b.group(width, &format!("{name} inner"));
            let cin = b.size(g_prev);
            let h = b.conv(
                &x,
                &format!("{name}.conv1"),
                Some(g_prev),
                cin,
                g_mid,
                3,
                stride,
                None,
            );
            let h = b.batch_norm(&h, &format!("{name}.bn1"), g_mid);
            let h = b.node(&[&h], Op::Relu(Relu));
            let h = b.conv(
                &h,
                &format!("{name}.conv2"),
                Some(g_mid),
                width,
                g_stage,
                3,
                1,
                None,
            );
            let h = b.batch_norm(&h, &format!("{name}.bn2"), g_stage);
            let skip = if g_prev == g_stage {
                x.clone()
            } else {
                let d = b.conv(
                    &x,
                    &format!("{name}.downsample.0"),
                    Some(g_prev),
                    cin,
                    g_stage,
                    1,
                    stride,
                    None,
                );
                b.batch_norm(&d, &format!("{name}.downsample.1"), g_stage)
            };
            let sum = b.node(&[&h, &skip], Op::Add(Add));
            x = b.node(&[&sum], Op::Relu(Relu));
            g_prev = g_stage;
        }
    }
    let x = b.node(&[&x], Op::GlobalAvgPool(GlobalAvgPool));
    b.linear(&x, "fc", g_prev, 1000);
    b.finish(
        "ResNet-18-sized INN (random)",
        InputSpec {
            channels: 3,
            height: 224,
            width: 224,
            mean: vec![0.485, 0.456, 0.406],
            std: vec![0.229, 0.224, 0.225],
            max_value: 255.0,
        },
        1000,
    )
}
