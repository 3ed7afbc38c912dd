//! `innscope import-torchintegral`: TorchIntegral checkpoint + manifest → native model.

use std::path::PathBuf;

use clap::Args;
use innscope::model::{native, torchintegral};

/// Arguments of `innscope import-torchintegral`.
#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The checkpoint written by `torch.save(model.state_dict())`.
    pub checkpoint: PathBuf,
    /// Architecture manifest (JSON): layers, graph, parameters, groups.
    #[arg(long)]
    pub manifest: PathBuf,
    /// Output file (`*.inn.safetensors`).
    #[arg(short, long)]
    pub output: PathBuf,
}

pub fn run(args: &ImportArgs) -> anyhow::Result<()> {
    let model = torchintegral::import(&args.checkpoint, &args.manifest)?;
    native::write(&model, &args.output)?;
    let plan = model.resolve(&model.default_plan())?;
    println!(
        "imported {}: {} parameters ({} continuous), {} groups, {} parameters at full size -> {}",
        model.doc.name,
        model.doc.params.len(),
        model
            .doc
            .params
            .iter()
            .filter(|p| p.layout.is_continuous())
            .count(),
        model.doc.groups.len(),
        model.param_count(&plan)?,
        args.output.display()
    );
    Ok(())
}
