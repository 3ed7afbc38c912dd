//! Synthetic INNs with random control values, for tests and benchmarks: a small network whose
//! kernels are continuous in space as well as in channels, and a ResNet-18-sized network
//! (about 11.7 M parameters) with 2-D continuous convolutions.

use std::collections::BTreeMap;

use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::graph::{Node, Op, PaddingMode};
use super::{InputSpec, Model, ModelDoc, ModelError, ParamSpec};
use crate::inn::{AxisKind, Group, GroupId, ParamLayout, Quadrature};

/// Collects groups, parameters, tensors and nodes while a network is described.
struct Builder {
    rng: StdRng,
    groups: Vec<Group>,
    params: Vec<ParamSpec>,
    tensors: BTreeMap<String, ArrayD<f32>>,
    graph: Vec<Node>,
    count: usize,
    /// Build ordinary discrete parameters (a conventional network) instead of continuous ones.
    discrete: bool,
    /// Control values per channel group, as a fraction of the group's size (trained networks).
    control_ratio: f64,
}

impl Builder {
    fn new(seed: u64) -> Self {
        Self {
            rng: StdRng::seed_from_u64(seed),
            groups: Vec::new(),
            params: Vec::new(),
            tensors: BTreeMap::new(),
            graph: vec![Node {
                inputs: Vec::new(),
                out: "x".into(),
                op: Op::Input,
            }],
            count: 0,
            discrete: false,
            control_ratio: 1.0,
        }
    }

    /// Control values along a channel axis of group `g` (trained networks).
    fn control(&self, g: GroupId) -> usize {
        if self.discrete {
            return self.size(g);
        }
        super::regrid::control_count(self.size(g), self.control_ratio)
    }

    fn group(&mut self, size: usize, label: &str) -> GroupId {
        let id = GroupId::try_from(self.groups.len()).unwrap_or(GroupId::MAX);
        self.groups.push(Group {
            id,
            original_size: size,
            label: label.into(),
            learned: None,
        });
        id
    }

    fn size(&self, g: GroupId) -> usize {
        self.groups[g as usize].original_size
    }

    /// A parameter with random control values uniform in `[-scale, scale]` (or `fill`).
    fn param(
        &mut self,
        name: &str,
        layout: ParamLayout,
        control: &[usize],
        scale: f32,
        fill: Option<f32>,
    ) {
        let n: usize = control.iter().product();
        let values: Vec<f32> = (0..n)
            .map(|_| fill.unwrap_or_else(|| self.rng.random_range(-scale..=scale)))
            .collect();
        self.tensors.insert(
            name.into(),
            ArrayD::from_shape_vec(IxDyn(control), values).expect("length matches shape"),
        );
        self.params.push(ParamSpec {
            name: name.into(),
            layout,
        });
    }

    fn node(&mut self, inputs: &[&str], op: Op) -> String {
        self.count += 1;
        let out = format!("v{}", self.count);
        self.graph.push(Node {
            inputs: inputs.iter().map(|s| (*s).to_string()).collect(),
            out: out.clone(),
            op,
        });
        out
    }

    /// A convolution `in → out` groups, continuous in both channel axes (quadrature on the
    /// input axis when it has more than 3 channels) and, if `spatial`, in space with
    /// `spatial_control` control values per side.
    #[expect(clippy::too_many_arguments, reason = "a private builder step")]
    fn conv(
        &mut self,
        x: &str,
        name: &str,
        g_in: Option<GroupId>,
        cin: usize,
        g_out: GroupId,
        k: usize,
        stride: usize,
        spatial: Option<usize>,
    ) -> String {
        let cout = self.size(g_out);
        let ck = spatial.unwrap_or(k);
        let layout = self.conv_layout(g_in, cin, g_out, k, spatial.is_some());
        let quadrature = layout.quadrature;
        #[expect(clippy::cast_precision_loss, reason = "fan-in is small")]
        let scale = (6.0 / (cin * k * k) as f32).sqrt()
            * if quadrature.is_some() {
                2.0 / cin as f32
            } else {
                1.0
            };
        self.param(
            &format!("{name}.weight"),
            layout,
            &[cout, cin, ck, ck],
            scale,
            None,
        );
        let bias = format!("{name}.bias");
        self.param(
            &bias,
            ParamLayout {
                shape: vec![cout],
                axes: vec![AxisKind::Channel { group: g_out }],
                quadrature: None,
            },
            &[cout],
            0.05,
            None,
        );
        self.node(
            &[x],
            Op::Conv2d {
                weight: format!("{name}.weight"),
                bias: Some(bias),
                stride: [stride, stride],
                padding: [k / 2, k / 2],
                dilation: [1, 1],
                groups: 1,
                padding_mode: PaddingMode::Zeros,
            },
        )
    }

