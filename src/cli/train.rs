//! `innscope train`: train the Fashion-MNIST demo INN, or its discrete twin, from scratch.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use innscope::data::assets;
use innscope::data::idx::Dataset;
use innscope::engine::cpu::CpuEngine;
use innscope::model::{Model, arch, native, regrid};
use innscope::train::{TrainConfig, Trainer};

/// Arguments of `innscope train`.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Where to write the model (`*.inn.safetensors`), after every epoch.
    #[arg(short, long)]
    pub output: PathBuf,
    /// Train the discrete twin (fixed kernels, full width, native resolution) instead of the
    /// INN.
    #[arg(long)]
    pub twin: bool,
    /// Folder with the Fashion-MNIST IDX files (`train-images-idx3-ubyte[.gz]`, ...).
    #[arg(long, default_value = "/usr/share/datasets/fashion-mnist")]
    pub data: PathBuf,
    /// Channels of the three convolutions.
    #[arg(long, value_delimiter = ',', default_value = "32,64,96")]
    pub widths: Vec<usize>,
    /// Units of a hidden fully connected layer between the pooled features and the classes
    /// (continuous in both axes for the INN); none by default.
    #[arg(long)]
    pub hidden: Option<usize>,
    /// Start a new run from a trained one: every parameter of FILE with the same name and
    /// shape here (e.g. the convolutions, under another head) is copied in, the rest is freshly
    /// initialised. The file's provenance is kept in the new one's.
    #[arg(long, value_name = "FILE", conflicts_with = "resume")]
    pub init: Option<PathBuf>,
    /// Control values along each channel axis, as a fraction of its width (INN only): the
    /// network can be pruned down to this fraction without aliasing its weights. 0.5 for a new
    /// run; with `--resume`, the saved grids are resampled to it (finer grids, more freedom),
    /// and kept as they are when it is not given.
    #[arg(long)]
    pub control_ratio: Option<f64>,
    /// Passes over the training set.
    #[arg(long, default_value_t = 8)]
    pub epochs: usize,
    /// Images per step.
    #[arg(long, default_value_t = 64)]
    pub batch: usize,
    /// Peak learning rate (AdamW, cosine decay to zero).
    #[arg(long, default_value_t = 3e-3)]
    pub lr: f64,
    /// Seed of initialisation, shuffling, flips and sampled plans.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Input resolutions sampled per step (INN only; the twin trains at 28 px).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "16,20,24,28,28,32,36,40,44,48"
    )]
    pub resolutions: Vec<usize>,
    /// Smallest fraction of each group's width sampled per step (INN only).
    #[arg(long, default_value_t = 0.5)]
    pub min_keep: f64,
    /// Probability that a step trains every group at full width (INN only).
    #[arg(long, default_value_t = 0.3)]
    pub full_width_prob: f64,
    /// The sandwich rule with in-place distillation (INN only): every step trains the full
    /// width on the labels and the smallest width (`--min-keep`) plus N random widths on the
    /// full width's answers, in one update (N + 2 passes a step).
    #[arg(long, value_name = "N")]
    pub sandwich: Option<usize>,
    /// Train on the first N training images only.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Continue the run saved in `--output` (from its last finished epoch) up to `--epochs`.
    /// With more `--epochs` than the saved run had, the cosine schedule is laid over the new
    /// total, so the learning rate rises again where the run goes on (a warm restart).
    #[arg(long)]
    pub resume: bool,
}

/// Control values per channel axis of a new INN, as a fraction of the width.
const DEFAULT_CONTROL_RATIO: f64 = 0.5;

/// Where a run stands after an epoch.
struct Finished<'a> {
    /// The commands that made the file, oldest first (more than one after `--resume`).
    history: &'a [String],
    images: usize,
    epochs_done: usize,
    seconds: f64,
    images_per_s: f64,
    subset_accuracy: f64,
    /// Units of the hidden layer, if the model has one.
    hidden: Option<usize>,
    /// Where a warm-started run came from (`null` otherwise).
    init: &'a serde_json::Value,
}

