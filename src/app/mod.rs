//! The explorer window (eframe + egui, wgpu renderer).
//!
//! The app owns a [`state::State`]; each panel lives in its own file and reads it. Sliders
//! change the plan through the state, which re-discretizes (GPU engine on eframe's own device
//! where it can run compute, CPU engine otherwise) and re-runs the network within the frame.
//! File dialogs and model loading run off the UI thread and report back through a channel.

pub mod controls;
pub mod gpu_view;
pub mod heatmap;
pub mod input;
pub mod layer_data;
pub mod partitions;
pub mod predictions;
pub mod spectrum;
pub mod state;
pub mod surface;
pub mod surface_gpu;
pub mod sweeps;
pub mod theme;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::Instant;

use eframe::egui::{self, Key, KeyboardShortcut, Modifiers};
use eframe::egui_wgpu::{self, wgpu};
use image::DynamicImage;

use crate::engine::{EngineChoice, ExistingDevice, choose_gpu};
use crate::gpu::GpuContext;
use crate::gpu::context::required_limits;
use crate::model::Model;
use state::State;

/// The five panels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PanelKind {
    /// Spline weight surface.
    Surface,
    /// Partitions.
    Partitions,
    /// Frequency-domain filters.
    Spectrum,
    /// Output predictions.
    Predictions,
    /// Accuracy sweeps over resolution and keep %.
    Sweeps,
}

impl PanelKind {
    fn file_stem(self) -> &'static str {
        match self {
            Self::Surface => "surface",
            Self::Partitions => "partitions",
            Self::Spectrum => "spectrum",
            Self::Predictions => "predictions",
            Self::Sweeps => "sweeps",
        }
    }

    fn title(self) -> &'static str {
        match self {
            Self::Surface => "Spline weight surface",
            Self::Partitions => "Partitions",
            Self::Spectrum => "Frequency-domain filters",
            Self::Predictions => "Output predictions",
            Self::Sweeps => "Accuracy sweeps",
        }
    }
}

/// What background work reports back.
enum Event {
    Model(Box<Result<(Model, String), String>>),
    Image(Result<(DynamicImage, String), String>),
}

/// The explorer application.
pub struct InnscopeApp {
    /// Model, plan, engine and results.
    pub state: State,
    surface: surface::SurfacePanel,
    spectrum: spectrum::SpectrumPanel,
    planes: layer_data::PlanesCache,
    input: input::InputPanel,
    /// The sweeps panel (public so tests can start and inspect sweeps).
    pub sweeps: sweeps::SweepPanel,
    maximized: Option<PanelKind>,
    gpu: Option<Arc<GpuContext>>,
    /// The discrete-weight heatmap drawn on the GPU (with the GPU engine).
    gpu_view: Option<gpu_view::GpuView>,
    events: (Sender<Event>, Receiver<Event>),
    frame_ms: f32,
    trace: Option<Vec<f32>>,
    /// Show timings in the controls. Default true; snapshot tests turn it off (timings vary).
    pub show_timings: bool,
}

/// Keyboard shortcuts.
const OPEN_MODEL: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::O);
const OPEN_IMAGE: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::I);
const RESET: KeyboardShortcut = KeyboardShortcut::new(Modifiers::COMMAND, Key::R);

/// Load a model file of any format innscope reads ([`crate::model::open_with`]), with its
/// manifest where the format needs one (given, or beside the file).
///
/// # Errors
/// Unreadable, refused or inconsistent files; a checkpoint without its manifest.
pub fn load_model_file(path: &Path, manifest: Option<&Path>) -> Result<Model, String> {
    crate::model::open_with(path, manifest).map_err(|e| e.to_string())
}

