//! `latentlab sample`: generate images from a trained run.

use std::path::PathBuf;

use clap::Args;
use indicatif::ProgressBar;

use super::common::{self, steps_style};
use super::{BackendArgs, CliError};
use crate::config::SamplerKind;
use crate::diffusion::SampleRequest;
use crate::export;
use crate::pipeline::{LatentDiffusion, PIXELS, SIDE};

#[derive(Debug, Clone, Args)]
pub struct SamplerArgs {
    /// Sampler (default: the run's config).
    #[arg(long, value_enum)]
    pub sampler: Option<SamplerChoice>,
    /// DDIM or DPM-Solver++ steps (default: the run's config).
    #[arg(long)]
    pub steps: Option<usize>,
    /// DDIM η: 0 is deterministic; 1 adds DDPM's posterior-variance noise (σ² = β̃).
    #[arg(long)]
    pub eta: Option<f64>,
    /// Seed of the initial noise and of every step's noise.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Class-conditional runs: the class to draw, by index or name (a
    /// digit; t-shirt, trouser, … on Fashion-MNIST), or `all`: --n of each,
    /// one grid row per class.
    #[arg(long, value_name = "C|all")]
    pub class: Option<String>,
    /// Classifier-free guidance w (default: the run's): 0 unconditional,
    /// 1 plain conditional, more for stronger class features.
    #[arg(long, value_name = "W")]
    pub guidance: Option<f64>,
}

/// Which classes `--class` asks for.
pub enum ClassChoice {
    One(usize),
    All,
}

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum SamplerChoice {
    Ddpm,
    Ddim,
    /// DPM-Solver++(2M): about a third of DDIM's steps for the same quality.
    Dpmpp,
}

impl SamplerArgs {
    /// The run's sampling settings with these overrides, validated.
    pub fn request(&self, model: &LatentDiffusion, n: usize) -> Result<SampleRequest, CliError> {
        let mut req = model.default_request(n, self.seed);
        if let Some(s) = self.sampler {
            req.sampler = match s {
                SamplerChoice::Ddpm => SamplerKind::Ddpm,
                SamplerChoice::Ddim => SamplerKind::Ddim,
                SamplerChoice::Dpmpp => SamplerKind::Dpmpp,
            };
            if req.sampler == SamplerKind::Dpmpp {
                req.eta = 0.0;
            }
        }
        if let Some(steps) = self.steps {
            let t = model.schedule.len();
            if steps == 0 || steps > t {
                return Err(CliError::usage(format!(
                    "--steps {steps}: must be between 1 and the run's {t} timesteps"
                )));
            }
            req.steps = steps;
        }
        if let Some(eta) = self.eta {
            if req.sampler == SamplerKind::Dpmpp {
                return Err(CliError::usage(
                    "--eta: DPM-Solver++ is deterministic and takes no η; use --sampler ddim",
                ));
            }
            if !(0.0..=1.0).contains(&eta) {
                return Err(CliError::usage(format!("--eta {eta}: must be in [0, 1]")));
            }
            req.eta = eta;
        }
        self.classes(model, &mut req)?;
        Ok(req)
    }

    /// Apply --class and --guidance: one class for every sample, or `all`
    /// (each class n times, in order: the request grows to n × classes).
    fn classes(&self, model: &LatentDiffusion, req: &mut SampleRequest) -> Result<(), CliError> {
        let classes = model.unet.classes();
        if classes == 0 {
            if self.class.is_some() || self.guidance.is_some() {
                return Err(CliError::usage(
                    "--class/--guidance: this run is unconditional (unet.classes = 0); train one \
                     with classes, e.g. --preset conditional",
                ));
            }
            return Ok(());
        }
        if let Some(w) = self.guidance {
            if !(0.0..=100.0).contains(&w) {
                return Err(CliError::usage(format!(
                    "--guidance {w}: must be in [0, 100]"
                )));
            }
            req.guidance = w;
        }
        let choice = match self.class.as_deref() {
            None => return Ok(()),
            Some(text) => parse_class(text, model.cfg.dataset, classes)?,
        };
        req.classes = Some(match choice {
            ClassChoice::One(c) => vec![c; req.n],
            ClassChoice::All => {
                let per = req.n;
                req.n = per * classes;
                (0..classes)
                    .flat_map(|c| std::iter::repeat_n(c, per))
                    .collect()
            }
        });
        Ok(())
    }
}

