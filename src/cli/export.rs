//! `innscope export`: the discrete network at chosen sizes as a plain state_dict.

use std::path::PathBuf;

use clap::Args;
use innscope::model::export::export;

use super::PlanArgs;

/// Arguments of `innscope export`.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Model (`*.inn.safetensors`); the bundled demo when omitted.
    pub model: Option<PathBuf>,
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Output file (`*.safetensors`).
    #[arg(short, long)]
    pub output: PathBuf,
}

pub fn run(args: &ExportArgs) -> anyhow::Result<()> {
    let model = super::load_model(args.model.as_deref())?;
    let (_, plan) = args.plan.resolve(&model)?;
    let weights = args.plan.engine(&model, &plan)?.weights()?;
    let summary = export(&model, &plan, &weights, &args.output)?;
    let sizes: Vec<String> = plan
        .partitions
        .iter()
        .map(|(g, p)| format!("{g}={}", p.len()))
        .collect();
    println!(
        "exported {} tensors, {} parameters (sizes {}) -> {}",
        summary.tensors,
        summary.parameters,
        sizes.join(","),
        args.output.display()
    );
    Ok(())
}
