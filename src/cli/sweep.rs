//! `innscope sweep`: accuracy against keep ratio (or size configurations) or resolution.

use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use innscope::data::assets;
use innscope::data::idx::Dataset;
use innscope::model::Model;
use innscope::sweep::{self, Over, Point};

use super::{PlanArgs, parse_sizes};

/// Arguments of `innscope sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Model (`*.inn.safetensors`); the bundled demo when omitted.
    pub model: Option<PathBuf>,
    /// Folder with IDX files (`t10k-images-idx3-ubyte[.gz]`, ...), e.g.
    /// `/usr/share/datasets/fashion-mnist`; the bundled 1 000-image subset when omitted.
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Which split of `--data`: `t10k` (test) or `train`.
    #[arg(long, default_value = "t10k")]
    pub split: String,
    /// What to vary.
    #[arg(long, value_enum, default_value_t = Over::Partition)]
    pub over: Over,
    /// Keep ratios for `--over partition`.
    #[arg(
        long,
        value_delimiter = ',',
        default_values_t = sweep::KEEPS
    )]
    pub keep_ratios: Vec<f64>,
    /// Explicit size configurations instead of keep ratios, each `G=N,G=N` (repeatable).
    #[arg(long = "config", value_name = "G=N,...")]
    pub configs: Vec<String>,
    /// Resolutions for `--over resolution`.
    #[arg(long, value_delimiter = ',', default_values_t = sweep::RESOLUTIONS)]
    pub resolutions: Vec<usize>,
    /// Sizes, partition kind and engine for every point (`--keep`/`--sizes` fix the sizes
    /// of a resolution sweep).
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Evaluate only the first N examples.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 500)]
    pub batch: usize,
    /// Write the table as CSV here (it is printed either way).
    #[arg(short, long)]
    pub output: Option<PathBuf>,
    /// Draw the accuracy curves (INN and twin) into this PNG file.
    #[arg(long)]
    pub plot: Option<PathBuf>,
    /// The discrete twin to compare with (L1-pruned to the INN's widths, fed resized images);
    /// the bundled twin when MODEL is omitted.
    #[arg(long, conflicts_with = "no_twin")]
    pub twin: Option<PathBuf>,
    /// Sweep the INN alone.
    #[arg(long)]
    pub no_twin: bool,
}

fn points(args: &SweepArgs, model: &Model) -> anyhow::Result<Vec<Point>> {
    let (base, _) = args.plan.resolve(model)?;
    Ok(match args.over {
        Over::Partition if !args.configs.is_empty() => args
            .configs
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let mut plan = base.clone();
                plan.sizes = parse_sizes(c)?;
                #[expect(clippy::cast_precision_loss, reason = "a handful of points")]
                let x = i as f64;
                Ok(Point {
                    label: c.clone(),
                    x,
                    plan,
                    with_twin: false,
                })
            })
            .collect::<anyhow::Result<_>>()?,
        Over::Partition => {
            if let Some(k) = args
                .keep_ratios
                .iter()
                .find(|k| !(k.is_finite() && **k > 0.0 && **k <= 16.0))
            {
                bail!("keep ratio {k}: expected a ratio in (0, 16]");
            }
            sweep::keep_points(model, &base, &args.keep_ratios)
        }
        Over::Resolution => sweep::resolution_points(&base, &args.resolutions),
    })
}

/// The twin to compare with: `--twin`, else the bundled twin when the bundled INN is swept.
fn twin(args: &SweepArgs) -> anyhow::Result<Option<Model>> {
    if args.no_twin {
        return Ok(None);
    }
    match (&args.twin, &args.model) {
        (Some(path), _) => Ok(Some(innscope::model::open(path)?)),
        (None, None) => Ok(Some(assets::demo_twin())),
        (None, Some(_)) => Ok(None),
    }
}

pub fn run(args: &SweepArgs) -> anyhow::Result<()> {
    let model = super::load_model(args.model.as_deref())?;
    let twin = twin(args)?;
    let data = match &args.data {
        Some(dir) => Dataset::open(dir, &args.split).map_err(anyhow::Error::msg)?,
        None => assets::eval_subset().map_err(anyhow::Error::msg)?,
    };
    let n = args.limit.map_or(data.len(), |l| l.min(data.len()));
    if n == 0 || args.batch == 0 {
        bail!("nothing to evaluate (empty data set, --limit 0 or --batch 0)");
    }
    let points = points(args, &model)?;
    eprintln!(
        "{}{}: {} examples from {}, {} points",
        model.doc.name,
        twin.as_ref()
            .map_or(String::new(), |t| format!(" and {}", t.doc.name)),
        n,
        data.origin,
        points.len()
    );
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  eta {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let rows = sweep::run(
        &model,
        twin.as_ref(),
        &data,
        &points,
        args.plan.engine,
        args.batch,
        Some(n),
        &mut |p| {
            bar.set_length(p.total as u64);
            bar.set_position(p.done as u64);
            bar.set_message(p.current.clone());
        },
        None,
    )?
    .context("the sweep was cancelled")?;
    bar.finish_and_clear();
    let table = sweep::csv(args.over, &rows);
    print!("{table}");
    if let Some(path) = &args.output {
        std::fs::write(path, &table).with_context(|| format!("{}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.plot {
        let title = format!(
            "{} on {} images",
            match args.over {
                Over::Partition => "accuracy against width",
                Over::Resolution => "accuracy against input resolution",
            },
            n
        );
        let png = sweep::plot_png(args.over, &title, &rows, None, (900, 560))?;
        std::fs::write(path, png).with_context(|| format!("{}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
