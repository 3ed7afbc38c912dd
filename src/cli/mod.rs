//! Command-line parsing and dispatch. Each subcommand lives in its own file.

mod average;
mod bench;
mod export;
mod import;
mod info;
mod predict;
mod sweep;
mod train;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use innscope::data::assets;
use innscope::engine::{Engine, EngineChoice};
use innscope::inn::{GroupId, PartitionKind, Plan, Resolved};
use innscope::model::Model;

/// Explore Integral Neural Networks: re-discretize continuous weights at any width and
/// resolution, and see what it does to the network.
///
/// MODEL may be omitted wherever it makes sense: it then means the bundled demo model.
#[derive(Debug, Parser)]
#[command(
    name = "innscope",
    version,
    about,
    long_about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// Model to open in the window (`*.inn.safetensors`, or a TorchIntegral `.pt` with
    /// `STEM.manifest.json` beside it); the bundled demo when omitted.
    pub model: Option<PathBuf>,
    /// Engine for the window: `auto` (the window's GPU when it is a hardware one), `gpu` or `cpu`.
    #[arg(long, default_value = "auto")]
    pub engine: EngineChoice,
    /// A discrete network of the same architecture to show beside the model (predictions,
    /// sweeps); the bundled twin when the bundled demo opens.
    #[arg(long)]
    pub twin: Option<PathBuf>,
    /// Print every frame's time (UI + re-discretization + forward pass) to stderr, and a
    /// summary (median, 95th percentile) when the window closes.
    #[arg(long)]
    pub trace_frames: bool,
    #[command(subcommand)]
    pub command: Option<Command>,
}

/// Headless subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Describe a model: input, groups (ids, sizes, members), parameters, continuous axes, graph.
    Info(info::InfoArgs),
    /// Convert a TorchIntegral checkpoint (`torch.save` state_dict) plus its architecture
    /// manifest into the native format.
    ImportTorchintegral(import::ImportArgs),
    /// Classify images at chosen partition sizes and resolution (top classes with probabilities).
    Predict(predict::PredictArgs),
    /// Write the discretized network at chosen sizes as a plain safetensors state_dict keyed by
    /// the original module paths (loadable with `safetensors.torch.load_file`).
    Export(export::ExportArgs),
    /// Accuracy on an IDX data set against keep ratio (or explicit size configurations) or
    /// input resolution; CSV out.
    Sweep(sweep::SweepArgs),
    /// Time re-discretization, the forward pass, a slider tick and batched throughput on each
    /// engine, for a model and a synthetic ResNet-18-sized INN (medians and 95th percentiles).
    Bench(bench::BenchArgs),
    /// Train the Fashion-MNIST demo INN (continuous in channels and space, sampled widths and
    /// resolutions) or its discrete twin, from scratch, writing the model after every epoch.
    Train(train::TrainArgs),
    /// Write the element-wise mean of several saved states of one network, e.g. the last
    /// epochs of a training run (checkpoint averaging).
    Average(average::AverageArgs),
}

/// Options shared by every command that computes.
#[derive(Clone, Debug, Args)]
pub struct PlanArgs {
    /// Partition sizes per group id, e.g. `0=8,2=16` (see `innscope info` for ids).
    #[arg(long, value_name = "G=N,...", conflicts_with = "keep")]
    pub sizes: Option<String>,
    /// Keep this fraction of every group's original size (e.g. 0.5), rounded, at least 2.
    #[arg(long, value_name = "RATIO")]
    pub keep: Option<f64>,
    /// Input resolution in pixels (square); the model's native resolution when omitted.
    #[arg(long, value_name = "PX")]
    pub resolution: Option<usize>,
    /// Partition kind: `learned` uses a group's learned points where it has them (resampled
    /// by quantiles at other sizes), uniform elsewhere; `uniform` is linspace everywhere.
    #[arg(long, default_value = "learned")]
    pub partition: PartitionKind,
    /// Engine: `auto` (the GPU where an adapter exists, else the CPU), `gpu` or `cpu`.
    #[arg(long, default_value = "auto")]
    pub engine: EngineChoice,
}

impl PlanArgs {
    /// The plan these options describe, resolved against `model`.
    pub fn resolve(&self, model: &Model) -> anyhow::Result<(Plan, Resolved)> {
        let mut plan = model.default_plan();
        plan.partition = self.partition;
        if let Some(keep) = self.keep {
            if !(keep.is_finite() && keep > 0.0 && keep <= 16.0) {
                bail!("--keep {keep}: expected a ratio in (0, 16]");
            }
            plan.set_keep(&model.doc.groups, keep);
        }
        if let Some(sizes) = &self.sizes {
            plan.sizes = parse_sizes(sizes)?;
        }
        if let Some(r) = self.resolution {
            plan.resolution = [r, r];
        }
        let resolved = model.resolve(&plan)?;
        Ok((plan, resolved))
    }

    /// Create the chosen engine for `plan`, saying on stderr when the CPU stands in.
    pub fn engine(&self, model: &Model, plan: &Resolved) -> anyhow::Result<Engine> {
        let (engine, fallback) = Engine::create(self.engine, model, plan)?;
        if let Some(why) = fallback {
            eprintln!("note: running on the CPU engine ({why})");
        }
        Ok(engine)
    }
}

/// Parse `0=8,2=16`.
pub fn parse_sizes(text: &str) -> anyhow::Result<BTreeMap<GroupId, usize>> {
    text.split(',')
        .filter(|s| !s.trim().is_empty())
        .map(|item| {
            let (g, n) = item
                .split_once('=')
                .with_context(|| format!("size {item:?}: expected GROUP=SIZE"))?;
            let g: GroupId = g
                .trim()
                .parse()
                .with_context(|| format!("size {item:?}: group id is not a number"))?;
            let n: usize = n
                .trim()
                .parse()
                .with_context(|| format!("size {item:?}: size is not a number"))?;
            Ok((g, n))
        })
        .collect()
}

/// Load a model file of any format innscope reads ([`innscope::model::open`]), or the
/// bundled demo when `path` is `None`.
pub fn load_model(path: Option<&Path>) -> anyhow::Result<Model> {
    match path {
        None => Ok(assets::demo_model()),
        Some(path) => Ok(innscope::model::open(path)?),
    }
}

/// This process's command line, as users call it (not the path it was started from).
fn this_command() -> String {
    std::iter::once("innscope".to_string())
        .chain(std::env::args().skip(1))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Run a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        None => {
            let (model, source) = match cli.model.as_deref() {
                None => (assets::demo_model(), "bundled demo".to_string()),
                Some(path) => (load_model(Some(path))?, path.display().to_string()),
            };
            let twin = match (&cli.twin, &cli.model) {
                (Some(path), _) => Some(load_model(Some(path))?),
                (None, None) => Some(assets::demo_twin()),
                (None, Some(_)) => None,
            };
            innscope::app::run(model, source, twin, cli.engine, cli.trace_frames).map_err(|e| {
                e.context("no window (the subcommands work without a display: innscope --help)")
            })
        }
        Some(Command::Info(a)) => info::run(&a),
        Some(Command::ImportTorchintegral(a)) => import::run(&a),
        Some(Command::Predict(a)) => predict::run(&a),
        Some(Command::Export(a)) => export::run(&a),
        Some(Command::Sweep(a)) => sweep::run(&a),
        Some(Command::Bench(a)) => bench::run(&a),
        Some(Command::Train(a)) => train::run(&a),
        Some(Command::Average(a)) => average::run(&a),
    }
}
