//! Accuracy sweeps: accuracy against input resolution and against keep %, INN against its
//! discrete twin, computed on a background thread (progress, cancel) and drawn as curves with
//! the sliders' current position marked.

use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, channel};
use std::sync::{Arc, Mutex};

use eframe::egui;
use egui_plot::{Legend, Line, Plot, PlotPoints, Points, VLine};

use super::state::State;
use super::theme;
use crate::data::assets;
use crate::data::idx::Dataset;
use crate::engine::EngineChoice;
use crate::sweep::{self, Net, Over, Progress, Row};

/// Where the Debian package `dataset-fashion-mnist` puts the full data set.
const FULL_DATA: &str = "/usr/share/datasets/fashion-mnist";

/// A finished sweep.
struct Done {
    rows: Vec<Row>,
    /// Which data, how many examples.
    data: String,
    /// The model it was run for (results of another model are not shown).
    source: String,
}

/// A sweep in flight.
struct Running {
    over: Over,
    cancel: Arc<AtomicBool>,
    progress: Arc<Mutex<Progress>>,
    /// The finished sweep, `None` when cancelled.
    result: Receiver<Result<Option<Done>, String>>,
}

/// The sweeps panel's own state: results per kind, the sweep running now.
pub struct SweepPanel {
    /// The kind shown.
    pub over: Over,
    /// Evaluate on the full 10 000-image test set instead of the bundled 1 000.
    pub full_test_set: bool,
    /// Evaluate only the first N examples (quick looks, tests).
    pub limit: Option<usize>,
    resolution: Option<Done>,
    partition: Option<Done>,
    running: Option<Running>,
    error: Option<String>,
}

impl Default for SweepPanel {
    fn default() -> Self {
        Self {
            over: Over::Resolution,
            full_test_set: false,
            limit: None,
            resolution: None,
            partition: None,
            running: None,
            error: None,
        }
    }
}

impl SweepPanel {
    fn done(&self, over: Over) -> Option<&Done> {
        match over {
            Over::Resolution => self.resolution.as_ref(),
            Over::Partition => self.partition.as_ref(),
        }
    }

    /// Whether a sweep is running.
    #[must_use]
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// Start a sweep of kind `over` for the model in `state` (the twin too, if it has one).
    pub fn start(&mut self, state: &State, over: Over, ctx: &egui::Context) {
        self.cancel();
        let full = self.full_test_set && Path::new(FULL_DATA).is_dir();
        let points = match over {
            Over::Resolution => {
                // The model's native resolution is always a point, so the curves meet the
                // reference.
                let mut res: Vec<usize> = sweep::RESOLUTIONS.to_vec();
                res.push(state.model.native()[0]);
                res.sort_unstable();
                res.dedup();
                sweep::resolution_points(&state.plan, &res)
            }
            Over::Partition => sweep::keep_points(&state.model, &state.plan, &sweep::KEEPS),
        };
        let inn = state.model.clone();
        let twin = state.twin.as_ref().map(|t| t.model.clone());
        let cancel = Arc::new(AtomicBool::new(false));
        let progress = Arc::new(Mutex::new(Progress {
            done: 0,
            total: 0,
            current: "starting".into(),
        }));
        let (tx, rx) = channel();
        let limit = self.limit;
        let source = state.source.clone();
        {
            let cancel = Arc::clone(&cancel);
            let progress = Arc::clone(&progress);
            let ctx = ctx.clone();
            // Reading (and unzipping) the data set is part of the background work too.
            std::thread::spawn(move || {
                let result = if full {
                    Dataset::open(Path::new(FULL_DATA), "t10k")
                } else {
                    assets::eval_subset()
                }
                .and_then(|data| {
                    let n = limit.map_or(data.len(), |l| l.min(data.len()));
                    let described = if n < data.len() {
                        format!("the first {n} images of {}", data.origin)
                    } else {
                        format!("all {n} images of {}", data.origin)
                    };
                    let rows = sweep::run(
                        &inn,
                        twin.as_ref(),
                        &data,
                        &points,
                        EngineChoice::Cpu,
                        250,
                        limit,
                        &mut |p| {
                            if let Ok(mut slot) = progress.lock() {
                                *slot = p.clone();
                            }
                            // A cancelled sweep has nothing left to show.
                            if !cancel.load(Ordering::Relaxed) {
                                ctx.request_repaint();
                            }
                        },
                        Some(&cancel),
                    )
                    .map_err(|e| e.to_string())?;
                    Ok(rows.map(|rows| Done {
                        rows,
                        data: described,
                        source,
                    }))
                });
                let _ = tx.send(result);
                if !cancel.load(Ordering::Relaxed) {
                    ctx.request_repaint();
                }
            });
        }
        self.error = None;
        self.running = Some(Running {
            over,
            cancel,
            progress,
            result: rx,
        });
    }

    /// Stop the sweep in flight (its partial results are dropped).
    pub fn cancel(&mut self) {
        if let Some(r) = self.running.take() {
            r.cancel.store(true, Ordering::Relaxed);
        }
    }

