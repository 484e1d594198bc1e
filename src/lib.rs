//! latentlab: a convolutional autoencoder with channel attention, then a
//! DDPM U-Net in its latent space — trained, sampled and measured.
//!
//! The engine (everything here) has no UI code; the CLI and the workbench
//! window both drive it through [`train::Worker`] and its event stream.

pub mod backend;
pub mod bench;
pub mod classifier;
pub mod cli;
pub mod config;
pub mod data;
pub mod diffusion;
pub mod export;
pub mod metrics;
pub mod model;
pub mod pipeline;
pub mod rng;
pub mod run;
pub mod train;
#[cfg(feature = "gui")]
pub mod ui;
