//! Models: the continuous network (parameters, groups, layer graph), its files, and checks.
//!
//! A [`Model`] is what a file holds: a JSON-serialisable [`ModelDoc`] (everything but numbers)
//! and the tensors (control values λ of continuous parameters, plain values of discrete ones).
//! Every constructor ends in [`Model::validate`], so a `Model` in hand is consistent: every
//! parameter exists with a shape that fits its layout, every value is finite, every group is
//! known, and the graph's shapes flow at the native plan.

pub mod arch;
pub mod average;
pub mod export;
pub mod graph;
pub mod native;
pub mod open;
pub mod pickle;
pub mod prune;
pub mod regrid;
pub mod st;
pub mod torchintegral;

use std::collections::{BTreeMap, BTreeSet};

use ndarray::ArrayD;
use serde::{Deserialize, Serialize};

use crate::inn::discretize::{BasisCache, check_lambda_shape, checked_elements, discretize_with};
use crate::inn::{
    self, AxisKind, Group, GroupId, MAX_GROUP_SIZE, MAX_RESOLUTION, ParamLayout, Plan, Resolved,
};
use crate::layers::AxisRole;
pub use crate::layers::conv2d::PaddingMode;
pub use graph::{Node, Op};
pub use open::{open, open_with};

/// What goes wrong with a model, described for the person who supplied it.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// The file is not what it claims to be (truncated, malformed, wrong format).
    #[error("{path}: {detail}")]
    File {
        /// Where it came from.
        path: String,
        /// What is wrong.
        detail: String,
    },
    /// The model's description is inconsistent.
    #[error("invalid model: {0}")]
    Invalid(String),
    /// The math refused a plan or a shape.
    #[error(transparent)]
    Inn(#[from] inn::Error),
}

impl ModelError {
    /// An inconsistency, formatted.
    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::Invalid(detail.into())
    }
}

/// How raw pixels become the network's input: `x = (v / max_value - mean[c]) / std[c]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct InputSpec {
    /// Channels (1 grey, 3 RGB).
    pub channels: usize,
    /// Native height in pixels (the resolution the network was trained at).
    pub height: usize,
    /// Native width in pixels.
    pub width: usize,
    /// Per-channel mean subtracted after scaling to `[0, 1]`.
    pub mean: Vec<f32>,
    /// Per-channel standard deviation divided by.
    pub std: Vec<f32>,
    /// Raw value that maps to 1.0 (255 for 8-bit images).
    pub max_value: f32,
}

impl InputSpec {
    /// Native `[height, width]`.
    #[must_use]
    pub fn native(&self) -> [usize; 2] {
        [self.height, self.width]
    }

    /// Normalise one raw value of channel `c`, in PyTorch's order (`ToTensor` then `Normalize`).
    #[must_use]
    pub fn normalize(&self, c: usize, raw: f32) -> f32 {
        (raw / self.max_value - self.mean[c]) / self.std[c]
    }

    /// One line describing the conversion, for command output.
    #[must_use]
    pub fn describe(&self) -> String {
        let kind = match self.channels {
            1 => "greyscale".to_string(),
            3 => "RGB".to_string(),
            c => format!("{c}-channel"),
        };
        format!(
            "{kind} {}x{} (native), x = (v / {} - mean {:?}) / std {:?}",
            self.width, self.height, self.max_value, self.mean, self.std
        )
    }
}

/// A named parameter and its layout.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ParamSpec {
    /// Original module path, e.g. `conv_2.weight` (also the key in exports).
    pub name: String,
    /// Shape, continuity and quadrature.
    #[serde(flatten)]
    pub layout: ParamLayout,
}

/// Everything about a model except its tensors; stored as JSON in the file's metadata.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelDoc {
    /// Human name.
    pub name: String,
    /// Input conversion and native resolution.
    pub input: InputSpec,
    /// Class names, in logit order.
    pub classes: Vec<String>,
    /// Groups of continuous axes.
    pub groups: Vec<Group>,
    /// Parameters in a stable order.
    pub params: Vec<ParamSpec>,
    /// Forward graph.
    pub graph: Vec<Node>,
    /// Where the model came from (free-form JSON: tool, command, source, data, ...).
    #[serde(default)]
    pub provenance: serde_json::Value,
}

/// A continuous network: its description and its tensors.
#[derive(Clone, Debug)]
pub struct Model {
    /// Description.
    pub doc: ModelDoc,
    /// λ of every continuous parameter and the value of every discrete one, by parameter name.
    pub tensors: BTreeMap<String, ArrayD<f32>>,
}

