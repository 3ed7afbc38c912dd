//! Accuracy sweeps over input resolution or partition size, for an INN and, beside it, its
//! discrete twin: the same network with fixed kernels, pruned the conventional way (L1 filter
//! norms) and fed a simply resized image. Shared by `innscope sweep` and the window, which runs
//! it off the UI thread with progress and cancel.

use std::fmt::Write as _;
use std::sync::atomic::AtomicBool;

use crate::data::idx::Dataset;
use crate::engine::{Engine, EngineChoice, EngineError};
use crate::eval::{Score, score};
use crate::inn::{AxisKind, Plan, Resolved};
use crate::model::prune::{l1_prune, layer_widths, prunable_layers};
use crate::model::{Model, ModelError};

/// What a sweep varies (also the command line's `--over`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Over {
    /// Partition sizes: `--keep-ratios` (default 1.0 down to 0.1) or `--config` lists.
    Partition,
    /// Input resolution: `--resolutions`.
    Resolution,
}

/// Keep ratios a pruning sweep visits unless told otherwise.
pub const KEEPS: [f64; 10] = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1];

/// Resolutions (pixels, square) a resolution sweep visits unless told otherwise.
pub const RESOLUTIONS: [usize; 7] = [14, 20, 24, 28, 36, 42, 56];

/// Which network a row belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Net {
    /// The INN, discretized under the point's plan.
    Inn,
    /// The discrete twin, L1-pruned to the INN's widths and fed the resized image.
    Twin,
}

impl Net {
    /// Short name for tables and legends.
    #[must_use]
    pub fn label(self) -> &'static str {
        match self {
            Self::Inn => "INN",
            Self::Twin => "discrete twin",
        }
    }
}

/// One point of a sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Point {
    /// How the point is named in tables (`0.5`, `28`, `0=8,1=16`).
    pub label: String,
    /// Position on the plot's x axis (keep ratio or pixels).
    pub x: f64,
    /// The INN's plan.
    pub plan: Plan,
    /// Whether the twin runs at this point too (at the INN's widths and resolution).
    pub with_twin: bool,
}

/// Points at `keep` ratios (at `base`'s resolution), uniform partitions as in the INN papers'
/// pruning results unless `base` says otherwise.
#[must_use]
pub fn keep_points(model: &Model, base: &Plan, keeps: &[f64]) -> Vec<Point> {
    keeps
        .iter()
        .map(|&k| {
            let mut plan = base.clone();
            plan.set_keep(&model.doc.groups, k);
            Point {
                label: format!("{k}"),
                x: k,
                plan,
                with_twin: true,
            }
        })
        .collect()
}

/// Points at square `resolutions` (at `base`'s sizes).
#[must_use]
pub fn resolution_points(base: &Plan, resolutions: &[usize]) -> Vec<Point> {
    resolutions
        .iter()
        .map(|&r| {
            let mut plan = base.clone();
            plan.resolution = [r, r];
            #[expect(clippy::cast_precision_loss, reason = "resolutions are small")]
            let x = r as f64;
            Point {
                label: format!("{r}"),
                x,
                plan,
                with_twin: true,
            }
        })
        .collect()
}

/// One measured point.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// Which network.
    pub net: Net,
    /// The point's label.
    pub label: String,
    /// The point's x.
    pub x: f64,
    /// Input resolution (square side) in pixels.
    pub resolution: usize,
    /// Channel widths (`G=N` per group for the INN, per convolution for the twin).
    pub sizes: String,
    /// Discrete parameters at this point.
    pub parameters: usize,
    /// Correct out of examples.
    pub score: Score,
}

/// Progress of a running sweep.
#[derive(Clone, Debug, PartialEq)]
pub struct Progress {
    /// Examples evaluated so far, over all points and networks.
    pub done: usize,
    /// Examples to evaluate in all.
    pub total: usize,
    /// What is being evaluated now.
    pub current: String,
}

/// The widths the twin's [prunable layers](prunable_layers) get to match `inn` under `plan`: a
/// twin layer whose weight has the same name as an INN weight continuous in output channels
/// takes that group's partition size; others stay whole. Same widths, same parameter count.
#[must_use]
pub fn twin_widths(inn: &Model, plan: &Resolved, twin: &Model) -> Vec<usize> {
    prunable_layers(twin)
        .into_iter()
        .map(|weight| {
            let full = twin.param(weight).map_or(0, |p| p.layout.shape[0]);
            match inn.param(weight).map(|p| p.layout.axes[0]) {
                Some(AxisKind::Channel { group }) => plan
                    .partitions
                    .get(&group)
                    .map_or(full, |points| points.len().min(full)),
                _ => full,
            }
        })
        .collect()
}