/// The GPU context on eframe's device as [`choose_gpu`] decides it, or why there is none.
fn window_gpu(
    rs: Option<&egui_wgpu::RenderState>,
    choice: EngineChoice,
) -> (Option<Arc<GpuContext>>, Option<String>) {
    let Some(rs) = rs else {
        return (None, Some("the window has no wgpu device".into()));
    };
    let device = ExistingDevice {
        adapter: &rs.adapter,
        device: &rs.device,
        queue: &rs.queue,
    };
    match choose_gpu(choice, Some(device)) {
        Ok(ctx) => (Some(ctx), None),
        Err(why) => (None, Some(why)),
    }
}

impl InnscopeApp {
    /// Create the app on `model`, with `twin` (a discrete network of the same architecture)
    /// beside it if given.
    ///
    /// # Errors
    /// A model that does not run at its default plan, or a twin that does not fit it.
    pub fn new(
        cc: &eframe::CreationContext<'_>,
        model: Model,
        source: String,
        twin: Option<Model>,
        choice: EngineChoice,
        trace_frames: bool,
    ) -> anyhow::Result<Self> {
        let (gpu, why) = window_gpu(cc.wgpu_render_state.as_ref(), choice);
        let (image, name) =
            input::sample(9).unwrap_or_else(|| (DynamicImage::new_luma8(28, 28), "blank".into()));
        let mut state = State::new(model, source, gpu.as_ref(), image, name)?;
        state.set_twin(twin)?;
        if state.engine_note.is_none() {
            state.engine_note = why;
        } else if let Some(why) = why {
            state.engine_note = Some(why);
        }
        let mut surface = surface::SurfacePanel::default();
        let mut gpu_view = None;
        if let Some(rs) = cc.wgpu_render_state.as_ref() {
            surface_gpu::install(rs);
            surface.wgpu_target = Some(rs.target_format.is_srgb());
            if let Some(ctx) = &gpu {
                match gpu_view::GpuView::new(Arc::clone(ctx), rs.clone()) {
                    Ok(v) => gpu_view = Some(v),
                    // The weights are then read back for the panels, as with the CPU engine.
                    Err(e) => state.engine_note = Some(format!("GPU heatmap unavailable: {e}")),
                }
            }
        }
        Ok(Self {
            state,
            surface,
            spectrum: spectrum::SpectrumPanel::default(),
            planes: layer_data::PlanesCache::default(),
            input: input::InputPanel::default(),
            sweeps: sweeps::SweepPanel::default(),
            maximized: None,
            gpu,
            gpu_view,
            events: channel(),
            frame_ms: 0.0,
            trace: trace_frames.then(Vec::new),
            show_timings: true,
        })
    }

