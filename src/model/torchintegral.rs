//! Import of TorchIntegral checkpoints: a `torch.save` state_dict plus an architecture
//! manifest (the schema of the TorchIntegral reference fixtures), turned into a native model.
//!
//! TorchIntegral stores each parametrized tensor's control values as a 4-D `(1, P, N_a, N_b)`
//! array: `N_a`, `N_b` along the continuous dimensions (`N_b = 1` with one), `P` the product of
//! the remaining dimensions in their original order. The importer moves those axes back to
//! the tensor's own order, which is how the native format stores λ.
//!
//! Key layouts read: the current `{module}.parametrizations.{attr}.original`, the June-2023
//! `{module}.parametrizations.{attr}.0.weight_function.values`, plain `{module}.{attr}` for
//! tensors that are not parametrized, each with an optional `model.` and/or `module.` prefix.
//! Learned partitions (`TrainableGrid1D`) come from `groups.{id}.grid.curr_grid` or from a
//! member's `...grid.grid_objects.{k}.curr_grid`.

use std::collections::BTreeMap;
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use serde::Deserialize;
use serde_json::Value;

use super::graph::{Node, Op};
use super::pickle::read_checkpoint;
use super::{InputSpec, Model, ModelDoc, ModelError, ParamSpec};
use crate::inn::discretize::checked_elements;
use crate::inn::{AxisKind, Group, GroupId, ParamLayout, Quadrature};
use crate::layers::conv2d::{Conv2d, PaddingMode};
use crate::layers::{
    activation::{Gelu, Relu, Silu},
    add::Add,
    batch_norm::BatchNorm2d,
    flatten::Flatten,
    global_avg_pool::GlobalAvgPool,
    input::Input,
    linear::Linear,
    pool::{AvgPool2d, MaxPool2d},
    select::Select,
    softmax::Softmax,
};

/// The manifest: only the fields the import needs.
#[derive(Debug, Deserialize)]
struct Manifest {
    name: String,
    task: Task,
    input_normalization: Normalization,
    layers: Vec<Layer>,
    graph: Vec<ManifestNode>,
    parameters: Vec<ManifestParam>,
    groups: Vec<ManifestGroup>,
    #[serde(default)]
    source_library: Value,
    #[serde(default)]
    training: Value,
}

#[derive(Debug, Deserialize)]
struct Task {
    class_names: Vec<String>,
}

#[derive(Debug, Deserialize)]
struct Normalization {
    mean: Vec<f32>,
    std: Vec<f32>,
}

#[derive(Debug, Deserialize)]
struct Layer {
    module: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    stride: Option<Pair>,
    #[serde(default)]
    padding: Option<Pair>,
    #[serde(default)]
    dilation: Option<Pair>,
    #[serde(default)]
    groups: Option<usize>,
    #[serde(default)]
    padding_mode: Option<String>,
    #[serde(default)]
    bias: Option<bool>,
    #[serde(default)]
    eps: Option<f32>,
    #[serde(default)]
    affine: Option<bool>,
}

/// An int or a pair of ints, as PyTorch modules accept.
#[derive(Clone, Copy, Debug, Deserialize)]
#[serde(untagged)]
enum Pair {
    One(usize),
    Two([usize; 2]),
}

impl Pair {
    fn get(self) -> [usize; 2] {
        match self {
            Self::One(v) => [v, v],
            Self::Two(v) => v,
        }
    }
}

#[derive(Debug, Deserialize)]
struct ManifestNode {
    op: String,
    #[serde(default)]
    module: Option<String>,
    #[serde(rename = "in", default)]
    inputs: Vec<String>,
    out: String,
    #[serde(default)]
    kernel: Option<Pair>,
    #[serde(default)]
    stride: Option<Pair>,
    #[serde(default)]
    padding: Option<Pair>,
    #[serde(default)]
    expr: Option<String>,
    #[serde(default)]
    shape: Option<Vec<Value>>,
    #[serde(default)]
    count_include_pad: Option<bool>,
}

#[derive(Debug, Deserialize)]
struct ManifestParam {
    param: String,
    #[serde(default)]
    state_dict_key: Option<String>,
    full_size_shape: Vec<usize>,
    #[serde(default)]
    continuous_dims: Vec<usize>,
    #[serde(default)]
    group_ids: Vec<GroupId>,
    #[serde(default)]
    quadrature: bool,
    #[serde(default)]
    quadrature_dim: Option<usize>,
    #[serde(default)]
    tau: Option<f32>,
}

