//! Who buys which seat: a reproducible hot-tailed workload.

/// The bake-off's shape: `buyers` buyers, one reservation each; a share
/// `hot_share` of them target the first `hot_seats` seats.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Workload {
    /// How many buyers (one reservation each).
    pub buyers: usize,
    /// How many seats.
    pub seats: usize,
    /// How many of the seats are hot.
    pub hot_seats: usize,
    /// The share of buyers that target a hot seat, in `[0, 1]`.
    pub hot_share: f64,
    /// The seed of the seat choices.
    pub seed: u64,
}

/// Why a workload cannot run.
#[derive(Debug, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum WorkloadError {
    /// Nothing to reserve or nobody to reserve it.
    #[error("buyers ({buyers}) and seats ({seats}) must both be at least 1")]
    Empty {
        /// The buyers asked for.
        buyers: usize,
        /// The seats asked for.
        seats: usize,
    },
    /// More hot seats than seats.
    #[error("hot seats ({hot_seats}) cannot exceed seats ({seats})")]
    TooManyHotSeats {
        /// The hot seats asked for.
        hot_seats: usize,
        /// The seats asked for.
        seats: usize,
    },
    /// A share outside `[0, 1]`.
    #[error("hot share must be between 0 and 1, got {0}")]
    HotShare(f64),
}

impl Workload {
    /// Checks the shape.
    ///
    /// ```
    /// use nexus_examples::bakeoff::Workload;
    /// let w = Workload { buyers: 200, seats: 50, hot_seats: 10, hot_share: 0.8, seed: 1 };
    /// assert!(w.validate().is_ok());
    /// assert!(Workload { hot_seats: 60, ..w }.validate().is_err());
    /// ```
    pub fn validate(&self) -> Result<(), WorkloadError> {
        if self.buyers == 0 || self.seats == 0 {
            return Err(WorkloadError::Empty {
                buyers: self.buyers,
                seats: self.seats,
            });
        }
        if self.hot_seats > self.seats {
            return Err(WorkloadError::TooManyHotSeats {
                hot_seats: self.hot_seats,
                seats: self.seats,
            });
        }
        if !(0.0..=1.0).contains(&self.hot_share) {
            return Err(WorkloadError::HotShare(self.hot_share));
        }
        Ok(())
    }

    /// The seat of each buyer, the same for the same seed.
    ///
    /// ```
    /// use nexus_examples::bakeoff::Workload;
    /// let w = Workload { buyers: 100, seats: 50, hot_seats: 10, hot_share: 1.0, seed: 7 };
    /// let choices = w.choices();
    /// assert_eq!(choices, w.choices());
    /// assert!(choices.iter().all(|&seat| seat < 10));
    /// ```
    pub fn choices(&self) -> Vec<usize> {
        let mut rng = fastrand::Rng::with_seed(self.seed);
        let cold = self.seats - self.hot_seats;
        (0..self.buyers)
            .map(|_| {
                let hot = self.hot_seats > 0 && (cold == 0 || rng.f64() < self.hot_share);
                if hot {
                    rng.usize(0..self.hot_seats)
                } else {
                    self.hot_seats + rng.usize(0..cold)
                }
            })
            .collect()
    }
}
