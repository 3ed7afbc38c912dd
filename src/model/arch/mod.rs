//! Network architectures innscope builds itself, each in its own file: the one `innscope
//! train` trains ([`fashion`]), a ResNet-18-sized INN for `innscope bench` ([`resnet`]), and a
//! small network continuous in space for tests ([`spatial`]). Here: the `Builder` they share,
//! which collects groups, parameters, tensors and nodes while a network is described.

pub mod fashion;
pub mod resnet;
pub mod spatial;

pub use fashion::{FASHION_CLASSES, fashion_cnn};
pub use resnet::resnet18;
pub use spatial::spatial_demo;

use std::collections::BTreeMap;

use ndarray::{ArrayD, IxDyn};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::graph::{Node, Op};
use super::{InputSpec, Model, ModelDoc, ModelError, ParamSpec};
use crate::inn::{AxisKind, Group, GroupId, ParamLayout, Quadrature};
use crate::layers::conv2d::{Conv2d, PaddingMode};
use crate::layers::{batch_norm::BatchNorm2d, input::Input, linear::Linear};

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
                op: Op::Input(Input),
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
            Op::Conv2d(Conv2d {
                weight: format!("{name}.weight"),
                bias: Some(bias),
                stride: [stride, stride],
                padding: [k / 2, k / 2],
                dilation: [1, 1],
                groups: 1,
                padding_mode: PaddingMode::Zeros,
            }),
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
            Op::Conv2d(Conv2d {
                weight: format!("{name}.weight"),
                bias: Some(bias),
                stride: [1, 1],
                padding: [k / 2, k / 2],
                dilation: [1, 1],
                groups: 1,
                padding_mode: PaddingMode::Zeros,
            }),
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
            Op::Linear(Linear {
                weight: format!("{name}.weight"),
                bias: Some(format!("{name}.bias")),
            }),
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
            Op::BatchNorm2d(BatchNorm2d {
                weight: Some(format!("{name}.weight")),
                bias: Some(format!("{name}.bias")),
                running_mean: format!("{name}.running_mean"),
                running_var: format!("{name}.running_var"),
                eps: 1e-5,
            }),
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
            Op::Linear(Linear {
                weight: format!("{name}.weight"),
                bias: Some(format!("{name}.bias")),
            }),
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
