//! `innscope average`: the element-wise mean of saved states of one network (checkpoint
//! averaging).

use std::path::PathBuf;

use anyhow::Context;
use clap::Args;
use innscope::model::{average, native};

/// Arguments of `innscope average`.
#[derive(Debug, Args)]
pub struct AverageArgs {
    /// Models of one architecture (`*.inn.safetensors`), e.g. a run's last epochs.
    #[arg(required = true, num_args = 2..)]
    pub models: Vec<PathBuf>,
    /// Where to write the mean.
    #[arg(short, long)]
    pub output: PathBuf,
}

pub fn run(args: &AverageArgs) -> anyhow::Result<()> {
    let models = args
        .models
        .iter()
        .map(|p| super::load_model(Some(p)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let sources: Vec<serde_json::Value> = args
        .models
        .iter()
        .zip(&models)
        .map(|(p, m)| {
            serde_json::json!({
                "file": p.file_name().map(|f| f.to_string_lossy().into_owned()),
                "provenance": m.doc.provenance,
            })
        })
        .collect();
    let provenance = serde_json::json!({
        "tool": format!("innscope {} average", env!("CARGO_PKG_VERSION")),
        "command": super::this_command(),
        "kind": "element-wise mean of the models below (checkpoint averaging)",
        "averaged": sources,
    });
    let mean = average::average(&models, provenance)?;
    native::write(&mean, &args.output)
        .with_context(|| format!("writing {}", args.output.display()))?;
    println!(
        "{}: mean of {} models of {} ({} values each)",
        args.output.display(),
        models.len(),
        mean.doc.name,
        mean.tensors
            .values()
            .map(ndarray::ArrayBase::len)
            .sum::<usize>()
    );
    Ok(())
}