/// What a room's [`Layer::output_shape`](crate::layers::Layer::output_shape) sees: the model
/// and the plan its shapes are inferred under.
pub struct ShapeCx<'a> {
    /// The model.
    pub model: &'a Model,
    /// The plan.
    pub plan: &'a Resolved,
}

impl ShapeCx<'_> {
    /// The discrete shape of parameter `name` under the plan.
    ///
    /// # Errors
    /// An unknown parameter, or a plan that cannot size it.
    pub fn param_shape(&self, name: &str) -> Result<Vec<usize>, String> {
        let p = self
            .model
            .param(name)
            .ok_or_else(|| format!("unknown parameter {name:?}"))?;
        p.layout
            .discrete_shape(self.plan)
            .map_err(|e| e.to_string())
    }
}

/// Whether a parameter's continuous axes are where its layer allows them: channel axes at
/// the layer's channel axes, spatial axes at its kernel's rows and columns.
fn check_axis_roles(layout: &ParamLayout, roles: &[AxisRole]) -> Result<(), String> {
    for (d, axis) in layout.axes.iter().enumerate() {
        let allowed = match axis {
            AxisKind::Discrete => true,
            AxisKind::Channel { .. } => roles.get(d) == Some(&AxisRole::Channel),
            AxisKind::SpatialH | AxisKind::SpatialW => roles.get(d) == Some(&AxisRole::Spatial),
        };
        if !allowed {
            let role = roles
                .get(d)
                .map_or_else(|| "no".to_string(), |r| format!("a {r:?}"));
            return Err(format!(
                "axis {d} is continuous as {axis:?}, but the layer has {role} axis there"
            ));
        }
    }
    Ok(())
}

/// Discrete tensors by parameter name.
pub type DiscreteWeights = BTreeMap<String, ArrayD<f32>>;

impl Model {
    /// Check everything and build; the only way the readers make a model.
    ///
    /// # Errors
    /// Any inconsistency, described.
    pub fn new(doc: ModelDoc, tensors: BTreeMap<String, ArrayD<f32>>) -> Result<Self, ModelError> {
        let model = Self { doc, tensors };
        model.validate()?;
        Ok(model)
    }

    /// Native input resolution `[height, width]`.
    #[must_use]
    pub fn native(&self) -> [usize; 2] {
        self.doc.input.native()
    }

    /// The group with `id`.
    #[must_use]
    pub fn group(&self, id: GroupId) -> Option<&Group> {
        self.doc.groups.iter().find(|g| g.id == id)
    }

    /// The parameter called `name`.
    #[must_use]
    pub fn param(&self, name: &str) -> Option<&ParamSpec> {
        self.doc.params.iter().find(|p| p.name == name)
    }

    /// Members of a group: `(parameter, dimension)` pairs.
    #[must_use]
    pub fn group_members(&self, id: GroupId) -> Vec<(String, usize)> {
        self.doc
            .params
            .iter()
            .flat_map(|p| {
                p.layout
                    .axes
                    .iter()
                    .enumerate()
                    .filter(|&(_d, a)| *a == AxisKind::Channel { group: id })
                    .map(|(d, _a)| (p.name.clone(), d))
            })
            .collect()
    }

    /// Whether any parameter follows the input resolution.
    #[must_use]
    pub fn is_resolution_continuous(&self) -> bool {
        self.doc
            .params
            .iter()
            .any(|p| p.layout.is_spatially_continuous())
    }

    /// Every group at its default size, native resolution.
    #[must_use]
    pub fn default_plan(&self) -> Plan {
        Plan::native(self.native())
    }

    /// Resolve a plan against this model.
    ///
    /// # Errors
    /// See [`Plan::resolve`].
    pub fn resolve(&self, plan: &Plan) -> Result<Resolved, ModelError> {
        Ok(plan.resolve(&self.doc.groups, self.native())?)
    }

    /// Discretize every parameter under `plan` (the CPU path; the GPU engine mirrors it).
    ///
    /// # Errors
    /// A quadrature axis with fewer than two points, or a tensor too large.
    pub fn discretize(&self, plan: &Resolved) -> Result<DiscreteWeights, ModelError> {
        self.discretize_where(plan, |_| true)
    }

    /// The parameters whose discrete values differ between plans `from` and `to` (each axis
    /// sampled at other points); every parameter when there is no `from` (nothing discretized
    /// yet, or a change that did not complete).
    #[must_use]
    pub fn params_to_redo(&self, from: Option<&Resolved>, to: &Resolved) -> BTreeSet<String> {
        self.doc
            .params
            .iter()
            .filter(|p| !from.is_some_and(|from| p.layout.samples_alike(from, to)))
            .map(|p| p.name.clone())
            .collect()
    }