#[derive(Debug, Deserialize)]
struct ManifestGroup {
    group_id: GroupId,
    original_size: usize,
    #[serde(default)]
    members: Vec<(String, usize)>,
}

fn invalid(detail: impl Into<String>) -> ModelError {
    ModelError::Invalid(detail.into())
}

/// Import a checkpoint and its manifest from files.
///
/// # Errors
/// Unreadable or refused checkpoints, manifests that do not describe the checkpoint.
pub fn import(checkpoint: &Path, manifest: &Path) -> Result<Model, ModelError> {
    let text = std::fs::read_to_string(manifest).map_err(|e| ModelError::File {
        path: manifest.display().to_string(),
        detail: e.to_string(),
    })?;
    let state = read_checkpoint(checkpoint).map_err(|e| ModelError::File {
        path: checkpoint.display().to_string(),
        detail: e.to_string(),
    })?;
    let provenance = serde_json::json!({
        "tool": format!("innscope {} import-torchintegral", env!("CARGO_PKG_VERSION")),
        "checkpoint": checkpoint.file_name().map(|n| n.to_string_lossy().into_owned()),
        "manifest": manifest.file_name().map(|n| n.to_string_lossy().into_owned()),
    });
    from_parts(&text, &state, provenance).map_err(|e| match e {
        ModelError::Invalid(d) => ModelError::File {
            path: manifest.display().to_string(),
            detail: d,
        },
        other => other,
    })
}

/// Import from a manifest's JSON text and a state_dict already read.
///
/// # Errors
/// A manifest that does not parse or does not describe the tensors.
pub fn from_parts(
    manifest_json: &str,
    state: &BTreeMap<String, ArrayD<f32>>,
    mut provenance: Value,
) -> Result<Model, ModelError> {
    let m: Manifest =
        serde_json::from_str(manifest_json).map_err(|e| invalid(format!("manifest: {e}")))?;
    if let Value::Object(p) = &mut provenance {
        p.insert("source_library".into(), m.source_library.clone());
        p.insert("training".into(), m.training.clone());
        p.insert(
            "format".into(),
            "TorchIntegral state_dict + manifest".into(),
        );
    }
    let group_sizes: BTreeMap<GroupId, usize> = m
        .groups
        .iter()
        .map(|g| (g.group_id, g.original_size))
        .collect();
    let mut params = Vec::new();
    let mut tensors = BTreeMap::new();
    for p in &m.parameters {
        let (spec, lambda) = import_param(p, state, &group_sizes)?;
        tensors.insert(spec.name.clone(), lambda);
        params.push(spec);
    }
    let groups = import_groups(&m, state, &tensors)?;
    let graph = import_graph(&m)?;
    let input = import_input(&m)?;
    let doc = ModelDoc {
        name: m.name.clone(),
        input,
        classes: m.task.class_names.clone(),
        groups,
        params,
        graph,
        provenance,
    };
    Model::new(doc, tensors)
}

/// Split `conv_1.weight` into (`conv_1`, `weight`).
fn split_param(name: &str) -> Result<(&str, &str), ModelError> {
    name.rsplit_once('.')
        .ok_or_else(|| invalid(format!("parameter name {name:?} has no module path")))
}

const PREFIXES: [&str; 4] = ["model.", "module.model.", "module.", ""];

fn find_tensor<'a>(
    p: &ManifestParam,
    state: &'a BTreeMap<String, ArrayD<f32>>,
) -> Result<(&'a str, &'a ArrayD<f32>), ModelError> {
    let (module, attr) = split_param(&p.param)?;
    let mut candidates: Vec<String> = p.state_dict_key.iter().cloned().collect();
    for prefix in PREFIXES {
        candidates.push(format!("{prefix}{module}.parametrizations.{attr}.original"));
        candidates.push(format!(
            "{prefix}{module}.parametrizations.{attr}.0.weight_function.values"
        ));
        candidates.push(format!("{prefix}{}", p.param));
    }
    candidates
        .iter()
        .find_map(|k| state.get_key_value(k.as_str()))
        .map(|(k, v)| (k.as_str(), v))
        .ok_or_else(|| {
            invalid(format!(
                "{}: no tensor in the checkpoint (looked for {})",
                p.param,
                candidates[..candidates.len().min(3)].join(", ")
            ))
        })
}

