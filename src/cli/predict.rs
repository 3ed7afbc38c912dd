//! `innscope predict`: classify pictures at chosen sizes and resolution.

use std::path::PathBuf;

use anyhow::bail;
use clap::Args;
use innscope::data::input::{image_to_input, load_image};
use innscope::engine::softmax_rows;
use ndarray::{Axis, concatenate};

use super::PlanArgs;

/// Arguments of `innscope predict`.
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// `[MODEL] IMAGE...`: a first argument ending in `.safetensors` is the model (the bundled
    /// demo otherwise); the rest are images in any common format.
    #[arg(required = true, num_args = 1.., value_name = "[MODEL] IMAGE")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub plan: PlanArgs,
    /// How many classes to list per image.
    #[arg(long, default_value_t = 5)]
    pub top: usize,
    /// Print JSON: per input, every class probability and the raw logits.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &PredictArgs) -> anyhow::Result<()> {
    let (model_path, images) = match args.paths.split_first() {
        Some((first, rest)) if first.to_string_lossy().ends_with(".safetensors") => {
            (Some(first.as_path()), rest)
        }
        _ => (None, args.paths.as_slice()),
    };
    if images.is_empty() {
        bail!("no image given");
    }
    let model = super::load_model(model_path)?;
    let (_, plan) = args.plan.resolve(&model)?;
    let spec = &model.doc.input;
    let inputs = images
        .iter()
        .map(|p| {
            Ok(image_to_input(
                &load_image(p).map_err(anyhow::Error::msg)?,
                spec,
                plan.resolution,
            ))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let views: Vec<_> = inputs.iter().map(|a| a.view()).collect();
    let batch = concatenate(Axis(0), &views)?;
    let mut engine = args.plan.engine(&model, &plan)?;
    let engine_name = engine.describe();
    let logits = engine.forward(&model, batch.view())?;
    let probs = softmax_rows(&logits);
    let sizes: serde_json::Map<String, serde_json::Value> = plan
        .partitions
        .iter()
        .map(|(g, p)| (g.to_string(), p.len().into()))
        .collect();
    let params = model.param_count(&plan)?;
    let conversion = format!(
        "{} at {}x{}",
        spec.describe(),
        plan.resolution[1],
        plan.resolution[0]
    );
    if args.json {
        let rows: Vec<serde_json::Value> = images
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let probabilities: serde_json::Map<String, serde_json::Value> = model
                    .doc
                    .classes
                    .iter()
                    .zip(probs.row(i))
                    .map(|(c, v)| (c.clone(), (*v).into()))
                    .collect();
                serde_json::json!({
                    "input": p.display().to_string(),
                    "probabilities": probabilities,
                    "logits": logits.row(i).to_vec(),
                })
            })
            .collect();
        let out = serde_json::json!({
            "model": model.doc.name,
            "sizes": sizes,
            "partition": args.plan.partition.to_string(),
            "parameters": params,
            "resolution": plan.resolution,
            "engine": engine_name,
            "input_conversion": conversion,
            "predictions": rows,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let size_text: Vec<String> = sizes.iter().map(|(g, n)| format!("{g}={n}")).collect();
    println!(
        "{}: sizes {} ({} partition, {params} parameters), engine {engine_name}",
        model.doc.name,
        size_text.join(","),
        args.plan.partition
    );
    println!("input: {conversion}");
    for (i, p) in images.iter().enumerate() {
        println!("\n{}", p.display());
        let mut order: Vec<usize> = (0..model.doc.classes.len()).collect();
        order.sort_by(|&a, &b| probs[[i, b]].total_cmp(&probs[[i, a]]));
        for (rank, &c) in order.iter().take(args.top).enumerate() {
            println!(
                "  {}. {:<14} {:6.2}%",
                rank + 1,
                model.doc.classes[c],
                probs[[i, c]] * 100.0
            );
        }
    }
    Ok(())
}
