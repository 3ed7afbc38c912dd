//! `innscope sweep`: accuracy against keep ratio (or size configurations) or resolution.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use innscope::data::assets;
use innscope::data::idx::Dataset;
use innscope::data::input::grey_batch;
use innscope::inn::Plan;
use innscope::model::Model;

use super::{PlanArgs, parse_sizes};

/// What a sweep varies.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Over {
    /// Partition sizes: `--keep-ratios` (default 1.0 down to 0.1) or `--config` lists.
    Partition,
    /// Input resolution: `--resolutions`.
    Resolution,
}

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
        default_value = "1.0,0.9,0.8,0.7,0.6,0.5,0.4,0.3,0.2,0.1"
    )]
    pub keep_ratios: Vec<f64>,
    /// Explicit size configurations instead of keep ratios, each `G=N,G=N` (repeatable).
    #[arg(long = "config", value_name = "G=N,...")]
    pub configs: Vec<String>,
    /// Resolutions for `--over resolution`.
    #[arg(long, value_delimiter = ',', default_value = "14,20,24,28,36,42,56")]
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
}

/// One point of a sweep.
struct Point {
    label: String,
    plan: Plan,
}

fn points(args: &SweepArgs, model: &Model) -> anyhow::Result<Vec<Point>> {
    let (base, _) = args.plan.resolve(model)?;
    let mut out = Vec::new();
    match args.over {
        Over::Partition if !args.configs.is_empty() => {
            for c in &args.configs {
                let mut plan = base.clone();
                plan.sizes = parse_sizes(c)?;
                out.push(Point {
                    label: c.clone(),
                    plan,
                });
            }
        }
        Over::Partition => {
            for &k in &args.keep_ratios {
                if !(k.is_finite() && k > 0.0 && k <= 16.0) {
                    bail!("keep ratio {k}: expected a ratio in (0, 16]");
                }
                let mut plan = base.clone();
                plan.set_keep(&model.doc.groups, k);
                out.push(Point {
                    label: format!("{k}"),
                    plan,
                });
            }
        }
        Over::Resolution => {
            for &r in &args.resolutions {
                let mut plan = base.clone();
                plan.resolution = [r, r];
                out.push(Point {
                    label: format!("{r}"),
                    plan,
                });
            }
        }
    }
    Ok(out)
}

pub fn run(args: &SweepArgs) -> anyhow::Result<()> {
    let model = super::load_model(args.model.as_deref())?;
    let data = match &args.data {
        Some(dir) => Dataset::open(dir, &args.split).map_err(anyhow::Error::msg)?,
        None => assets::eval_subset().map_err(anyhow::Error::msg)?,
    };
    let n = args.limit.map_or(data.len(), |l| l.min(data.len()));
    if n == 0 || args.batch == 0 {
        bail!("nothing to evaluate (empty data set, --limit 0 or --batch 0)");
    }
    let points = points(args, &model)?;
    // Resolve every point first, so a bad one fails before any work is done.
    let resolved = points
        .iter()
        .map(|p| {
            model
                .resolve(&p.plan)
                .with_context(|| format!("sweep point {}", p.label))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut engine = args.plan.engine(&model, &resolved[0])?;
    eprintln!(
        "{}: {} examples from {}, engine {}, {} points",
        model.doc.name,
        n,
        data.origin,
        engine.describe(),
        points.len()
    );
    let bar = ProgressBar::new((n * points.len()) as u64);
    bar.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} images  {per_sec}  eta {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut rows = Vec::new();
    for (point, plan) in points.iter().zip(&resolved) {
        bar.set_message(format!("{:?} {}", args.over, point.label));
        engine.set_plan(&model, plan)?;
        let mut correct = 0_usize;
        for start in (0..n).step_by(args.batch) {
            let end = (start + args.batch).min(n);
            let imgs: Vec<&[u8]> = (start..end).map(|i| data.images.image(i)).collect();
            let x = grey_batch(
                &imgs,
                data.images.rows,
                data.images.cols,
                &model.doc.input,
                plan.resolution,
            );
            let logits = engine.forward(&model, x.view())?;
            for (row, i) in logits.rows().into_iter().zip(start..end) {
                let arg = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(usize::MAX, |(k, _)| k);
                correct += usize::from(arg == usize::from(data.labels[i]));
            }
            bar.inc((end - start) as u64);
        }
        let sizes: Vec<String> = plan
            .partitions
            .iter()
            .map(|(g, p)| format!("{g}={}", p.len()))
            .collect();
        #[expect(clippy::cast_precision_loss, reason = "counts are far below 2^52")]
        let acc = correct as f64 / n as f64;
        rows.push(format!(
            "\"{}\",{},{},{},{},{acc:.4},{correct},{n}",
            point.label,
            sizes.join(" "),
            plan.resolution[0],
            args.plan.partition,
            model.param_count(plan)?
        ));
    }
    bar.finish_and_clear();
    let header = format!(
        "{},sizes,resolution,partition,parameters,accuracy,correct,examples",
        match args.over {
            Over::Partition if !args.configs.is_empty() => "config",
            Over::Partition => "keep",
            Over::Resolution => "resolution_point",
        }
    );
    let table = std::iter::once(header)
        .chain(rows)
        .collect::<Vec<_>>()
        .join("\n");
    println!("{table}");
    if let Some(path) = &args.output {
        let mut f = std::fs::File::create(path).with_context(|| format!("{}", path.display()))?;
        writeln!(f, "{table}")?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}