/// One parameter. The layout's shape is the full-size shape with every channel axis at its
/// group's original size (a manifest's `full_size_shape` follows a trainable grid's size).
fn import_param(
    p: &ManifestParam,
    state: &BTreeMap<String, ArrayD<f32>>,
    group_sizes: &BTreeMap<GroupId, usize>,
) -> Result<(ParamSpec, ArrayD<f32>), ModelError> {
    let name = &p.param;
    let full = &p.full_size_shape;
    checked_elements(full)
        .map_err(|e| invalid(format!("{name}: full_size_shape {full:?}: {e}")))?;
    let (key, stored) = find_tensor(p, state)?;
    let cont = &p.continuous_dims;
    if cont.len() != p.group_ids.len() {
        return Err(invalid(format!(
            "{name}: {} continuous dims but {} group ids",
            cont.len(),
            p.group_ids.len()
        )));
    }
    if cont.len() > 2
        || cont.iter().any(|&d| d >= full.len())
        || (cont.len() == 2 && cont[0] == cont[1])
    {
        return Err(invalid(format!(
            "{name}: continuous dims {cont:?} do not fit shape {full:?}"
        )));
    }
    let lambda = if cont.is_empty() {
        if stored.len() != full.iter().product::<usize>() {
            return Err(invalid(format!(
                "{name}: the manifest says shape {full:?} but {key} has shape {:?}",
                stored.shape()
            )));
        }
        stored
            .to_shape(IxDyn(full))
            .map_err(|e| invalid(format!("{name}: {e}")))?
            .to_owned()
    } else {
        unpack_lambda(name, key, stored, full, cont)?
    };
    let mut axes = vec![AxisKind::Discrete; full.len()];
    let mut shape = full.clone();
    for (&d, &g) in cont.iter().zip(&p.group_ids) {
        axes[d] = AxisKind::Channel { group: g };
        shape[d] = *group_sizes.get(&g).ok_or_else(|| {
            invalid(format!(
                "{name}: dim {d} belongs to group {g}, which the manifest lacks"
            ))
        })?;
    }
    let quadrature = if p.quadrature {
        let dim = p.quadrature_dim.unwrap_or(1);
        let tau = p
            .tau
            .ok_or_else(|| invalid(format!("{name}: quadrature without tau")))?;
        Some(Quadrature { dim, tau })
    } else {
        None
    };
    let layout = ParamLayout {
        shape,
        axes,
        quadrature,
    };
    Ok((
        ParamSpec {
            name: name.clone(),
            layout,
        },
        lambda,
    ))
}

/// `(1, P, N_a, N_b)` → the tensor's own axis order with control sizes on continuous axes.
fn unpack_lambda(
    name: &str,
    key: &str,
    stored: &ArrayD<f32>,
    full: &[usize],
    cont: &[usize],
) -> Result<ArrayD<f32>, ModelError> {
    let s = stored.shape();
    let rest: Vec<usize> = (0..full.len()).filter(|d| !cont.contains(d)).collect();
    let planes: usize = rest.iter().map(|&d| full[d]).product();
    let want_b = if cont.len() == 1 { Some(1) } else { None };
    let fits = s.len() == 4 && s[0] == 1 && s[1] == planes && want_b.is_none_or(|b| s[3] == b);
    if !fits {
        return Err(invalid(format!(
            "{name}: the manifest's full_size_shape {full:?} with continuous dims {cont:?} implies \
             control values (1, {planes}, N, {}) but {key} has shape {s:?}",
            if cont.len() == 1 {
                "1".to_string()
            } else {
                "M".to_string()
            }
        )));
    }
    // Source axis order: remaining dims (in order), then the continuous dims.
    let mut src_dims: Vec<usize> = rest.iter().map(|&d| full[d]).collect();
    src_dims.push(s[2]);
    if cont.len() == 2 {
        src_dims.push(s[3]);
    }
    let src_order: Vec<usize> = rest.iter().copied().chain(cont.iter().copied()).collect();
    let flat = stored.as_standard_layout();
    let arr = ArrayD::from_shape_vec(IxDyn(&src_dims), flat.iter().copied().collect())
        .map_err(|e| invalid(format!("{name}: {e}")))?;
    let perm: Vec<usize> = (0..full.len())
        .map(|d| {
            src_order
                .iter()
                .position(|&x| x == d)
                .expect("every dim is in src_order")
        })
        .collect();
    Ok(arr
        .permuted_axes(IxDyn(&perm))
        .as_standard_layout()
        .to_owned())
}

