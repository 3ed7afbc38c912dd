//! Export: the discretized network as a plain safetensors state_dict.
//!
//! Keys are the original module paths (`conv_1.weight`, `linear.bias`, ...), so
//! `safetensors.torch.load_file` gives a dict that `load_state_dict` takes into the discrete
//! PyTorch model built at the exported sizes. The metadata records the sizes and partition
//! used (`format` is `pt`, as the safetensors PyTorch helpers write).

use std::collections::HashMap;
use std::path::Path;

use super::{Model, ModelError};
use crate::inn::Resolved;

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    /// Number of tensors.
    pub tensors: usize,
    /// Number of parameters (elements).
    pub parameters: usize,
}

/// Write `weights` (the discretization of `model` under `plan`, from either engine) as a
/// discrete state_dict to `path` (atomically).
///
/// # Errors
/// I/O failures; nothing is written then.
pub fn export(
    model: &Model,
    plan: &Resolved,
    weights: &super::DiscreteWeights,
    path: &Path,
) -> anyhow::Result<ExportSummary> {
    let sizes: serde_json::Map<String, serde_json::Value> = plan
        .partitions
        .iter()
        .map(|(g, p)| (g.to_string(), p.len().into()))
        .collect();
    let info = serde_json::json!({
        "model": model.doc.name,
        "sizes": sizes,
        "resolution": plan.resolution,
        "partitions": plan.partitions,
        "tool": format!("innscope {} export", env!("CARGO_PKG_VERSION")),
    });
    let metadata = HashMap::from([
        ("format".to_string(), "pt".to_string()),
        ("innscope".to_string(), info.to_string()),
    ]);
    let summary = ExportSummary {
        tensors: weights.len(),
        parameters: weights.values().map(ndarray::ArrayBase::len).sum(),
    };
    super::st::write_f32(path, weights, metadata)?;
    Ok(summary)
}

/// Read a discrete state_dict written by [`export`] (or any f32 safetensors file).
///
/// # Errors
/// Unreadable files.
pub fn read_state_dict(path: &Path) -> Result<super::DiscreteWeights, ModelError> {
    let origin = path.display().to_string();
    let file_err = |detail: String| ModelError::File {
        path: origin.clone(),
        detail,
    };
    let bytes = std::fs::read(path).map_err(|e| file_err(e.to_string()))?;
    let st = safetensors::SafeTensors::deserialize(&bytes).map_err(|e| file_err(e.to_string()))?;
    st.iter()
        .map(|(k, v)| {
            Ok((
                k.to_string(),
                super::st::to_f32(&v).map_err(|e| file_err(format!("{k}: {e}")))?,
            ))
        })
        .collect()
}
