//! The Fashion-MNIST architecture `innscope train` trains (the demo INN and its twin).

use super::super::graph::Op;
use super::super::{Model, ModelError};
use super::{Builder, grey_28};
use crate::layers::{activation::Relu, global_avg_pool::GlobalAvgPool, pool::AvgPool2d};

/// The Fashion-MNIST classes, in label order.
pub const FASHION_CLASSES: [&str; 10] = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
];

/// The architecture `innscope train` trains on Fashion-MNIST (28x28 greyscale), freshly
/// initialised from `seed`: three 5x5 convolutions of `widths` channels with ReLU, 2x2 average
/// pooling after the first two, global average pooling and a head: linear (`fc`), or with
/// `hidden` units a fully connected layer, ReLU and a linear layer (`fc1`, `fc2`).
///
/// With `continuous` every kernel is continuous in out-channels, in-channels (trapezoid
/// quadrature) and space (5 control values per side), and the hidden layer in both of its
/// axes, so the network runs at any width and any input resolution; otherwise it is the
/// conventional discrete twin of the same shape. Along channel axes the control grid has
/// `control_ratio` of the group's size (at least 2): the weight is then a smooth function of
/// the channel coordinate by construction, and any partition at least as fine as the control
/// grid samples it without aliasing.
///
/// # Errors
/// A width below 2, or a control ratio outside (0, 1].
pub fn fashion_cnn(
    seed: u64,
    widths: [usize; 3],
    hidden: Option<usize>,
    continuous: bool,
    control_ratio: f64,
) -> Result<Model, ModelError> {
    if !(control_ratio > 0.0 && control_ratio <= 1.0) {
        return Err(ModelError::invalid(format!(
            "control ratio {control_ratio} is outside (0, 1]"
        )));
    }
    if widths.iter().chain(&hidden).any(|&w| w < 2) {
        return Err(ModelError::invalid(format!(
            "widths {widths:?}, hidden {hidden:?}: every layer needs at least 2 channels"
        )));
    }
    let mut b = Builder::new(seed);
    b.discrete = !continuous;
    b.control_ratio = control_ratio;
    let g0 = b.group(widths[0], "conv1 out / conv2 in");
    let g1 = b.group(widths[1], "conv2 out / conv3 in");
    let head_in = if hidden.is_some() { "fc1 in" } else { "fc in" };
    let g2 = b.group(widths[2], &format!("conv3 out / {head_in}"));
    let pool = Op::AvgPool2d(AvgPool2d {
        kernel: [2, 2],
        stride: [2, 2],
        padding: [0, 0],
        count_include_pad: true,
    });
    let x = b.trained_conv("x", "conv1", None, 1, g0, 5);
    let x = b.node(&[&x], Op::Relu(Relu));
    let x = b.node(&[&x], pool.clone());
    let x = b.trained_conv(&x, "conv2", Some(g0), widths[0], g1, 5);
    let x = b.node(&[&x], Op::Relu(Relu));
    let x = b.node(&[&x], pool);
    let x = b.trained_conv(&x, "conv3", Some(g1), widths[1], g2, 5);
    let x = b.node(&[&x], Op::Relu(Relu));
    let x = b.node(&[&x], Op::GlobalAvgPool(GlobalAvgPool));
    if let Some(units) = hidden {
        let g3 = b.group(units, "fc1 out / fc2 in");
        let x = b.trained_linear(&x, "fc1", g2, Some(g3), 0);
        let x = b.node(&[&x], Op::Relu(Relu));
        b.trained_linear(&x, "fc2", g3, None, 10);
    } else {
        b.trained_linear(&x, "fc", g2, None, 10);
    }
    let name = if continuous {
        "Fashion-MNIST INN"
    } else {
        "Fashion-MNIST discrete twin"
    };
    let mut model = b.finish(name, grey_28(0.286, 0.353), 10)?;
    model.doc.classes = FASHION_CLASSES.iter().map(|c| (*c).to_string()).collect();
    Ok(model)
}
