//! Opening a model file, whatever its format: one function and one list of formats for the
//! window (File → Open, drag and drop) and every command.
//!
//! A new file format: its reader in its own module of [`crate::model`], and one entry in
//! [`FORMATS`] with the extensions it claims and how [`open_with`] reads it.

use std::path::{Path, PathBuf};

use super::{Model, ModelError, native, torchintegral};

/// A file format innscope reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Format {
    /// What the format is called in messages and file dialogs.
    pub name: &'static str,
    /// The extensions it claims (lower case, no dot).
    pub extensions: &'static [&'static str],
    /// Whether it needs an architecture manifest beside the file.
    pub needs_manifest: bool,
}

/// innscope's own format, `*.inn.safetensors` (see [`native`]).
pub const NATIVE: Format = Format {
    name: "innscope model",
    extensions: &["safetensors"],
    needs_manifest: false,
};

/// A TorchIntegral `torch.save` state_dict with its manifest (see [`torchintegral`]).
pub const TORCHINTEGRAL: Format = Format {
    name: "TorchIntegral checkpoint",
    extensions: &["pt", "pth"],
    needs_manifest: true,
};

/// Every format innscope reads, in the order the file dialog lists them.
pub const FORMATS: &[Format] = &[NATIVE, TORCHINTEGRAL];

/// Every extension of [`FORMATS`].
pub fn extensions() -> impl Iterator<Item = &'static str> {
    FORMATS.iter().flat_map(|f| f.extensions.iter().copied())
}

/// The format `path`'s extension claims, if any.
#[must_use]
pub fn format_of(path: &Path) -> Option<Format> {
    let ext = path.extension()?.to_string_lossy().to_lowercase();
    FORMATS
        .iter()
        .copied()
        .find(|f| f.extensions.contains(&ext.as_str()))
}

/// Where a checkpoint's manifest is looked for when none is given: `STEM.manifest.json`
/// beside it.
#[must_use]
pub fn manifest_beside(path: &Path) -> PathBuf {
    path.with_extension("manifest.json")
}

/// Whether opening `path` needs a manifest that is not beside it (a file dialog then asks for
/// one).
#[must_use]
pub fn lacks_manifest(path: &Path) -> bool {
    format_of(path).is_some_and(|f| f.needs_manifest) && !manifest_beside(path).is_file()
}

/// Open a model file of any format in [`FORMATS`], its manifest (where it needs one) beside
/// it.
///
/// # Errors
/// An unknown extension, a missing manifest, and whatever the format's reader refuses.
pub fn open(path: &Path) -> Result<Model, ModelError> {
    open_with(path, None)
}

/// [`open`] with the manifest given (or, when `None`, looked for beside the file).
///
/// # Errors
/// As [`open`].
pub fn open_with(path: &Path, manifest: Option<&Path>) -> Result<Model, ModelError> {
    let refuse = |detail: String| ModelError::File {
        path: path.display().to_string(),
        detail,
    };
    let Some(format) = format_of(path) else {
        let known: Vec<String> = extensions().map(|e| format!(".{e}")).collect();
        return Err(refuse(format!(
            "not a model file innscope reads (extensions {})",
            known.join(", ")
        )));
    };
    if format == NATIVE {
        return native::read(path);
    }
    let guess = manifest_beside(path);
    let manifest = match manifest {
        Some(m) => m.to_path_buf(),
        None if guess.is_file() => guess,
        None => {
            return Err(refuse(format!(
                "a {} needs its manifest; put {} beside it (or give it with --manifest)",
                format.name,
                guess
                    .file_name()
                    .map_or_else(String::new, |n| n.to_string_lossy().into_owned())
            )));
        }
    };
    torchintegral::import(path, &manifest)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{NATIVE, TORCHINTEGRAL, format_of, open};

    #[test]
    fn formats_by_extension_in_any_case() {
        assert_eq!(format_of(Path::new("a/b.inn.safetensors")), Some(NATIVE));
        assert_eq!(format_of(Path::new("x.PT")), Some(TORCHINTEGRAL));
        assert_eq!(format_of(Path::new("x.onnx")), None);
        assert_eq!(format_of(Path::new("noext")), None);
    }

    #[test]
    fn unknown_extensions_and_missing_manifests_are_refused_by_name() {
        let err = open(Path::new("model.onnx")).expect_err("unknown");
        assert!(err.to_string().contains(".safetensors, .pt, .pth"), "{err}");
        let dir = tempfile::tempdir().expect("dir");
        let pt = dir.path().join("net.pt");
        std::fs::write(&pt, b"PK").expect("write");
        let err = open(&pt).expect_err("no manifest");
        assert!(err.to_string().contains("net.manifest.json"), "{err}");
    }
}