/// The twin L1-pruned to `widths` (itself when nothing is pruned).
///
/// # Errors
/// See [`l1_prune`].
pub fn twin_at(twin: &Model, widths: &[usize]) -> Result<Model, ModelError> {
    if widths == layer_widths(twin) {
        return Ok(twin.clone());
    }
    l1_prune(twin, widths)
}

/// Run `points` for `inn` (and `twin` where a point asks for it) on the first `limit` examples
/// of `data`. Returns `Ok(None)` when `cancel` was set.
///
/// # Errors
/// A point the model rejects (checked before any work), or an engine failure.
#[expect(
    clippy::too_many_arguments,
    reason = "one flat call used by two callers"
)]
pub fn run(
    inn: &Model,
    twin: Option<&Model>,
    data: &Dataset,
    points: &[Point],
    engine: EngineChoice,
    batch: usize,
    limit: Option<usize>,
    progress: &mut dyn FnMut(&Progress),
    cancel: Option<&AtomicBool>,
) -> Result<Option<Vec<Row>>, EngineError> {
    let n = limit.map_or(data.len(), |l| l.min(data.len()));
    // Resolve every point first, so that a bad one fails before any work is done.
    let resolved = points
        .iter()
        .map(|p| inn.resolve(&p.plan))
        .collect::<Result<Vec<Resolved>, _>>()?;
    let runs = points.len() + twin.map_or(0, |_| points.iter().filter(|p| p.with_twin).count());
    let mut state = Progress {
        done: 0,
        total: n * runs,
        current: String::new(),
    };
    let mut rows = Vec::new();
    let mut inn_engine: Option<Engine> = None;
    for (point, plan) in points.iter().zip(&resolved) {
        state.current = format!("{} at {}", Net::Inn.label(), point.label);
        progress(&state);
        match &mut inn_engine {
            Some(e) => e.set_plan(inn, plan)?,
            None => inn_engine = Some(Engine::create(engine, inn, plan)?.0),
        }
        let Some(e) = inn_engine.as_mut() else {
            continue;
        };
        let Some(s) = evaluate(inn, e, data, plan, batch, n, &mut state, progress, cancel)? else {
            return Ok(None);
        };
        let sizes: Vec<String> = plan
            .partitions
            .iter()
            .map(|(g, p)| format!("{g}={}", p.len()))
            .collect();
        rows.push(Row {
            net: Net::Inn,
            label: point.label.clone(),
            x: point.x,
            resolution: plan.resolution[0],
            sizes: sizes.join(" "),
            parameters: inn.param_count(plan)?,
            score: s,
        });
        let Some(twin) = twin.filter(|_| point.with_twin) else {
            continue;
        };
        state.current = format!("{} at {}", Net::Twin.label(), point.label);
        progress(&state);
        let pruned = twin_at(twin, &twin_widths(inn, plan, twin))?;
        let mut twin_plan = pruned.default_plan();
        twin_plan.resolution = point.plan.resolution;
        let twin_plan = pruned.resolve(&twin_plan)?;
        let mut e = Engine::create(engine, &pruned, &twin_plan)?.0;
        let Some(s) = evaluate(
            &pruned, &mut e, data, &twin_plan, batch, n, &mut state, progress, cancel,
        )?
        else {
            return Ok(None);
        };
        rows.push(Row {
            net: Net::Twin,
            label: point.label.clone(),
            x: point.x,
            resolution: twin_plan.resolution[0],
            sizes: layer_widths(&pruned)
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(" "),
            parameters: pruned.param_count(&twin_plan)?,
            score: s,
        });
    }
    state.current = "done".into();
    progress(&state);
    Ok(Some(rows))
}

#[expect(clippy::too_many_arguments, reason = "a private step of `run`")]
fn evaluate(
    model: &Model,
    engine: &mut Engine,
    data: &Dataset,
    plan: &Resolved,
    batch: usize,
    n: usize,
    state: &mut Progress,
    progress: &mut dyn FnMut(&Progress),
    cancel: Option<&AtomicBool>,
) -> Result<Option<Score>, EngineError> {
    let base = state.done;
    let out = score(
        model,
        data,
        plan,
        batch,
        Some(n),
        &mut |x| engine.forward(model, x),
        &mut |k| {
            state.done += k;
            progress(state);
        },
        cancel,
    )?;
    state.done = base + n;
    Ok(out)
}

