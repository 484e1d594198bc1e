//! Two-stage training: the autoencoder, then diffusion in its latent space.

pub mod ae_stage;
pub mod diffusion_stage;
pub mod events;
pub mod optim;
pub mod scoring;
pub mod trainer;
pub mod worker;

pub use events::{Command, Event, ModelRequest, Stage};
pub use worker::{Start, TrainJob, Worker};