    /// Load a model from a file on a background thread.
    pub fn open_model_path(&self, path: PathBuf, ctx: &egui::Context) {
        let tx = self.events.0.clone();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let source = path.display().to_string();
            let result = load_model_file(&path, None).map(|m| (m, source));
            let _ = tx.send(Event::Model(Box::new(result)));
            ctx.request_repaint();
        });
    }

    /// Apply a loaded model (or its error): a model that fails leaves the current one.
    pub fn apply_model(&mut self, result: Result<(Model, String), String>) {
        match result {
            Ok((model, source)) => {
                if let Err(e) = self.state.load(model, source.clone(), self.gpu.as_ref()) {
                    self.state.error = Some(format!("{source}: {e:#}"));
                }
            }
            Err(e) => self.state.error = Some(e),
        }
    }

    fn open_dialog(&self, ctx: &egui::Context, image: bool) {
        let tx = self.events.0.clone();
        let ctx = ctx.clone();
        std::thread::spawn(move || {
            let dialog = rfd::FileDialog::new();
            let dialog = if image {
                dialog.add_filter(
                    "images",
                    &["png", "jpg", "jpeg", "bmp", "gif", "webp", "tif", "tiff"],
                )
            } else {
                crate::model::open::FORMATS
                    .iter()
                    .fold(dialog, |d, f| d.add_filter(f.name, f.extensions))
            };
            let Some(path) = dialog.pick_file() else {
                return;
            };
            let event = if image {
                Event::Image(
                    crate::data::input::load_image(&path).map(|i| (i, path.display().to_string())),
                )
            } else {
                let manifest = if crate::model::open::lacks_manifest(&path) {
                    rfd::FileDialog::new()
                        .set_title("Manifest for this checkpoint")
                        .add_filter("manifest", &["json"])
                        .pick_file()
                } else {
                    None
                };
                Event::Model(Box::new(
                    load_model_file(&path, manifest.as_deref())
                        .map(|m| (m, path.display().to_string())),
                ))
            };
            let _ = tx.send(event);
            ctx.request_repaint();
        });
    }

    fn handle_events(&mut self, ctx: &egui::Context) {
        while let Ok(event) = self.events.1.try_recv() {
            match event {
                Event::Model(r) => self.apply_model(*r),
                Event::Image(Ok((img, name))) => self.state.set_image(img, name),
                Event::Image(Err(e)) => self.state.error = Some(e),
            }
        }
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        for file in dropped {
            let path = file.path().to_path_buf();
            if path.as_os_str().is_empty() {
                continue;
            }
            if crate::model::open::format_of(&path).is_some() {
                self.open_model_path(path, ctx);
            } else {
                match crate::data::input::load_image(&path) {
                    Ok(img) => self.state.set_image(img, path.display().to_string()),
                    Err(e) => self.state.error = Some(e),
                }
            }
        }
        let (open_model, open_image, reset, next, prev) = ctx.input_mut(|i| {
            (
                i.consume_shortcut(&OPEN_MODEL),
                i.consume_shortcut(&OPEN_IMAGE),
                i.consume_shortcut(&RESET),
                i.key_pressed(Key::CloseBracket),
                i.key_pressed(Key::OpenBracket),
            )
        });
        if open_model {
            self.open_dialog(ctx, false);
        }
        if open_image {
            self.open_dialog(ctx, true);
        }
        if reset {
            self.state.reset();
        }
        if next {
            self.state.select(self.state.selected + 1);
        }
        if prev {
            self.state.select(self.state.selected.saturating_sub(1));
        }
    }

    fn menu(&mut self, ui: &mut egui::Ui) {
        egui::MenuBar::new().ui(ui, |ui| {
            ui.menu_button("File", |ui| {
                if ui
                    .add(
                        egui::Button::new("Open model…")
                            .shortcut_text(ui.ctx().format_shortcut(&OPEN_MODEL)),
                    )
                    .clicked()
                {
                    self.open_dialog(ui.ctx(), false);
                }
                if ui
                    .add(
                        egui::Button::new("Open image…")
                            .shortcut_text(ui.ctx().format_shortcut(&OPEN_IMAGE)),
                    )
                    .clicked()
                {
                    self.open_dialog(ui.ctx(), true);
                }
            });
            ui.menu_button("View", |ui| {
                egui::global_theme_preference_buttons(ui);
                if ui
                    .add(
                        egui::Button::new("Reset sizes and resolution")
                            .shortcut_text(ui.ctx().format_shortcut(&RESET)),
                    )
                    .clicked()
                {
                    self.state.reset();
                }
            });
            ui.separator();
            ui.label(
                egui::RichText::new(format!(
                    "{} — {}",
                    self.state.model.doc.name, self.state.source
                ))
                .weak(),
            );
        });
    }

    fn layer_strip(&mut self, ui: &mut egui::Ui) {
        let names: Vec<(String, Vec<usize>)> = self
            .state
            .layers()
            .iter()
            .map(|p| (p.name.clone(), p.layout.shape.clone()))
            .collect();
        ui.horizontal_wrapped(|ui| {
            ui.label("layer")
                .on_hover_text("The layer the panels follow ([ and ] step through them).");
            for (i, (name, shape)) in names.iter().enumerate() {
                if ui
                    .selectable_label(self.state.selected == i, name)
                    .on_hover_text(format!("{shape:?}"))
                    .clicked()
                {
                    self.state.select(i);
                }
            }
        });
    }

    /// The data behind a panel as CSV.
    #[must_use]
    pub fn panel_csv(&self, kind: PanelKind) -> String {
        match kind {
            PanelKind::Surface => self.surface.csv(&self.state),
            PanelKind::Partitions => partitions::csv(&self.state),
            PanelKind::Spectrum => self.spectrum.csv(),
            PanelKind::Predictions => predictions::csv(&self.state),
            PanelKind::Sweeps => self.sweeps.csv(),
        }
    }

    fn export_csv(&self, kind: PanelKind) {
        let text = self.panel_csv(kind);
        let name = format!("innscope-{}.csv", kind.file_stem());
        let tx = self.events.0.clone();
        std::thread::spawn(move || {
            let Some(path) = rfd::FileDialog::new()
                .set_file_name(name)
                .add_filter("CSV", &["csv"])
                .save_file()
            else {
                return;
            };
            if let Err(e) = std::fs::write(&path, text) {
                let _ = tx.send(Event::Image(Err(format!("{}: {e}", path.display()))));
            }
        });
    }

    /// Ask for a screenshot of the next frame, crop it to the panel, and save it as PNG.
    fn export_png(&self, ctx: &egui::Context, kind: PanelKind, rect: egui::Rect) {
        let ppp = ctx.pixels_per_point();
        let tx = self.events.0.clone();
        let name = format!("innscope-{}.png", kind.file_stem());
        ctx.request_screenshot(move |image| {
            let region = image.region(&rect, Some(ppp));
            let [w, h] = region.size;
            let bytes: Vec<u8> = region
                .pixels
                .iter()
                .flat_map(eframe::egui::Color32::to_array)
                .collect();
            std::thread::spawn(move || {
                let Some(path) = rfd::FileDialog::new()
                    .set_file_name(name)
                    .add_filter("PNG", &["png"])
                    .save_file()
                else {
                    return;
                };
                let (w, h) = (u32::try_from(w).unwrap_or(0), u32::try_from(h).unwrap_or(0));
                let result = image::RgbaImage::from_raw(w, h, bytes)
                    .ok_or_else(|| "empty screenshot".to_string())
                    .and_then(|img| img.save(&path).map_err(|e| e.to_string()));
                if let Err(e) = result {
                    let _ = tx.send(Event::Image(Err(format!("{}: {e}", path.display()))));
                }
            });
        });
    }

    fn panel(&mut self, ui: &mut egui::Ui, kind: PanelKind) {
        let rect = ui.max_rect();
        ui.horizontal(|ui| {
            ui.strong(kind.title());
            ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                let maximized = self.maximized == Some(kind);
                if ui
                    .small_button(if maximized { "restore" } else { "maximise" })
                    .clicked()
                {
                    self.maximized = if maximized { None } else { Some(kind) };
                }
                if ui
                    .small_button("CSV")
                    .on_hover_text("Save the numbers behind this panel as CSV.")
                    .clicked()
                {
                    self.export_csv(kind);
                }
                if ui
                    .small_button("PNG")
                    .on_hover_text("Save this panel as a PNG image.")
                    .clicked()
                {
                    self.export_png(ui.ctx(), kind, rect);
                }
            });
        });
        match kind {
            PanelKind::Surface => {
                self.surface
                    .show(ui, &self.state, &mut self.planes, self.gpu_view.as_mut());
            }
            PanelKind::Partitions => partitions::show(ui, &self.state),
            PanelKind::Spectrum => {
                self.spectrum
                    .show(ui, &self.state, self.surface.slice, &mut self.planes);
            }
            PanelKind::Predictions => predictions::show(ui, &self.state),
            PanelKind::Sweeps => self.sweeps.show(ui, &self.state),
        }
    }
}