/// What a finished epoch leaves in the file's provenance.
fn provenance(
    args: &TrainArgs,
    config: &TrainConfig,
    control_ratio: f64,
    run: &Finished<'_>,
) -> serde_json::Value {
    let Finished {
        history,
        images,
        epochs_done,
        seconds,
        images_per_s,
        subset_accuracy,
        hidden,
        init,
    } = *run;
    serde_json::json!({
        "tool": format!("innscope {} train", env!("CARGO_PKG_VERSION")),
        "command": history.last().cloned().unwrap_or_default(),
        "history": history,
        "kind": if args.twin { "discrete twin" } else { "INN" },
        "data": format!("Fashion-MNIST train split, {}", args.data.display()),
        "train_images": images,
        "seed": config.seed,
        "epochs_done": epochs_done,
        "epochs": config.epochs,
        "batch": config.batch,
        "lr": config.lr,
        "weight_decay": config.weight_decay,
        "optimizer": "AdamW, cosine learning-rate decay",
        "resolutions": config.resolutions,
        "min_keep": config.min_keep,
        "control_ratio": control_ratio,
        "widths": args.widths,
        "hidden": hidden,
        "init": init,
        "full_width_prob": config.full_width_prob,
        "sandwich": config.sandwich.map(|k| format!("full width on labels, smallest and {k} random widths distilled from it")),
        "flip": config.flip,
        "train_seconds": seconds.round(),
        "images_per_s": (images_per_s * 10.0).round() / 10.0,
        "eval_subset_accuracy": subset_accuracy,
    })
}

/// Values training adjusts: every λ and every discrete tensor.
fn trainable_values(model: &Model) -> usize {
    model.tensors.values().map(ndarray::ArrayBase::len).sum()
}

/// The commands that produced a saved run, oldest first: its `history`, or for files written
/// before there was one, its `command`.
fn earlier_commands(model: &Model) -> Vec<String> {
    let p = &model.doc.provenance;
    match p.get("history").and_then(serde_json::Value::as_array) {
        Some(list) => list
            .iter()
            .filter_map(|c| c.as_str().map(str::to_owned))
            .collect(),
        None => p
            .get("command")
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
            .into_iter()
            .collect(),
    }
}

/// Epochs already done and seconds spent, from a saved run.
fn resumed(model: &Model) -> (usize, f64) {
    let p = &model.doc.provenance;
    let done = p
        .get("epochs_done")
        .and_then(serde_json::Value::as_u64)
        .unwrap_or(0);
    let secs = p
        .get("train_seconds")
        .and_then(serde_json::Value::as_f64)
        .unwrap_or(0.0);
    (usize::try_from(done).unwrap_or(0), secs)
}

/// Accuracy on the bundled evaluation subset at full width and native resolution.
fn subset_accuracy(model: &Model) -> anyhow::Result<f64> {
    let subset = assets::eval_subset().map_err(anyhow::Error::msg)?;
    let plan = model.resolve(&model.default_plan())?;
    let engine = CpuEngine::new(model, &plan)?;
    let score = innscope::eval::score(
        model,
        &subset,
        &plan,
        500,
        None,
        &mut |xs| engine.forward(model, xs),
        &mut |_| {},
        None,
    )?;
    Ok(score.map_or(0.0, innscope::eval::Score::accuracy))
}