fn import_groups(
    m: &Manifest,
    state: &BTreeMap<String, ArrayD<f32>>,
    lambdas: &BTreeMap<String, ArrayD<f32>>,
) -> Result<Vec<Group>, ModelError> {
    // Learned grids by group: the group's own key, else a member's grid object.
    let mut learned: BTreeMap<GroupId, Vec<f32>> = BTreeMap::new();
    for (key, value) in state {
        let Some(stem) = key.strip_suffix(".curr_grid") else {
            continue;
        };
        let stem = PREFIXES
            .iter()
            .find_map(|p| stem.strip_prefix(p).filter(|_| !p.is_empty()))
            .unwrap_or(stem);
        let group = if let Some(id) = stem
            .strip_prefix("groups.")
            .and_then(|s| s.strip_suffix(".grid"))
        {
            id.parse::<GroupId>().ok()
        } else {
            m.parameters.iter().find_map(|p| {
                let (module, attr) = p.param.rsplit_once('.')?;
                let k: usize = stem
                    .strip_prefix(&format!(
                        "{module}.parametrizations.{attr}.0.grid.grid_objects."
                    ))?
                    .parse()
                    .ok()?;
                p.group_ids.get(k).copied()
            })
        };
        let Some(group) = group else {
            continue;
        };
        if value.ndim() != 1 {
            return Err(invalid(format!(
                "{key}: a grid must be 1-D, is {:?}",
                value.shape()
            )));
        }
        let points: Vec<f32> = value.iter().copied().collect();
        if let Some(previous) = learned.get(&group)
            && *previous != points
        {
            return Err(invalid(format!(
                "{key}: disagrees with another stored grid of group {group}"
            )));
        }
        learned.insert(group, points);
    }
    let mut groups = Vec::new();
    for g in &m.groups {
        for (param, dim) in &g.members {
            let p = m
                .parameters
                .iter()
                .find(|p| p.param == *param)
                .ok_or_else(|| {
                    invalid(format!(
                        "group {}: member {param} is not a parameter",
                        g.group_id
                    ))
                })?;
            let k = p.continuous_dims.iter().position(|d| d == dim);
            if k.and_then(|k| p.group_ids.get(k)) != Some(&g.group_id) {
                return Err(invalid(format!(
                    "group {}: member ({param}, {dim}) is not a continuous axis of that group",
                    g.group_id
                )));
            }
            let control = lambdas
                .get(param)
                .and_then(|l| l.shape().get(*dim))
                .copied()
                .unwrap_or(0);
            if control != g.original_size {
                return Err(invalid(format!(
                    "group {}: original size {} but {param} has {control} control values along dim {dim}",
                    g.group_id, g.original_size
                )));
            }
        }
        let label = g
            .members
            .iter()
            .map(|(p, d)| format!("{p}[{d}]"))
            .collect::<Vec<_>>()
            .join(", ");
        groups.push(Group {
            id: g.group_id,
            original_size: g.original_size,
            label,
            learned: learned.remove(&g.group_id),
        });
    }
    if let Some(id) = learned.keys().next() {
        return Err(invalid(format!(
            "a learned grid names group {id}, which the manifest lacks"
        )));
    }
    Ok(groups)
}

fn layer<'a>(
    m: &'a Manifest,
    module: Option<&str>,
    op: &str,
    kind: &str,
) -> Result<&'a Layer, ModelError> {
    let module = module.ok_or_else(|| invalid(format!("graph op {op} names no module")))?;
    let l = m
        .layers
        .iter()
        .find(|l| l.module.as_deref() == Some(module))
        .ok_or_else(|| {
            invalid(format!(
                "graph op {op}: module {module:?} is not among the layers"
            ))
        })?;
    if !l.kind.eq_ignore_ascii_case(kind) {
        return Err(invalid(format!(
            "graph op {op}: module {module:?} is a {}, expected {kind}",
            l.kind
        )));
    }
    Ok(l)
}

fn has_param(m: &Manifest, name: &str) -> bool {
    m.parameters.iter().any(|p| p.param == name)
}