impl eframe::App for InnscopeApp {
    fn on_exit(&mut self) {
        let frames: Vec<f64> = self.trace.iter().flatten().map(|&v| f64::from(v)).collect();
        if let Some((median, p95)) = crate::timing::median_p95(&frames) {
            eprintln!(
                "frames: {} · median {median:.2} ms · p95 {p95:.2} ms",
                self.trace.as_ref().map_or(0, Vec::len)
            );
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let start = Instant::now();
        let ctx = ui.ctx().clone();
        self.handle_events(&ctx);
        egui::Panel::top("menu").show(ui, |ui| self.menu(ui));
        if let Some(err) = self.state.error.clone() {
            egui::Panel::top("error").show(ui, |ui| {
                ui.horizontal(|ui| {
                    ui.colored_label(theme::WARN, format!("Error: {err}"));
                    if ui.small_button("dismiss").clicked() {
                        self.state.error = None;
                    }
                });
            });
        }
        egui::Panel::left("controls")
            .resizable(true)
            .default_size(290.0)
            .show(ui, |ui| {
                egui::ScrollArea::vertical().show(ui, |ui| {
                    controls::show(
                        ui,
                        &mut self.state,
                        self.show_timings.then_some(self.frame_ms),
                    );
                    ui.separator();
                    if self.input.show(ui, &mut self.state) {
                        self.open_dialog(ui.ctx(), true);
                    }
                });
            });
        egui::CentralPanel::default_margins().show(ui, |ui| {
            self.layer_strip(ui);
            ui.separator();
            if let Some(kind) = self.maximized {
                self.panel(ui, kind);
                return;
            }
            let width = ui.available_width();
            egui::Panel::right("right-column")
                .resizable(true)
                .default_size(width / 2.0)
                .show(ui, |ui| {
                    egui::Panel::bottom("predictions")
                        .resizable(true)
                        .default_size(ui.available_height() * 0.45)
                        .show(ui, |ui| {
                            self.panel(ui, PanelKind::Predictions);
                        });
                    self.panel(ui, PanelKind::Spectrum);
                });
            egui::Panel::bottom("partitions")
                .resizable(true)
                .default_size(ui.available_height() * 0.45)
                .show(ui, |ui| {
                    let width = ui.available_width();
                    egui::Panel::right("sweeps")
                        .resizable(true)
                        .default_size(width / 2.0)
                        .show(ui, |ui| {
                            self.panel(ui, PanelKind::Sweeps);
                        });
                    self.panel(ui, PanelKind::Partitions);
                });
            self.panel(ui, PanelKind::Surface);
        });
        self.frame_ms = start.elapsed().as_secs_f32() * 1e3;
        if let Some(trace) = &mut self.trace {
            trace.push(self.frame_ms);
            eprintln!(
                "frame {} {:.3} ms (update {:.3} ms)",
                trace.len(),
                self.frame_ms,
                self.state.update_ms
            );
        }
    }
}

/// Options for the window: wgpu renderer with the limits innscope's compute needs.
#[must_use]
pub fn native_options() -> eframe::NativeOptions {
    let mut setup = egui_wgpu::WgpuSetupCreateNew::without_display_handle();
    setup.device_descriptor = Arc::new(|adapter: &wgpu::Adapter| wgpu::DeviceDescriptor {
        label: Some("innscope window"),
        required_limits: required_limits(&adapter.limits()),
        ..Default::default()
    });
    eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("innscope")
            .with_inner_size([1440.0, 900.0])
            .with_drag_and_drop(true),
        renderer: eframe::Renderer::Wgpu,
        wgpu_options: egui_wgpu::WgpuConfiguration {
            wgpu_setup: setup.into(),
            ..Default::default()
        },
        ..Default::default()
    }
}

/// Open the window on `model` and run until it closes.
///
/// # Errors
/// No display, no usable graphics adapter, or a model that does not run.
pub fn run(
    model: Model,
    source: String,
    twin: Option<Model>,
    choice: EngineChoice,
    trace_frames: bool,
) -> anyhow::Result<()> {
    eframe::run_native(
        "innscope",
        native_options(),
        Box::new(move |cc| {
            Ok(Box::new(InnscopeApp::new(
                cc,
                model,
                source,
                twin,
                choice,
                trace_frames,
            )?))
        }),
    )
    .map_err(|e| anyhow::anyhow!("could not open the window: {e}"))
}