    /// [`Self::discretize`] for the parameters `wanted` picks only.
    ///
    /// # Errors
    /// As [`Self::discretize`].
    pub fn discretize_where(
        &self,
        plan: &Resolved,
        wanted: impl Fn(&ParamSpec) -> bool + Sync,
    ) -> Result<DiscreteWeights, ModelError> {
        use rayon::prelude::*;
        let bases = BasisCache::new(
            self.doc
                .params
                .iter()
                .filter(|p| wanted(p))
                .map(|p| (&p.layout, self.tensors[&p.name].shape())),
            plan,
        )?;
        // Parameters in parallel too: most are small (biases, norms), and each one handed to
        // the thread pool from outside it on its own paid a wake-up and a hand-back.
        self.doc
            .params
            .par_iter()
            .filter(|p| wanted(p))
            .map(|p| {
                let lambda = &self.tensors[&p.name];
                let w = discretize_with(lambda.view(), &p.layout, plan, Some(&bases))
                    .map_err(|e| ModelError::invalid(format!("{}: {e}", p.name)))?;
                Ok((p.name.clone(), w))
            })
            .collect()
    }

    /// Check that every parameter can be discretized under `plan` and that the graph's shapes
    /// flow, without computing anything large.
    ///
    /// # Errors
    /// The first problem found (a group missing, a tensor too large, quadrature on fewer than
    /// two points, a shape that does not flow).
    pub fn check_plan(&self, plan: &Resolved) -> Result<(), ModelError> {
        for p in &self.doc.params {
            let shape = p.layout.discrete_shape(plan)?;
            checked_elements(&shape)
                .map_err(|e| ModelError::invalid(format!("{}: {e}", p.name)))?;
            p.layout
                .quadrature_weights(plan)
                .map_err(|e| ModelError::invalid(format!("{}: {e}", p.name)))?;
        }
        self.infer_shapes(plan)?;
        Ok(())
    }

    /// Number of discrete parameters under `plan`.
    ///
    /// # Errors
    /// A group missing from the plan.
    pub fn param_count(&self, plan: &Resolved) -> Result<usize, ModelError> {
        let mut total = 0_usize;
        for p in &self.doc.params {
            total += checked_elements(&p.layout.discrete_shape(plan)?)?;
        }
        Ok(total)
    }

    /// Number of discrete parameters each group's axes touch under `plan` (for slider labels).
    ///
    /// # Errors
    /// A group missing from the plan.
    pub fn group_param_counts(
        &self,
        plan: &Resolved,
    ) -> Result<BTreeMap<GroupId, usize>, ModelError> {
        let mut counts = BTreeMap::new();
        for p in &self.doc.params {
            let n = checked_elements(&p.layout.discrete_shape(plan)?)?;
            let groups: BTreeSet<GroupId> = p
                .layout
                .axes
                .iter()
                .filter_map(|a| match a {
                    AxisKind::Channel { group } => Some(*group),
                    _ => None,
                })
                .collect();
            for g in groups {
                *counts.entry(g).or_insert(0) += n;
            }
        }
        Ok(counts)
    }

