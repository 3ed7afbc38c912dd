//! `innscope info`: what a model is made of.

use std::path::PathBuf;

use clap::Args;
use innscope::inn::AxisKind;
use innscope::model::Model;

/// Arguments of `innscope info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// Model (`*.inn.safetensors`); the bundled demo when omitted.
    pub model: Option<PathBuf>,
    /// Print the model description as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: &InfoArgs) -> anyhow::Result<()> {
    let model = super::load_model(args.model.as_deref())?;
    print_info(&model, args.json)
}

fn axis_text(a: AxisKind) -> String {
    match a {
        AxisKind::Discrete => "d".into(),
        AxisKind::Channel { group } => format!("g{group}"),
        AxisKind::SpatialH => "h~".into(),
        AxisKind::SpatialW => "w~".into(),
    }
}

pub fn print_info(model: &Model, json: bool) -> anyhow::Result<()> {
    let doc = &model.doc;
    let plan = model.resolve(&model.default_plan())?;
    if json {
        let mut value = serde_json::to_value(doc)?;
        value["parameter_count"] = model.param_count(&plan)?.into();
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("model    {}", doc.name);
    println!("input    {}", doc.input.describe());
    println!(
        "classes  {} ({})",
        doc.classes.len(),
        doc.classes.join(", ")
    );
    println!(
        "resolution  {}",
        if model.is_resolution_continuous() {
            "continuous spatial kernels: runs at any input resolution"
        } else {
            "discrete spatial kernels: other resolutions only resize the input"
        }
    );
    let counts = model.group_param_counts(&plan)?;
    println!("\ngroups (one partition-size slider each; --sizes ID=N)");
    println!(
        "  {:>3}  {:>8}  {:>8}  {:>10}  members",
        "id", "original", "learned", "params"
    );
    for g in &doc.groups {
        let learned = g
            .learned
            .as_ref()
            .map_or("-".to_string(), |p| format!("{} pts", p.len()));
        let members: Vec<String> = model
            .group_members(g.id)
            .iter()
            .map(|(p, d)| format!("{p}[{d}]"))
            .collect();
        println!(
            "  {:>3}  {:>8}  {:>8}  {:>10}  {}",
            g.id,
            g.original_size,
            learned,
            counts.get(&g.id).copied().unwrap_or(0),
            members.join(", ")
        );
    }
    println!(
        "\nparameters (axes: d discrete, gN continuous in group N, h~/w~ continuous in space)"
    );
    for p in &doc.params {
        let axes: Vec<String> = p.layout.axes.iter().map(|a| axis_text(*a)).collect();
        let lambda = model.tensors[&p.name].shape().to_vec();
        let quad = p.layout.quadrature.map_or(String::new(), |q| {
            format!("  trapezoid on dim {} x tau {}", q.dim, q.tau)
        });
        println!(
            "  {:<28} shape {:<16} axes [{}]  control {:?}{quad}",
            p.name,
            format!("{:?}", p.layout.shape),
            axes.join(","),
            lambda
        );
    }
    let shapes = model.infer_shapes(&plan)?;
    println!("\ngraph (shapes at full size, native resolution, batch 1)");
    for n in &doc.graph {
        println!(
            "  {:<16} {:<10} -> {:<8} {:?}",
            n.op.name(),
            n.inputs.join(","),
            n.out,
            shapes.get(&n.out).cloned().unwrap_or_default()
        );
    }
    println!("\nparameters at full size: {}", model.param_count(&plan)?);
    if !doc.provenance.is_null() {
        println!("provenance: {}", doc.provenance);
    }
    Ok(())
}