/// The rows as CSV (header first).
#[must_use]
pub fn csv(over: Over, rows: &[Row]) -> String {
    let mut out = format!(
        "model,{},resolution,sizes,parameters,accuracy,correct,examples\n",
        match over {
            Over::Partition => "point",
            Over::Resolution => "resolution_point",
        }
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{},\"{}\",{},{},{},{:.4},{},{}",
            r.net.label(),
            r.label,
            r.resolution,
            r.sizes,
            r.parameters,
            r.score.accuracy(),
            r.score.correct,
            r.score.examples
        );
    }
    out
}

/// Accuracy curves (one per network) as a PNG of `size` pixels, drawn with plotters and
/// rasterised with resvg using egui's bundled font, so that no system font is needed.
///
/// # Errors
/// A drawing or encoding failure.
pub fn plot_png(
    over: Over,
    title: &str,
    rows: &[Row],
    mark: Option<f64>,
    size: (u32, u32),
) -> anyhow::Result<Vec<u8>> {
    use plotters::prelude::*;

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE)?;
        let xs: Vec<f64> = rows.iter().map(|r| r.x).collect();
        let (x0, x1) = xs
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| {
                (a.min(x), b.max(x))
            });
        let (x0, x1) = if x0.is_finite() { (x0, x1) } else { (0.0, 1.0) };
        let pad = ((x1 - x0) * 0.04).max(1e-3);
        let lowest = rows
            .iter()
            .map(|r| r.score.accuracy())
            .fold(1.0_f64, f64::min);
        let y0 = ((lowest * 100.0 - 5.0) / 10.0).floor().max(0.0) * 10.0;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d((x0 - pad)..(x1 + pad), y0..100.0)?;
        chart
            .configure_mesh()
            .x_desc(match over {
                Over::Partition => "keep (fraction of every group's width)",
                Over::Resolution => "input resolution (px)",
            })
            .y_desc("accuracy (%)")
            .x_label_formatter(&|x| match over {
                Over::Partition => format!("{:.0}%", x * 100.0),
                Over::Resolution => format!("{x:.0}"),
            })
            .y_label_formatter(&|y| format!("{y:.0}"))
            .label_style(("sans-serif", 14))
            .light_line_style(RGBColor(235, 235, 235))
            .draw()?;
        if let Some(m) = mark {
            chart.draw_series(LineSeries::new(
                [(m, y0), (m, 100.0)],
                ShapeStyle::from(&RGBColor(150, 150, 150)).stroke_width(1),
            ))?;
        }
        for (net, color) in [
            (Net::Inn, RGBColor(230, 120, 30)),
            (Net::Twin, RGBColor(150, 80, 190)),
        ] {
            let mut pts: Vec<(f64, f64)> = rows
                .iter()
                .filter(|r| r.net == net)
                .map(|r| (r.x, 100.0 * r.score.accuracy()))
                .collect();
            if pts.is_empty() {
                continue;
            }
            pts.sort_by(|a, b| a.0.total_cmp(&b.0));
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))?
                .label(net.label())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                });
            chart.draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(200, 200, 200))
            .label_font(("sans-serif", 14))
            .draw()?;
        root.present()?;
    }
    rasterize(&svg, size)
}

/// Render an SVG document to PNG bytes with the bundled sans-serif font.
fn rasterize(svg: &str, size: (u32, u32)) -> anyhow::Result<Vec<u8>> {
    let mut fonts = resvg::usvg::fontdb::Database::new();
    fonts.load_font_data(epaint_default_fonts::UBUNTU_LIGHT.to_vec());
    let family = fonts
        .faces()
        .next()
        .and_then(|face| face.families.first().map(|f| f.0.clone()));
    if let Some(family) = family {
        fonts.set_sans_serif_family(family);
    }
    let options = resvg::usvg::Options {
        fontdb: std::sync::Arc::new(fonts),
        ..resvg::usvg::Options::default()
    };
    let tree = resvg::usvg::Tree::from_str(svg, &options)?;
    let mut pixmap = resvg::tiny_skia::Pixmap::new(size.0, size.1)
        .ok_or_else(|| anyhow::anyhow!("empty plot size {size:?}"))?;
    resvg::render(
        &tree,
        resvg::tiny_skia::Transform::identity(),
        &mut pixmap.as_mut(),
    );
    Ok(pixmap.encode_png()?)
}
