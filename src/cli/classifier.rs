//! `latentlab classifier train`: train (or show) the cached classifier that
//! scores generated images.

use std::path::PathBuf;

use burn::tensor::Device;
use clap::{Args, Subcommand};

use super::{BackendArgs, CliError, common};
use crate::classifier::{self, Classifier, ClassifierInfo};
use crate::data::{Dataset, DatasetKind};

#[derive(Debug, Args)]
pub struct ClassifierArgs {
    #[command(subcommand)]
    pub command: ClassifierCmd,
}

#[derive(Debug, Subcommand)]
pub enum ClassifierCmd {
    /// Train the classifier for a dataset and cache it (reports test accuracy).
    Train {
        #[arg(long, default_value = "mnist", value_name = "mnist|fashion")]
        dataset: DatasetKind,
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Training epochs (default: about 150,000 images seen).
        #[arg(long)]
        epochs: Option<usize>,
        /// Retrain even if a cached classifier exists.
        #[arg(long)]
        force: bool,
    },
}

pub fn run(args: ClassifierArgs, backend: &BackendArgs) -> Result<(), CliError> {
    let ClassifierCmd::Train {
        dataset,
        data_dir,
        epochs,
        force,
    } = args.command;
    let (_, device) = common::device(backend)?;
    let data = common::load_dataset(dataset, data_dir.as_deref())?;
    if !force
        && let Some((_, info)) =
            classifier::load_cached(&data, &device).map_err(CliError::failed)?
    {
        println!(
            "cached classifier for {}: test accuracy {:.2}% ({} epochs); --force retrains",
            info.dataset,
            info.test_accuracy * 100.0,
            info.epochs
        );
        return Ok(());
    }
    let (_, info) = train_and_cache(&data, &device, epochs)?;
    println!(
        "classifier for {}: test accuracy {:.2}% on {} test images",
        info.dataset,
        info.test_accuracy * 100.0,
        info.test_images
    );
    Ok(())
}

/// Train with per-epoch lines on stderr and store in the cache.
pub fn train_and_cache(
    data: &Dataset,
    device: &Device,
    epochs: Option<usize>,
) -> Result<(Classifier, ClassifierInfo), CliError> {
    let epochs = epochs.unwrap_or_else(|| classifier::default_epochs(data.train_len()));
    if epochs == 0 {
        return Err(CliError::usage("--epochs: must be at least 1"));
    }
    eprintln!(
        "training the {} classifier for {epochs} epochs ...",
        data.kind.name()
    );
    classifier::retrain(data, device, epochs, &mut say_progress())
        .map_err(CliError::failed)?
        .ok_or_else(|| CliError::failed("classifier training stopped"))
}

/// Per-epoch lines on stderr (and one while another process trains it).
fn say_progress() -> impl FnMut(usize, usize, f64) -> bool {
    let mut waiting = false;
    move |e, epochs, loss| {
        if e == 0 {
            if !waiting {
                eprintln!("another latentlab process is training this classifier; waiting for it");
                waiting = true;
            }
        } else {
            eprintln!("  classifier epoch {e:>2}/{epochs}: loss {loss:.4}");
        }
        true
    }
}

/// The cached classifier, training one first if there is none.
pub fn load_or_train(
    data: &Dataset,
    device: &Device,
) -> Result<(Classifier, ClassifierInfo), CliError> {
    // A look at the cache, not a load: load_or_train loads it.
    if !classifier::cache_stem(data).with_extension("bpk").exists() {
        eprintln!(
            "training the {} classifier that scores samples (once; it is cached) ...",
            data.kind.name()
        );
    }
    classifier::load_or_train(data, device, &mut say_progress())
        .map_err(CliError::failed)?
        .ok_or_else(|| CliError::failed("classifier training stopped"))
}
