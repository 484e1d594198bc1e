//! The window under egui_kittest: a harness around the real `App` and a
//! way to wait for its background work.

use std::time::{Duration, Instant};

use egui_kittest::Harness;
use latentlab::ui::{App, AppOptions, Tab};

pub fn harness(opts: AppOptions, tab: Tab) -> Harness<'static, App> {
    Harness::builder()
        .with_size([1280.0, 800.0])
        .with_max_steps(50)
        .build_eframe(move |cc| {
            // kittest does not clear to the app's colour; eframe does.
            let mut app = App::new(
                cc,
                AppOptions {
                    opaque: true,
                    ..opts
                },
            );
            app.settings.tab = tab;
            app
        })
}

/// Step frames (real time passing) until `done` holds or `secs` pass.
pub fn step_until(h: &mut Harness<'static, App>, secs: u64, done: impl Fn(&App) -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        h.step();
        if done(h.state()) {
            h.step();
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}
