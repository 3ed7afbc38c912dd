//! The native format, `*.inn.safetensors`: one self-describing safetensors file.
//!
//! # Schema, version 1
//!
//! The safetensors header's `__metadata__` holds three strings:
//!
//! | key       | value |
//! |-----------|-------|
//! | `format`  | `"innscope.inn"` |
//! | `version` | `"1"` |
//! | `model`   | a JSON [`ModelDoc`] |
//!
//! The JSON document:
//!
//! ```json
//! {
//!   "name": "mnist_example",
//!   "input": { "channels": 1, "height": 28, "width": 28,
//!              "mean": [0.5], "std": [0.5], "max_value": 255.0 },
//!   "classes": ["T-shirt/top", "..."],
//!   "groups": [ { "id": 0, "original_size": 16, "label": "conv_1 out / conv_2 in" } ],
//!   "params": [
//!     { "name": "conv_2.weight", "shape": [32, 16, 5, 5],
//!       "axes": [ {"kind": "channel", "group": 2}, {"kind": "channel", "group": 0},
//!                 {"kind": "discrete"}, {"kind": "discrete"} ],
//!       "quadrature": { "dim": 1, "tau": 7.5 } }
//!   ],
//!   "graph": [
//!     { "op": "input", "out": "x" },
//!     { "op": "conv2d", "in": ["x"], "out": "c1", "weight": "conv_1.weight",
//!       "bias": "conv_1.bias", "stride": [1, 1], "padding": [1, 1],
//!       "dilation": [1, 1], "groups": 1, "padding_mode": "replicate" }
//!   ],
//!   "provenance": { "tool": "innscope 0.1.0", "source": "..." }
//! }
//! ```
//!
//! - `shape` is the discrete shape at full size and native resolution.
//! - `axes` has one entry per dimension: `discrete`, `channel` (continuous, sampled at the
//!   group's partition), `spatial_h` / `spatial_w` (continuous kernel axes, resampled with the
//!   input resolution).
//! - `quadrature` (optional): trapezoid weights along `dim` times `tau`.
//! - Graph ops are those of [`Op`](super::Op), with their attributes inline.
//!
//! Tensors, all float32:
//!
//! | key | contents |
//! |-----|----------|
//! | `params/{name}` | λ of a continuous parameter (control values, one axis per dimension, in the tensor's own axis order), or the value of a discrete one |
//! | `partitions/{group id}` | learned partition points of a group, used as stored |
//!
//! A reader refuses a newer major version, unknown formats, non-finite values and any
//! inconsistency (see [`Model::validate`](super::Model::validate)).

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::SafeTensors;

use super::st::{to_f32, write_f32};
use super::{Model, ModelDoc, ModelError};

/// Value of the `format` metadata key.
pub const FORMAT: &str = "innscope.inn";
/// Schema version written by this build.
pub const VERSION: u32 = 1;

const PARAM_PREFIX: &str = "params/";
const PARTITION_PREFIX: &str = "partitions/";

/// Read a model from bytes of a `*.inn.safetensors` file; `origin` names it in errors.
///
/// # Errors
/// Malformed or truncated files, other formats, newer versions, inconsistent models.
pub fn from_bytes(bytes: &[u8], origin: &str) -> Result<Model, ModelError> {
    let file_err = |detail: String| ModelError::File {
        path: origin.to_string(),
        detail,
    };
    let st = SafeTensors::deserialize(bytes)
        .map_err(|e| file_err(format!("not a readable safetensors file ({e})")))?;
    let (_, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| file_err(format!("bad header ({e})")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    match meta.get("format").map(String::as_str) {
        Some(FORMAT) => {}
        Some(other) if other != "pt" => {
            return Err(file_err(format!(
                "format is {other:?}, expected {FORMAT:?}"
            )));
        }
        _ => {
            return Err(file_err(
                "no innscope metadata: a plain safetensors file (an export?), not an INN; \
                 TorchIntegral checkpoints are imported with `innscope import-torchintegral`"
                    .into(),
            ));
        }
    }
    let version: u32 = meta
        .get("version")
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| file_err("missing or unreadable schema version".into()))?;
    if version > VERSION {
        return Err(file_err(format!(
            "schema version {version} is newer than this innscope reads ({VERSION}); update innscope"
        )));
    }
    let doc_json = meta
        .get("model")
        .ok_or_else(|| file_err("missing model description".into()))?;
    let mut doc: ModelDoc =
        serde_json::from_str(doc_json).map_err(|e| file_err(format!("model description: {e}")))?;
    let mut tensors = BTreeMap::new();
    for (name, view) in st.iter() {
        let array = to_f32(&view).map_err(|e| file_err(format!("tensor {name}: {e}")))?;
        if let Some(param) = name.strip_prefix(PARAM_PREFIX) {
            tensors.insert(param.to_string(), array);
        } else if let Some(id) = name.strip_prefix(PARTITION_PREFIX) {
            let id: u32 = id
                .parse()
                .map_err(|_| file_err(format!("tensor {name}: bad group id")))?;
            let group = doc
                .groups
                .iter_mut()
                .find(|g| g.id == id)
                .ok_or_else(|| file_err(format!("tensor {name}: no group {id}")))?;
            if array.ndim() != 1 {
                return Err(file_err(format!(
                    "tensor {name}: a partition must be 1-D, is {:?}",
                    array.shape()
                )));
            }
            group.learned = Some(array.iter().copied().collect());
        } else {
            return Err(file_err(format!("unexpected tensor {name:?}")));
        }
    }
    Model::new(doc, tensors).map_err(|e| file_err(e.to_string()))
}

/// Read a model from a `*.inn.safetensors` file.
///
/// # Errors
/// As [`from_bytes`], plus I/O errors.
pub fn read(path: &Path) -> Result<Model, ModelError> {
    let origin = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| ModelError::File {
        path: origin.clone(),
        detail: e.to_string(),
    })?;
    from_bytes(&bytes, &origin)
}

/// Write a model to `path` (atomically).
///
/// # Errors
/// I/O or serialisation failures.
pub fn write(model: &Model, path: &Path) -> anyhow::Result<()> {
    let mut tensors: BTreeMap<String, _> = model
        .tensors
        .iter()
        .map(|(k, v)| (format!("{PARAM_PREFIX}{k}"), v.clone()))
        .collect();
    for g in &model.doc.groups {
        if let Some(points) = &g.learned {
            tensors.insert(
                format!("{PARTITION_PREFIX}{}", g.id),
                ndarray::ArrayD::from_shape_vec(ndarray::IxDyn(&[points.len()]), points.clone())?,
            );
        }
    }
    let metadata = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("version".to_string(), VERSION.to_string()),
        ("model".to_string(), serde_json::to_string(&model.doc)?),
    ]);
    write_f32(path, &tensors, metadata)
}