/// Copy the matching parameters of the run in `path` into `model` (see
/// [`innscope::train::copy_matching`]); returns the record the new run's provenance keeps.
fn warm_start(model: &mut Model, path: &Path) -> anyhow::Result<serde_json::Value> {
    let from = native::read(path).with_context(|| format!("--init: reading {}", path.display()))?;
    let mut copied = innscope::train::copy_matching(model, &from);
    let deepened = innscope::train::deepen_head(model, &from)?;
    if !deepened.is_empty() {
        eprintln!(
            "the head gained a hidden layer: fc1 starts as the identity, fc2 as the classifier of {}",
            path.display()
        );
    }
    let hidden_start = (!deepened.is_empty()).then_some("fc1 = identity, fc2 = fc (Net2Net)");
    copied.extend(deepened);
    // A bias over the classes fits any run; a warm start needs at least one weight.
    if !copied.iter().any(|n| model.tensors[n].ndim() > 1) {
        bail!(
            "--init: no parameter of {} matches this network in name and shape (check --widths, --control-ratio, --twin)",
            path.display()
        );
    }
    let fresh: Vec<&str> = model
        .doc
        .params
        .iter()
        .map(|p| p.name.as_str())
        .filter(|n| !copied.iter().any(|c| c == n))
        .collect();
    eprintln!(
        "warm start from {}: copied {}; freshly initialised {}",
        path.display(),
        copied.join(", "),
        if fresh.is_empty() {
            "nothing".to_string()
        } else {
            fresh.join(", ")
        }
    );
    Ok(serde_json::json!({
        "from": path.display().to_string(),
        "copied": copied,
        "hidden_layer_start": hidden_start,
        "provenance": from.doc.provenance,
    }))
}

/// Units of the hidden fully connected layer of a [`arch::fashion_cnn`], if it has one.
fn hidden_units(model: &Model) -> Option<usize> {
    model.param("fc1.weight").map(|p| p.layout.shape[0])
}

fn save(model: &Model, path: &Path) -> anyhow::Result<()> {
    native::write(model, path).with_context(|| format!("writing {}", path.display()))
}

