//! Small helpers over the `safetensors` crate: f32 tensors in and out, atomic writes.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use safetensors::tensor::{Dtype, TensorView};

use crate::inn::discretize::checked_elements;

/// Little-endian bytes of a tensor (standard layout).
#[must_use]
pub fn f32_bytes(array: &ArrayD<f32>) -> Vec<u8> {
    array.iter().flat_map(|v| v.to_le_bytes()).collect()
}

/// Read a tensor as f32 (F32, F64, F16, BF16 and integer types are converted).
///
/// # Errors
/// An unsupported dtype or a shape above the element limit.
pub fn to_f32(view: &TensorView<'_>) -> Result<ArrayD<f32>, String> {
    let shape = view.shape().to_vec();
    checked_elements(&shape).map_err(|e| e.to_string())?;
    let d = view.data();
    #[expect(
        clippy::cast_precision_loss,
        clippy::cast_possible_truncation,
        reason = "conversion to the model's f32"
    )]
    let values: Vec<f32> = match view.dtype() {
        Dtype::F32 => d
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect(),
        Dtype::F64 => d
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        Dtype::F16 => d
            .chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::BF16 => d
            .chunks_exact(2)
            .map(|c| half::bf16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect(),
        Dtype::I64 => d
            .chunks_exact(8)
            .map(|c| i64::from_le_bytes(c.try_into().expect("8 bytes")) as f32)
            .collect(),
        Dtype::I32 => d
            .chunks_exact(4)
            .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f32)
            .collect(),
        Dtype::U8 => d.iter().map(|&v| f32::from(v)).collect(),
        other => return Err(format!("unsupported dtype {other:?}")),
    };
    ArrayD::from_shape_vec(IxDyn(&shape), values).map_err(|e| e.to_string())
}

/// Write f32 tensors and string metadata to `path` atomically (a temporary file renamed into
/// place), so a failed write never leaves half a file where a good one was.
///
/// # Errors
/// I/O or serialisation failures.
pub fn write_f32(
    path: &Path,
    tensors: &BTreeMap<String, ArrayD<f32>>,
    metadata: HashMap<String, String>,
) -> anyhow::Result<()> {
    let bytes: Vec<(String, Vec<u8>, Vec<usize>)> = tensors
        .iter()
        .map(|(k, v)| (k.clone(), f32_bytes(v), v.shape().to_vec()))
        .collect();
    let views = bytes
        .iter()
        .map(|(k, b, s)| Ok((k.as_str(), TensorView::new(Dtype::F32, s.clone(), b)?)))
        .collect::<Result<Vec<_>, safetensors::SafeTensorError>>()?;
    let data = safetensors::serialize(views, Some(metadata))?;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile_in(dir, path)?;
    std::io::Write::write_all(&mut tmp.1, &data)?;
    tmp.1.sync_all()?;
    drop(tmp.1);
    std::fs::rename(&tmp.0, path)?;
    Ok(())
}

fn tempfile_in(dir: &Path, target: &Path) -> std::io::Result<(std::path::PathBuf, std::fs::File)> {
    let name = target
        .file_name()
        .map_or_else(|| "out".into(), |n| n.to_string_lossy().into_owned());
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let file = std::fs::File::create(&tmp)?;
    Ok((tmp, file))
}