    /// Layout of a `k`×`k` convolution weight `g_in → g_out` (`cin` input channels when the
    /// input axis is discrete): continuous in both channel axes with TorchIntegral's quadrature,
    /// and in space if `spatial`; all discrete in a discrete builder.
    fn conv_layout(
        &self,
        g_in: Option<GroupId>,
        cin: usize,
        g_out: GroupId,
        k: usize,
        spatial: bool,
    ) -> ParamLayout {
        let shape = vec![self.size(g_out), cin, k, k];
        if self.discrete {
            return ParamLayout::discrete(shape);
        }
        let (hk, wk) = if spatial {
            (AxisKind::SpatialH, AxisKind::SpatialW)
        } else {
            (AxisKind::Discrete, AxisKind::Discrete)
        };
        ParamLayout {
            shape,
            axes: vec![
                AxisKind::Channel { group: g_out },
                g_in.map_or(AxisKind::Discrete, |g| AxisKind::Channel { group: g }),
                hk,
                wk,
            ],
            quadrature: g_in.and_then(|_| Quadrature::torchintegral(cin)),
        }
    }

    /// A stride-1 convolution for training, Kaiming-uniform initialised for a ReLU: continuous
    /// in both channel axes and in space (`k` taps at native resolution, `k` control values per
    /// side) unless the builder is discrete.
    fn trained_conv(
        &mut self,
        x: &str,
        name: &str,
        g_in: Option<GroupId>,
        cin: usize,
        g_out: GroupId,
        k: usize,
    ) -> String {
        let cout = self.size(g_out);
        let layout = self.conv_layout(g_in, cin, g_out, k, true);
        #[expect(clippy::cast_precision_loss, reason = "fan-in is small")]
        let scale = (6.0 / (cin * k * k) as f32).sqrt();
        let c_out = self.control(g_out);
        let c_in = g_in.map_or(cin, |g| self.control(g));
        self.param(
            &format!("{name}.weight"),
            layout,
            &[c_out, c_in, k, k],
            scale,
            None,
        );
        let bias_layout = if self.discrete {
            ParamLayout::discrete(vec![cout])
        } else {
            ParamLayout {
                shape: vec![cout],
                axes: vec![AxisKind::Channel { group: g_out }],
                quadrature: None,
            }
        };
        let bias = format!("{name}.bias");
        self.param(&bias, bias_layout, &[c_out], 0.0, Some(0.0));
        self.node(
            &[x],
            Op::Conv2d {
                weight: format!("{name}.weight"),
                bias: Some(bias),
                stride: [1, 1],
                padding: [k / 2, k / 2],
                dilation: [1, 1],
                groups: 1,
                padding_mode: PaddingMode::Zeros,
            },
        )
    }

    /// A fully connected layer for training: continuous along its input features (with
    /// quadrature) and, when `g_out` is given, along its outputs (a hidden layer whose width
    /// is that group's); otherwise `classes` discrete outputs. All discrete in a discrete
    /// builder.
    fn trained_linear(
        &mut self,
        x: &str,
        name: &str,
        g_in: GroupId,
        g_out: Option<GroupId>,
        classes: usize,
    ) -> String {
        let fin = self.size(g_in);
        let fout = g_out.map_or(classes, |g| self.size(g));
        let out_axis = g_out.map_or(AxisKind::Discrete, |group| AxisKind::Channel { group });
        let (layout, bias_layout) = if self.discrete {
            (
                ParamLayout::discrete(vec![fout, fin]),
                ParamLayout::discrete(vec![fout]),
            )
        } else {
            (
                ParamLayout {
                    shape: vec![fout, fin],
                    axes: vec![out_axis, AxisKind::Channel { group: g_in }],
                    quadrature: Quadrature::torchintegral(fin),
                },
                ParamLayout {
                    shape: vec![fout],
                    axes: vec![out_axis],
                    quadrature: None,
                },
            )
        };
        #[expect(clippy::cast_precision_loss, reason = "feature counts are small")]
        let scale = (6.0 / fin as f32).sqrt();
        let c_in = self.control(g_in);
        let c_out = g_out.map_or(classes, |g| self.control(g));
        self.param(
            &format!("{name}.weight"),
            layout,
            &[c_out, c_in],
            scale,
            None,
        );
        self.param(
            &format!("{name}.bias"),
            bias_layout,
            &[c_out],
            0.0,
            Some(0.0),
        );
        self.node(
            &[x],
            Op::Linear {
                weight: format!("{name}.weight"),
                bias: Some(format!("{name}.bias")),
            },
        )
    }