/// Run `innscope train`.
pub fn run(args: &TrainArgs) -> anyhow::Result<()> {
    let [w0, w1, w2] = args.widths[..] else {
        bail!("--widths: expected three numbers, got {:?}", args.widths);
    };
    let config = TrainConfig {
        epochs: args.epochs,
        batch: args.batch,
        lr: args.lr,
        seed: args.seed,
        resolutions: if args.twin {
            vec![28]
        } else {
            args.resolutions.clone()
        },
        min_keep: if args.twin { 1.0 } else { args.min_keep },
        full_width_prob: if args.twin { 1.0 } else { args.full_width_prob },
        sandwich: if args.twin { None } else { args.sandwich },
        limit: args.limit,
        ..TrainConfig::default()
    };
    if let Some(&r) = config
        .resolutions
        .iter()
        .find(|&&r| !(8..=112).contains(&r))
    {
        bail!("--resolutions: {r} px is outside 8..=112");
    }
    let data = Dataset::open(&args.data, "train").map_err(|e| {
        anyhow::anyhow!(
            "{e}\n(install the Debian package dataset-fashion-mnist, or pass --data DIR)"
        )
    })?;
    let mut history = Vec::new();
    let mut init = serde_json::Value::Null;
    let (model, mut done, mut seconds) = if args.resume {
        let model = native::read(&args.output)
            .with_context(|| format!("--resume: reading {}", args.output.display()))?;
        let (done, secs) = resumed(&model);
        history = earlier_commands(&model);
        init = model
            .doc
            .provenance
            .get("init")
            .cloned()
            .unwrap_or_default();
        eprintln!(
            "resuming {} after epoch {done} of {}",
            args.output.display(),
            config.epochs
        );
        let model = match args.control_ratio {
            Some(ratio) if !args.twin => {
                let finer = regrid::regrid(&model, ratio)
                    .with_context(|| format!("--control-ratio {ratio}"))?;
                let before = regrid::control_ratio(&model);
                if (before - regrid::control_ratio(&finer)).abs() > 1e-9 {
                    eprintln!(
                        "control grids resampled from {before:.2} to {ratio} of each width ({} -> {} values)",
                        trainable_values(&model),
                        trainable_values(&finer),
                    );
                }
                finer
            }
            _ => model,
        };
        (model, done, secs)
    } else {
        let mut model = arch::fashion_cnn(
            args.seed,
            [w0, w1, w2],
            args.hidden,
            !args.twin,
            args.control_ratio.unwrap_or(DEFAULT_CONTROL_RATIO),
        )?;
        if let Some(path) = &args.init {
            init = warm_start(&mut model, path)?;
        }
        (model, 0, 0.0)
    };
    if done >= config.epochs {
        eprintln!("nothing to do: {done} epochs already done");
        return Ok(());
    }
    history.push(super::this_command());
    // The ratio asked for; on a plain resume the saved run's (or, for files without it, the
    // one its grids show).
    let control_ratio = if args.twin {
        1.0
    } else if let Some(r) = args.control_ratio {
        r
    } else if args.resume {
        model
            .doc
            .provenance
            .get("control_ratio")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or_else(|| regrid::control_ratio(&model))
    } else {
        DEFAULT_CONTROL_RATIO
    };
    let params = trainable_values(&model);
    eprintln!(
        "training {} ({params} trainable values) on {} images of {}, {} epochs, batch {}, resolutions {:?}",
        model.doc.name,
        config.limit.map_or(data.len(), |l| l.min(data.len())),
        data.origin,
        config.epochs,
        config.batch,
        config.resolutions
    );
    let mut trainer = Trainer::new(model, config.clone())?;
    let style = ProgressStyle::with_template(
        "epoch {prefix} [{bar:30}] {pos}/{len} {msg} ({elapsed}, eta {eta})",
    )
    .unwrap_or_else(|_| ProgressStyle::default_bar())
    .progress_chars("=> ");
    while done < config.epochs {
        let bar = ProgressBar::new(0).with_style(style.clone());
        bar.set_prefix(format!("{}/{}", done + 1, config.epochs));
        let start = Instant::now();
        let mut last = None;
        // Without a terminal (a log file) the bar is hidden: print a line now and then instead.
        let plain = !std::io::stderr().is_terminal();
        trainer.epoch(&data, done, 10, &mut |p| {
            let line = format!(
                "loss {:.4} acc {:.2}% {:.0} img/s",
                p.loss,
                100.0 * p.accuracy,
                p.images_per_s
            );
            if plain && p.step % 100 == 0 {
                eprintln!(
                    "epoch {}/{} step {}/{}: {line}",
                    done + 1,
                    config.epochs,
                    p.step,
                    p.steps
                );
            }
            bar.set_length(p.steps as u64);
            bar.set_position(p.step as u64);
            bar.set_message(line);
            last = Some(p.clone());
            true
        })?;
        bar.finish_and_clear();
        seconds += start.elapsed().as_secs_f64();
        done += 1;
        let snapshot = trainer.snapshot(serde_json::Value::Null)?;
        let acc = subset_accuracy(&snapshot)?;
        let ips = last.as_ref().map_or(0.0, |p| f64::from(p.images_per_s));
        let mut model = snapshot;
        let images = config.limit.map_or(data.len(), |l| l.min(data.len()));
        let run = Finished {
            hidden: hidden_units(&model),
            init: &init,
            history: &history,
            images,
            epochs_done: done,
            seconds,
            images_per_s: ips,
            subset_accuracy: acc,
        };
        model.doc.provenance = provenance(args, &config, control_ratio, &run);
        save(&model, &args.output)?;
        if let Some(p) = last {
            eprintln!(
                "epoch {done}/{}: loss {:.4}, train accuracy {:.2}%, {:.0} images/s, {:.0} s; bundled subset {:.2}% -> {}",
                config.epochs,
                p.loss,
                100.0 * p.accuracy,
                p.images_per_s,
                start.elapsed().as_secs_f64(),
                100.0 * acc,
                args.output.display()
            );
        }
    }
    Ok(())
}
