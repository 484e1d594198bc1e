//! β schedules and the quantities derived from them, all in f64 on the host.

use crate::config::{BetaSchedule, DiffusionConfig};

#[derive(Debug, Clone)]
pub struct NoiseSchedule {
    pub betas: Vec<f64>,
    pub alphas: Vec<f64>,
    /// ᾱ_t = ∏_{s≤t} α_s.
    pub alpha_bars: Vec<f64>,
}

impl NoiseSchedule {
    pub fn new(cfg: &DiffusionConfig) -> Self {
        Self::from_betas(betas(
            cfg.schedule,
            cfg.timesteps,
            cfg.beta_start,
            cfg.beta_end,
        ))
    }

    pub fn from_betas(betas: Vec<f64>) -> Self {
        let alphas: Vec<f64> = betas.iter().map(|b| 1.0 - b).collect();
        let alpha_bars = alphas
            .iter()
            .scan(1.0, |acc, a| {
                *acc *= a;
                Some(*acc)
            })
            .collect();
        Self {
            betas,
            alphas,
            alpha_bars,
        }
    }

    pub fn len(&self) -> usize {
        self.betas.len()
    }

    pub fn is_empty(&self) -> bool {
        self.betas.is_empty()
    }

    /// ᾱ at t, with ᾱ_{-1} = 1 (the clean end of the chain).
    pub fn alpha_bar(&self, t: Option<usize>) -> f64 {
        t.map_or(1.0, |t| self.alpha_bars[t])
    }

    /// Signal-to-noise ratio ᾱ_t / (1 − ᾱ_t) of x_t.
    pub fn snr(&self, t: usize) -> f64 {
        self.alpha_bars[t] / (1.0 - self.alpha_bars[t])
    }

    /// The Min-SNR-γ weight of a noise-prediction loss at t: min(SNR_t,
    /// γ) / SNR_t, which is 1 where the noise dominates and falls as 1/SNR
    /// on the nearly clean steps.
    pub fn min_snr_weight(&self, t: usize, gamma: f64) -> f64 {
        (gamma / self.snr(t)).min(1.0)
    }

    /// Posterior variance β̃_t = β_t (1 − ᾱ_{t−1}) / (1 − ᾱ_t).
    pub fn posterior_variance(&self, t: usize) -> f64 {
        let prev = self.alpha_bar(t.checked_sub(1));
        self.betas[t] * (1.0 - prev) / (1.0 - self.alpha_bars[t])
    }
}

/// β_1..β_T for the chosen schedule. `start`/`end` apply to linear,
/// quadratic and sigmoid; cosine is defined by ᾱ alone (s = 0.008).
pub fn betas(kind: BetaSchedule, steps: usize, start: f64, end: f64) -> Vec<f64> {
    let frac = |i: usize| i as f64 / (steps - 1) as f64;
    match kind {
        BetaSchedule::Linear => (0..steps)
            .map(|i| start + (end - start) * frac(i))
            .collect(),
        BetaSchedule::Quadratic => (0..steps)
            .map(|i| (start.sqrt() + (end.sqrt() - start.sqrt()) * frac(i)).powi(2))
            .collect(),
        BetaSchedule::Sigmoid => (0..steps)
            .map(|i| {
                let x = -6.0 + 12.0 * frac(i);
                start + (end - start) / (1.0 + (-x).exp())
            })
            .collect(),
        BetaSchedule::Cosine => {
            // Nichol & Dhariwal 2021, eq. 17, with β clipped at 0.999.
            let s = 0.008;
            let f = |t: f64| {
                ((t / steps as f64 + s) / (1.0 + s) * std::f64::consts::FRAC_PI_2)
                    .cos()
                    .powi(2)
            };
            (0..steps)
                .map(|i| (1.0 - f(i as f64 + 1.0) / f(i as f64)).min(0.999))
                .collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn min_snr_weights_only_the_steps_above_gamma() {
        let s = NoiseSchedule::from_betas(betas(BetaSchedule::Cosine, 1000, 1e-4, 0.02));
        // t = 0 is nearly clean (SNR in the thousands), t = T − 1 pure noise.
        assert!(s.snr(0) > 1000.0 && s.snr(999) < 1e-3);
        let w0 = s.min_snr_weight(0, 5.0);
        assert!((w0 - 5.0 / s.snr(0)).abs() < 1e-12 && w0 < 0.005);
        assert_eq!(s.min_snr_weight(999, 5.0), 1.0);
        // Weights fall monotonically towards the clean end.
        let w: Vec<f64> = (0..1000).map(|t| s.min_snr_weight(t, 5.0)).collect();
        assert!(w.windows(2).all(|p| p[0] <= p[1]));
        let switch = w.iter().position(|&v| v == 1.0).unwrap();
        assert!(s.snr(switch) <= 5.0 && s.snr(switch - 1) > 5.0);
    }

    #[test]
    fn linear_matches_torch_linspace() {
        let b = betas(BetaSchedule::Linear, 1000, 1e-4, 0.02);
        assert_eq!(b.len(), 1000);
        assert!((b[0] - 1e-4).abs() < 1e-15);
        assert!((b[999] - 0.02).abs() < 1e-15);
        assert!((b[500] - (1e-4 + (0.02 - 1e-4) * 500.0 / 999.0)).abs() < 1e-15);
        let s = NoiseSchedule::from_betas(b);
        // Known value for the DDPM linear schedule: ᾱ_T ≈ 4.0358e-5.
        assert!(
            (s.alpha_bars[999] - 4.0358e-5).abs() < 1e-8,
            "{}",
            s.alpha_bars[999]
        );
    }

    #[test]
    fn cosine_alpha_bar_follows_the_closed_form() {
        let b = betas(BetaSchedule::Cosine, 1000, 1e-4, 0.02);
        let s = NoiseSchedule::from_betas(b);
        let f = |t: f64| {
            ((t / 1000.0 + 0.008) / 1.008 * std::f64::consts::FRAC_PI_2)
                .cos()
                .powi(2)
        };
        for t in [0usize, 10, 250, 500, 900] {
            let expected = f(t as f64 + 1.0) / f(0.0);
            assert!((s.alpha_bars[t] - expected).abs() < 1e-9, "t={t}");
        }
        assert!(s.betas.iter().all(|&b| b > 0.0 && b <= 0.999));
        assert!((s.betas[999] - 0.999).abs() < 1e-12, "last beta is clipped");
    }

    #[test]
    fn every_schedule_is_increasing_and_bounded() {
        for kind in [
            BetaSchedule::Linear,
            BetaSchedule::Cosine,
            BetaSchedule::Quadratic,
            BetaSchedule::Sigmoid,
        ] {
            let b = betas(kind, 200, 1e-4, 0.02);
            assert!(b.windows(2).all(|w| w[1] >= w[0]), "{kind:?}");
            assert!(b.iter().all(|&x| x > 0.0 && x < 1.0), "{kind:?}");
        }
        let q = betas(BetaSchedule::Quadratic, 3, 1e-4, 0.01);
        assert!((q[1] - ((1e-2f64.sqrt() + 1e-4f64.sqrt()) / 2.0).powi(2)).abs() < 1e-15);
    }

    #[test]
    fn posterior_variance_is_zero_at_t0_and_below_beta() {
        let s = NoiseSchedule::from_betas(betas(BetaSchedule::Linear, 1000, 1e-4, 0.02));
        assert_eq!(s.posterior_variance(0), 0.0);
        for t in 1..1000 {
            assert!(s.posterior_variance(t) <= s.betas[t]);
        }
    }
}
