//! The workbench window (eframe, glow renderer by default). The engine runs
//! on the worker thread and job threads; this module only draws plain data.

pub mod app;
pub mod bench;
mod chrome;
mod class_pick;
mod config_form;
pub mod demo;
mod demo_runs;
pub mod denoising;
pub mod experiment;
pub mod export;
pub mod jobs;
pub mod latent;
pub mod loss;
pub mod panel;
pub mod panels;
pub mod queue;
pub mod reconstructions;
mod relay;
mod run_compare;
pub mod run_history;
mod run_sweep;
pub mod runs;
pub mod samples;
pub mod session;
pub mod settings;
pub mod widgets;
pub mod work;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

pub use app::{App, AppOptions, Injected};
pub use settings::Tab;

pub const TITLE: &str = "latentlab";
pub const SIZE: [f32; 2] = [1280.0, 800.0];

/// Which renderer eframe uses (glow unless asked otherwise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RendererChoice {
    #[default]
    Glow,
    Wgpu,
}

/// Whether a window can open at all: X11 or Wayland must be reachable.
pub fn display_available() -> bool {
    if !cfg!(any(
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd",
        target_os = "netbsd"
    )) {
        return true;
    }
    let set = |k: &str| std::env::var_os(k).is_some_and(|v| !v.is_empty());
    set("DISPLAY") || set("WAYLAND_DISPLAY")
}

pub const NO_DISPLAY: &str = "no display to open the workbench on (DISPLAY and WAYLAND_DISPLAY are unset); \
     run headless with `latentlab train --preset quick` (see `latentlab --help`)";

pub fn native_options(persist: bool, renderer: RendererChoice) -> eframe::NativeOptions {
    eframe::NativeOptions {
        renderer: match renderer {
            RendererChoice::Glow => eframe::Renderer::Glow,
            RendererChoice::Wgpu => eframe::Renderer::Wgpu,
        },
        viewport: egui::ViewportBuilder::default()
            .with_title(TITLE)
            .with_app_id("latentlab")
            .with_inner_size(SIZE)
            .with_min_inner_size([720.0, 480.0]),
        persist_window: persist,
        ..Default::default()
    }
}

/// Open the workbench and block until it is closed.
pub fn run_workbench(
    opts: AppOptions,
    renderer: RendererChoice,
    backend: Option<String>,
    device: Option<String>,
) -> Result<(), String> {
    if !display_available() {
        return Err(NO_DISPLAY.into());
    }
    eframe::run_native(
        TITLE,
        native_options(true, renderer),
        Box::new(move |cc| {
            // Ctrl-C in the terminal closes the window the normal way, so a
            // running training is stopped and checkpointed first.
            let ctx = cc.egui_ctx.clone();
            let _ = ctrlc::set_handler(move || ctx.send_viewport_cmd(egui::ViewportCommand::Close));
            let mut app = App::new(cc, opts);
            // Backend flags on the command line win over the saved choice.
            if let Some(b) = backend {
                app.settings.backend = b;
            }
            if let Some(d) = device {
                app.settings.device = d;
            }
            Ok(Box::new(app))
        }),
    )
    .map_err(|e| {
        format!(
            "cannot open the workbench window: {e}; run headless with `latentlab train` instead"
        )
    })
}

/// Shows a demo panel for a few frames, saves the window as PNG, closes.
struct Shooter {
    app: App,
    frames: usize,
    requested: bool,
    out: PathBuf,
    result: Arc<Mutex<Option<Result<(), String>>>>,
}

impl eframe::App for Shooter {
    fn logic(&mut self, ctx: &egui::Context, frame: &mut eframe::Frame) {
        self.app.logic(ctx, frame);
        if self.result.lock().map(|r| r.is_some()).unwrap_or(true) {
            ctx.send_viewport_cmd(egui::ViewportCommand::Close);
            return;
        }
        self.frames += 1;
        // Let layout settle and background jobs (e.g. PCA) land first.
        if self.frames > 8 && self.app.jobs.busy() == 0 && !self.requested {
            self.requested = true;
            let (out, result) = (self.out.clone(), self.result.clone());
            let waker = ctx.clone();
            ctx.request_screenshot(move |image| {
                let saved = save_color_image(&image, &out);
                if let Ok(mut r) = result.lock() {
                    *r = Some(saved);
                }
                waker.request_repaint();
            });
        }
        ctx.request_repaint();
    }

    fn ui(&mut self, ui: &mut egui::Ui, frame: &mut eframe::Frame) {
        self.app.ui(ui, frame);
    }

    fn clear_color(&self, visuals: &egui::Visuals) -> [f32; 4] {
        self.app.clear_color(visuals)
    }
}

fn save_color_image(image: &egui::ColorImage, out: &Path) -> Result<(), String> {
    let [w, h] = image.size;
    let bytes: Vec<u8> = image
        .pixels
        .iter()
        .flat_map(|c| c.to_srgba_unmultiplied())
        .collect();
    let img = image::RgbaImage::from_raw(w as u32, h as u32, bytes)
        .ok_or_else(|| "the screenshot has an unexpected size".to_string())?;
    let mut buf = std::io::Cursor::new(Vec::new());
    img.write_to(&mut buf, image::ImageFormat::Png)
        .map_err(|e| format!("encoding the screenshot: {e}"))?;
    if let Some(dir) = out.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    crate::run::checkpoint::write_atomic(out, &buf.into_inner()).map_err(|e| e.to_string())
}

/// `latentlab screenshot`: open a real window on the demo state, show
/// `panel`, save the window to `out`.
pub fn screenshot(
    panel: Tab,
    out: &Path,
    overwrite: bool,
    renderer: RendererChoice,
    size: [f32; 2],
) -> Result<(), String> {
    if !display_available() {
        return Err(NO_DISPLAY.into());
    }
    if out.exists() && !overwrite {
        return Err(format!(
            "{} already exists; pass --force to overwrite it",
            out.display()
        ));
    }
    let result = Arc::new(Mutex::new(None));
    let shooter_result = result.clone();
    let out = out.to_path_buf();
    let mut options = native_options(false, renderer);
    options.viewport = options.viewport.with_inner_size(size);
    eframe::run_native(
        TITLE,
        options,
        Box::new(move |cc| {
            let opts = AppOptions {
                demo: true,
                dialogs: false,
                fresh_settings: true,
                ..Default::default()
            };
            let mut app = App::new(cc, opts);
            app.settings.tab = panel;
            if panel != Tab::Runs {
                // The demo's runs sit in a random scratch directory: other
                // panels show a plain name instead.
                app.settings.runs_dir = PathBuf::from("runs");
            }
            Ok(Box::new(Shooter {
                app,
                frames: 0,
                requested: false,
                out,
                result: shooter_result,
            }))
        }),
    )
    .map_err(|e| format!("cannot open a window for the screenshot: {e}"))?;
    let outcome = result
        .lock()
        .map_err(|_| "screenshot state poisoned".to_string())?
        .take();
    outcome.unwrap_or_else(|| Err("the window closed before the screenshot was taken".into()))
}
