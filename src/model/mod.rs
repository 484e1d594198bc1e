//! The two models: the CAB autoencoder and the latent U-Net.

pub mod attention;
pub mod autoencoder;
pub mod fused;
pub mod params;
pub mod unet;

pub use autoencoder::Autoencoder;
pub use unet::Unet;