/// `--class`: an index, a class name of the dataset, or `all`.
pub fn parse_class(
    text: &str,
    dataset: crate::data::DatasetKind,
    classes: usize,
) -> Result<ClassChoice, CliError> {
    let t = text.trim().to_lowercase();
    if t == "all" {
        return Ok(ClassChoice::All);
    }
    let names = dataset.class_names();
    let index = t
        .parse::<usize>()
        .ok()
        .or_else(|| names.iter().position(|n| *n == t))
        .filter(|&c| c < classes);
    index.map(ClassChoice::One).ok_or_else(|| {
        CliError::usage(format!(
            "--class {text}: give a class index below {classes}, a name ({}) or all",
            names[..classes.min(10)].join(", ")
        ))
    })
}

#[derive(Debug, Args)]
pub struct SampleArgs {
    /// The run directory written by `latentlab train`.
    #[arg(long, value_name = "DIR")]
    pub run: PathBuf,
    /// How many images to generate.
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    #[command(flatten)]
    pub sampler: SamplerArgs,
    /// Output directory (created); gets sample_0000.png, ... and grid.png.
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Overwrite existing files in --out.
    #[arg(long)]
    pub force: bool,
}

pub fn run(args: SampleArgs, backend: &BackendArgs) -> Result<(), CliError> {
    if args.n == 0 || args.n > 100_000 {
        return Err(CliError::usage(format!(
            "--n {}: must be between 1 and 100000 (one command keeps its images in memory; \
             for more, run it again with another --seed and --out)",
            args.n
        )));
    }
    let (_, device) = common::device(backend)?;
    let model = LatentDiffusion::load(&args.run, &device)?;
    let req = args.sampler.request(&model, args.n)?;
    // With --class all there are n of each class: one grid row per class.
    let (count, cols) = if req.n != args.n {
        (req.n, args.n)
    } else {
        (args.n, export::square_cols(args.n))
    };
    if count > 100_000 {
        return Err(CliError::usage(format!(
            "--n {} of each class makes {count} images: at most 100000",
            args.n
        )));
    }
    std::fs::create_dir_all(&args.out)
        .map_err(|e| CliError::failed(format!("{}: cannot create ({e})", args.out.display())))?;
    // Refuse before sampling, not after: nothing is half-written or wasted.
    let names: Vec<String> = (0..count)
        .map(|i| format!("sample_{i:04}.png"))
        .chain(["grid.png".to_string()])
        .collect();
    if !args.force
        && let Some(taken) = names.iter().map(|n| args.out.join(n)).find(|p| p.exists())
    {
        return Err(CliError::failed(format!(
            "{}: already exists; pass --force to overwrite it or choose another --out",
            taken.display()
        )));
    }
    let images = generate_batched(&model, &req)?;
    for i in 0..count {
        let img = export::gray(&images[i * PIXELS..(i + 1) * PIXELS], SIDE);
        export::save_png(
            &img,
            &args.out.join(format!("sample_{i:04}.png")),
            args.force,
        )?;
    }
    let grid = export::grid(&images, SIDE, cols, 2, 2);
    export::save_png(&grid, &args.out.join("grid.png"), args.force)?;
    eprintln!(
        "wrote {} samples and grid.png to {}",
        count,
        args.out.display()
    );
    Ok(())
}

/// `LatentDiffusion::generate_many` with a progress bar.
pub fn generate_batched(
    model: &LatentDiffusion,
    req: &SampleRequest,
) -> Result<Vec<f32>, CliError> {
    let bar = ProgressBar::new(req.n as u64).with_style(steps_style());
    bar.set_prefix("sampling");
    let images = model
        .generate_many(req, &mut |done| {
            bar.set_position(done as u64);
            true
        })
        .map_err(|e| CliError::failed(e.to_string()))?;
    bar.finish_and_clear();
    Ok(images)
}