    /// Take a finished sweep's result, if one arrived.
    fn poll(&mut self) {
        let Some(running) = &self.running else {
            return;
        };
        let Ok(result) = running.result.try_recv() else {
            return;
        };
        let Some(running) = self.running.take() else {
            return;
        };
        match result {
            Ok(Some(done)) => match running.over {
                Over::Resolution => self.resolution = Some(done),
                Over::Partition => self.partition = Some(done),
            },
            Ok(None) => {}
            Err(e) => self.error = Some(e),
        }
    }

    /// The last sweep's error, if it failed.
    #[must_use]
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// Rows of the finished sweep of the kind shown (empty if none).
    #[must_use]
    pub fn rows(&self) -> &[Row] {
        self.done(self.over).map_or(&[], |d| d.rows.as_slice())
    }

    /// The numbers behind the panel (the kind shown) as CSV.
    #[must_use]
    pub fn csv(&self) -> String {
        self.done(self.over).map_or_else(
            || sweep::csv(self.over, &[]),
            |d| sweep::csv(self.over, &d.rows),
        )
    }

    /// Draw the panel.
    pub fn show(&mut self, ui: &mut egui::Ui, state: &State) {
        self.poll();
        ui.horizontal_wrapped(|ui| {
            ui.selectable_value(&mut self.over, Over::Resolution, "resolution");
            ui.selectable_value(&mut self.over, Over::Partition, "keep %");
            let running = self.running.is_some();
            if ui
                .add_enabled(!running, egui::Button::new("Run sweep"))
                .on_hover_text(
                    "Accuracy of the INN (and its discrete twin) at every point of this sweep, \
                     at the other sliders' current values. Runs in the background.",
                )
                .clicked()
            {
                self.start(state, self.over, ui.ctx());
            }
            let available = Path::new(FULL_DATA).is_dir();
            ui.add_enabled(
                available && !running,
                egui::Checkbox::new(&mut self.full_test_set, "full test set"),
            )
            .on_hover_text(if available {
                "All 10 000 Fashion-MNIST test images instead of the bundled 1 000."
            } else {
                "Install the Debian package dataset-fashion-mnist for the full test set."
            });
        });
        if let Some(running) = &self.running {
            let p = running
                .progress
                .lock()
                .map(|p| p.clone())
                .unwrap_or(Progress {
                    done: 0,
                    total: 0,
                    current: String::new(),
                });
            #[expect(clippy::cast_precision_loss, reason = "progress display")]
            let frac = p.done as f32 / p.total.max(1) as f32;
            let mut cancel = false;
            ui.horizontal(|ui| {
                ui.add(
                    egui::ProgressBar::new(frac)
                        .desired_width((ui.available_width() - 70.0).max(60.0))
                        .text(format!("{}: {} / {} images", p.current, p.done, p.total)),
                );
                cancel = ui.button("Cancel").clicked();
            });
            if cancel {
                self.cancel();
            }
        }
        if let Some(e) = &self.error {
            ui.colored_label(theme::WARN, e);
        }
        let over = self.over;
        let shown = self.done(over).filter(|d| d.source == state.source);
        let Some(done) = shown else {
            if self.running.is_some() {
                return;
            }
            ui.label(
                egui::RichText::new(if state.twin.is_some() {
                    "No sweep yet for this model: Run sweep draws the INN against its discrete twin."
                } else {
                    "No sweep yet for this model: Run sweep draws its accuracy curve."
                })
                .weak(),
            );
            return;
        };
        ui.label(
            egui::RichText::new(format!("on {}", done.data))
                .small()
                .weak(),
        );
        let mark = match over {
            Over::Resolution => {
                #[expect(clippy::cast_precision_loss, reason = "pixels")]
                let r = state.resolved.resolution[0] as f64;
                r
            }
            Over::Partition => state.mean_keep() * 100.0,
        };
        let x_of = |r: &Row| match over {
            Over::Resolution => r.x,
            Over::Partition => r.x * 100.0,
        };
        Plot::new(("sweep", over == Over::Resolution))
            .legend(Legend::default().position(egui_plot::Corner::RightBottom))
            .x_axis_label(match over {
                Over::Resolution => "input resolution (px)",
                Over::Partition => "keep (% of every group's width)",
            })
            .y_axis_label("accuracy (%)")
            .include_y(0.0)
            .include_y(100.0)
            .allow_scroll(false)
            .show(ui, |plot| {
                for (net, color) in [(Net::Inn, theme::NOW), (Net::Twin, theme::TWIN)] {
                    let mut pts: Vec<[f64; 2]> = done
                        .rows
                        .iter()
                        .filter(|r| r.net == net)
                        .map(|r| [x_of(r), 100.0 * r.score.accuracy()])
                        .collect();
                    if pts.is_empty() {
                        continue;
                    }
                    pts.sort_by(|a, b| a[0].total_cmp(&b[0]));
                    plot.line(
                        Line::new(net.label(), PlotPoints::from(pts.clone()))
                            .color(color)
                            .width(2.0),
                    );
                    plot.points(
                        Points::new(net.label(), PlotPoints::from(pts))
                            .color(color)
                            .radius(3.0),
                    );
                }
                plot.vline(VLine::new("now", mark).color(theme::UNIFORM));
            });
    }
}