fn import_graph(m: &Manifest) -> Result<Vec<Node>, ModelError> {
    let mut nodes = Vec::new();
    for n in &m.graph {
        let module = n.module.as_deref();
        let op = match n.op.as_str() {
            "input" => Op::Input(Input),
            "conv2d" => {
                let l = layer(m, module, &n.op, "Conv2d")?;
                let module = module.unwrap_or_default();
                let bias = format!("{module}.bias");
                Op::Conv2d(Conv2d {
                    weight: format!("{module}.weight"),
                    bias: (l.bias != Some(false) && has_param(m, &bias)).then_some(bias),
                    stride: l.stride.map_or([1, 1], Pair::get),
                    padding: l.padding.map_or([0, 0], Pair::get),
                    dilation: l.dilation.map_or([1, 1], Pair::get),
                    groups: l.groups.unwrap_or(1),
                    padding_mode: match l.padding_mode.as_deref() {
                        None | Some("zeros") => PaddingMode::Zeros,
                        Some("replicate") => PaddingMode::Replicate,
                        Some(other) => {
                            return Err(invalid(format!(
                                "{module}: padding_mode {other:?} is not supported"
                            )));
                        }
                    },
                })
            }
            "linear" => {
                layer(m, module, &n.op, "Linear")?;
                let module = module.unwrap_or_default();
                let bias = format!("{module}.bias");
                Op::Linear(Linear {
                    weight: format!("{module}.weight"),
                    bias: has_param(m, &bias).then_some(bias),
                })
            }
            "relu" => Op::Relu(Relu),
            "gelu" => Op::Gelu(Gelu),
            "silu" => Op::Silu(Silu),
            "avg_pool2d" | "max_pool2d" => {
                let kernel = n
                    .kernel
                    .ok_or_else(|| invalid(format!("{} {}: no kernel", n.op, n.out)))?
                    .get();
                let stride = n.stride.map_or(kernel, Pair::get);
                let padding = n.padding.map_or([0, 0], Pair::get);
                if n.op == "avg_pool2d" {
                    Op::AvgPool2d(AvgPool2d {
                        kernel,
                        stride,
                        padding,
                        count_include_pad: n.count_include_pad.unwrap_or(true),
                    })
                } else {
                    Op::MaxPool2d(MaxPool2d {
                        kernel,
                        stride,
                        padding,
                    })
                }
            }
            "adaptive_avg_pool2d" | "global_avg_pool" => Op::GlobalAvgPool(GlobalAvgPool),
            "batch_norm2d" | "batch_norm" => {
                let l = layer(m, module, &n.op, "BatchNorm2d")?;
                let module = module.unwrap_or_default();
                let affine = l.affine != Some(false);
                Op::BatchNorm2d(BatchNorm2d {
                    weight: affine.then(|| format!("{module}.weight")),
                    bias: affine.then(|| format!("{module}.bias")),
                    running_mean: format!("{module}.running_mean"),
                    running_var: format!("{module}.running_var"),
                    eps: l.eps.unwrap_or(1e-5),
                })
            }
            "add" => Op::Add(Add),
            "flatten" => Op::Flatten(Flatten),
            "softmax" => Op::Softmax(Softmax),
            "select" => {
                let expr = n.expr.as_deref().unwrap_or_default();
                parse_select(expr).ok_or_else(|| {
                    invalid(format!("select {expr:?}: only x[:, :, h, w] is supported"))
                })?
            }
            other => return Err(invalid(format!("graph op {other:?} is not supported"))),
        };
        nodes.push(Node {
            inputs: n.inputs.clone(),
            out: n.out.clone(),
            op,
        });
    }
    Ok(nodes)
}

/// Parse `[:, :, h, w]` (with or without a leading `x`).
fn parse_select(expr: &str) -> Option<Op> {
    let inner = expr
        .trim()
        .trim_start_matches('x')
        .trim()
        .strip_prefix('[')?
        .strip_suffix(']')?;
    let parts: Vec<&str> = inner.split(',').map(str::trim).collect();
    match parts.as_slice() {
        [":", ":", h, w] => Some(Op::Select(Select {
            h: h.parse().ok()?,
            w: w.parse().ok()?,
        })),
        _ => None,
    }
}

fn import_input(m: &Manifest) -> Result<InputSpec, ModelError> {
    let shape = m
        .graph
        .iter()
        .find(|n| n.op == "input")
        .and_then(|n| n.shape.as_ref())
        .ok_or_else(|| invalid("the graph's input node has no shape"))?;
    let dims: Vec<usize> = shape
        .iter()
        .skip(1)
        .map(|v| v.as_u64().and_then(|v| usize::try_from(v).ok()))
        .collect::<Option<_>>()
        .ok_or_else(|| invalid(format!("input shape {shape:?} is not [N, C, H, W]")))?;
    let [c, h, w] = dims[..] else {
        return Err(invalid(format!(
            "input shape {shape:?} is not [N, C, H, W]"
        )));
    };
    Ok(InputSpec {
        channels: c,
        height: h,
        width: w,
        mean: m.input_normalization.mean.clone(),
        std: m.input_normalization.std.clone(),
        max_value: 255.0,
    })
}