    /// Shapes of every value of the graph under `plan`, for a batch of one: each node's room
    /// gives its output's shape from its inputs' ([`Layer::output_shape`](crate::layers::Layer::output_shape)).
    ///
    /// # Errors
    /// A shape that does not flow, described with the node.
    pub fn infer_shapes(
        &self,
        plan: &Resolved,
    ) -> Result<BTreeMap<String, Vec<usize>>, ModelError> {
        let cx = ShapeCx { model: self, plan };
        let mut shapes: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, node) in self.doc.graph.iter().enumerate() {
            let fail = |d: String| {
                ModelError::invalid(format!("node {i} ({} → {}): {d}", node.op.name(), node.out))
            };
            let ins: Vec<&[usize]> = node
                .inputs
                .iter()
                .map(|n| {
                    shapes
                        .get(n)
                        .map(Vec::as_slice)
                        .ok_or_else(|| fail(format!("input {n:?} is not computed before")))
                })
                .collect::<Result<_, _>>()?;
            let layer = node.op.layer();
            if ins.len() != layer.arity() {
                return Err(fail(format!(
                    "takes {} inputs, got {}",
                    layer.arity(),
                    ins.len()
                )));
            }
            let out = layer.output_shape(&cx, &ins).map_err(fail)?;
            if shapes.insert(node.out.clone(), out).is_some() {
                return Err(fail(format!("value {:?} is written twice", node.out)));
            }
        }
        Ok(shapes)
    }

    /// Name of the graph's output value.
    #[must_use]
    pub fn output_name(&self) -> &str {
        self.doc.graph.last().map_or("", |n| n.out.as_str())
    }

    /// Check the whole model (see the module doc).
    ///
    /// # Errors
    /// The first inconsistency found, described.
    pub fn validate(&self) -> Result<(), ModelError> {
        let doc = &self.doc;
        let spec = &doc.input;
        if spec.channels == 0 || spec.mean.len() != spec.channels || spec.std.len() != spec.channels
        {
            return Err(ModelError::invalid(format!(
                "input: {} channels with {} means and {} stds",
                spec.channels,
                spec.mean.len(),
                spec.std.len()
            )));
        }
        if spec
            .std
            .iter()
            .chain(&spec.mean)
            .chain([&spec.max_value])
            .any(|v| !v.is_finite())
            || spec.std.contains(&0.0)
            || spec.max_value == 0.0
        {
            return Err(ModelError::invalid(
                "input: normalisation constants must be finite, std and max_value non-zero",
            ));
        }
        for (what, n) in [("height", spec.height), ("width", spec.width)] {
            if n == 0 || n > MAX_RESOLUTION {
                return Err(ModelError::invalid(format!(
                    "input {what} {n} is out of range 1..={MAX_RESOLUTION}"
                )));
            }
        }
        if doc.classes.is_empty() {
            return Err(ModelError::invalid("no class names"));
        }
        let mut ids = BTreeSet::new();
        for g in &doc.groups {
            if !ids.insert(g.id) {
                return Err(ModelError::invalid(format!("group {} appears twice", g.id)));
            }
            if g.original_size == 0 || g.original_size > MAX_GROUP_SIZE {
                return Err(ModelError::invalid(format!(
                    "group {}: original size {} is out of range 1..={MAX_GROUP_SIZE}",
                    g.id, g.original_size
                )));
            }
            if let Some(points) = &g.learned {
                if points.is_empty() || points.len() > MAX_GROUP_SIZE {
                    return Err(ModelError::invalid(format!(
                        "group {}: learned partition has {} points",
                        g.id,
                        points.len()
                    )));
                }
                if let Some(i) = points.iter().position(|v| !v.is_finite()) {
                    return Err(ModelError::invalid(format!(
                        "group {}: learned point {i} is {}",
                        g.id, points[i]
                    )));
                }
            }
        }
        let mut names = BTreeSet::new();
        for p in &doc.params {
            if !names.insert(p.name.as_str()) {
                return Err(ModelError::invalid(format!(
                    "parameter {} appears twice",
                    p.name
                )));
            }
            checked_elements(&p.layout.shape)
                .map_err(|e| ModelError::invalid(format!("{}: {e}", p.name)))?;
            let t = self.tensors.get(&p.name).ok_or_else(|| {
                ModelError::invalid(format!("parameter {} has no tensor", p.name))
            })?;
            check_lambda_shape(t.shape(), &p.layout)
                .map_err(|e| ModelError::invalid(format!("{}: {e}", p.name)))?;
            if let Some((i, v)) = t.iter().enumerate().find(|(_, v)| !v.is_finite()) {
                return Err(ModelError::invalid(format!(
                    "{}: value {i} is {v} (weights must be finite)",
                    p.name
                )));
            }
            for a in &p.layout.axes {
                if let AxisKind::Channel { group } = a
                    && !ids.contains(group)
                {
                    return Err(ModelError::invalid(format!(
                        "{}: axis refers to unknown group {group}",
                        p.name
                    )));
                }
            }
        }
        match doc.graph.first() {
            Some(Node {
                op: Op::Input(_), ..
            }) => {}
            _ => {
                return Err(ModelError::invalid(
                    "the graph must start with an input node",
                ));
            }
        }
        for (i, node) in doc.graph.iter().enumerate() {
            let layer = node.op.layer();
            let fail =
                |d: String| ModelError::invalid(format!("node {i} ({}): {d}", node.op.name()));
            for (name, roles) in layer.param_axes() {
                let p = self
                    .param(name)
                    .ok_or_else(|| fail(format!("uses unknown parameter {name:?}")))?;
                check_axis_roles(&p.layout, &roles).map_err(|d| fail(format!("{name}: {d}")))?;
            }
            layer.check(self).map_err(fail)?;
        }
        let plan = self.resolve(&self.default_plan())?;
        let shapes = self.infer_shapes(&plan)?;
        let out = &shapes[self.output_name()];
        if out.len() != 2 || out[1] != doc.classes.len() {
            return Err(ModelError::invalid(format!(
                "the output {:?} is {out:?} but there are {} classes",
                self.output_name(),
                doc.classes.len()
            )));
        }
        Ok(())
    }
}