    fn batch_norm(&mut self, x: &str, name: &str, g: GroupId) -> String {
        let c = self.size(g);
        let layout = || ParamLayout {
            shape: vec![c],
            axes: vec![AxisKind::Channel { group: g }],
            quadrature: None,
        };
        self.param(&format!("{name}.weight"), layout(), &[c], 0.0, Some(1.0));
        self.param(&format!("{name}.bias"), layout(), &[c], 0.1, None);
        self.param(&format!("{name}.running_mean"), layout(), &[c], 0.1, None);
        self.param(
            &format!("{name}.running_var"),
            layout(),
            &[c],
            0.0,
            Some(1.0),
        );
        self.node(
            &[x],
            Op::BatchNorm2d {
                weight: Some(format!("{name}.weight")),
                bias: Some(format!("{name}.bias")),
                running_mean: format!("{name}.running_mean"),
                running_var: format!("{name}.running_var"),
                eps: 1e-5,
            },
        )
    }

    fn linear(&mut self, x: &str, name: &str, g_in: GroupId, classes: usize) -> String {
        let fin = self.size(g_in);
        #[expect(clippy::cast_precision_loss, reason = "feature counts are small")]
        let tau = (fin - 1) as f32 / 2.0;
        let layout = ParamLayout {
            shape: vec![classes, fin],
            axes: vec![AxisKind::Discrete, AxisKind::Channel { group: g_in }],
            quadrature: Some(Quadrature { dim: 1, tau }),
        };
        #[expect(clippy::cast_precision_loss, reason = "feature counts are small")]
        let scale = 2.0 / fin as f32;
        self.param(
            &format!("{name}.weight"),
            layout,
            &[classes, fin],
            scale,
            None,
        );
        self.param(
            &format!("{name}.bias"),
            ParamLayout::discrete(vec![classes]),
            &[classes],
            0.05,
            None,
        );
        self.node(
            &[x],
            Op::Linear {
                weight: format!("{name}.weight"),
                bias: Some(format!("{name}.bias")),
            },
        )
    }

    fn finish(self, name: &str, input: InputSpec, classes: usize) -> Result<Model, ModelError> {
        let doc = ModelDoc {
            name: name.into(),
            input,
            classes: (0..classes).map(|c| format!("class {c}")).collect(),
            groups: if self.discrete {
                Vec::new()
            } else {
                self.groups
            },
            params: self.params,
            graph: self.graph,
            provenance: serde_json::json!({ "tool": format!("innscope {} synthetic", env!("CARGO_PKG_VERSION")), "weights": "random" }),
        };
        Model::new(doc, self.tensors)
    }
}

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
    let x = b.node(&[&x], Op::Gelu);
    let x = b.node(
        &[&x],
        Op::AvgPool2d {
            kernel: [2, 2],
            stride: [2, 2],
            padding: [0, 0],
            count_include_pad: true,
        },
    );
    let x = b.conv(&x, "conv2", Some(g0), 8, g1, 5, 1, Some(4));
    let x = b.node(&[&x], Op::Silu);
    let x = b.node(
        &[&x],
        Op::MaxPool2d {
            kernel: [3, 3],
            stride: [1, 1],
            padding: [1, 1],
        },
    );
    let x = b.node(&[&x], Op::GlobalAvgPool);
    b.linear(&x, "fc", g1, 10);
    b.finish("spatial demo (random)", grey_28(0.5, 0.5), 10)
}

/// A 28x28 greyscale 8-bit input normalised by `mean` and `std`.
fn grey_28(mean: f32, std: f32) -> InputSpec {
    InputSpec {
        channels: 1,
        height: 28,
        width: 28,
        mean: vec![mean],
        std: vec![std],
        max_value: 255.0,
    }
}

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
    let x = b.node(&[&x], Op::Relu);
    let mut x = b.node(
        &[&x],
        Op::MaxPool2d {
            kernel: [3, 3],
            stride: [2, 2],
            padding: [1, 1],
        },
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
            let h = b.node(&[&h], Op::Relu);
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
            let sum = b.node(&[&h, &skip], Op::Add);
            x = b.node(&[&sum], Op::Relu);
            g_prev = g_stage;
        }
    }
    let x = b.node(&[&x], Op::GlobalAvgPool);
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
    let pool = Op::AvgPool2d {
        kernel: [2, 2],
        stride: [2, 2],
        padding: [0, 0],
        count_include_pad: true,
    };
    let x = b.trained_conv("x", "conv1", None, 1, g0, 5);
    let x = b.node(&[&x], Op::Relu);
    let x = b.node(&[&x], pool.clone());
    let x = b.trained_conv(&x, "conv2", Some(g0), widths[0], g1, 5);
    let x = b.node(&[&x], Op::Relu);
    let x = b.node(&[&x], pool);
    let x = b.trained_conv(&x, "conv3", Some(g1), widths[1], g2, 5);
    let x = b.node(&[&x], Op::Relu);
    let x = b.node(&[&x], Op::GlobalAvgPool);
    if let Some(units) = hidden {
        let g3 = b.group(units, "fc1 out / fc2 in");
        let x = b.trained_linear(&x, "fc1", g2, Some(g3), 0);
        let x = b.node(&[&x], Op::Relu);
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
