//! Latent diffusion: noise schedules and samplers.

pub mod sampler;
pub mod schedule;

pub use sampler::{Capture, Frame, SampleRequest, sample};
pub use schedule::NoiseSchedule;
