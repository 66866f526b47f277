//! The pixel budget: decoded pixels all of a worker's jobs may hold at once.

use tokio::sync::{Semaphore, SemaphorePermit};

/// Counted in whole megapixels (one semaphore permit each). A job larger
/// than the whole budget waits until it can run alone, rather than never.
pub struct PixelBudget {
    megapixels: Semaphore,
    total: u32,
}

/// A job's share of the budget, given back when dropped.
pub struct Reservation<'a>(#[allow(dead_code)] SemaphorePermit<'a>);

impl PixelBudget {
    pub fn new(pixels: u64) -> PixelBudget {
        let total = megapixels(pixels).clamp(1, Semaphore::MAX_PERMITS as u64);
        let total = u32::try_from(total).unwrap_or(u32::MAX);
        PixelBudget {
            megapixels: Semaphore::new(total as usize),
            total,
        }
    }

    /// Wait until `pixels` (at most the whole budget) are free, and hold them.
    pub async fn reserve(&self, pixels: u64) -> Reservation<'_> {
        let wanted = u32::try_from(megapixels(pixels))
            .unwrap_or(u32::MAX)
            .clamp(1, self.total);
        let permit = self
            .megapixels
            .acquire_many(wanted)
            .await
            .expect("the pixel budget is never closed");
        Reservation(permit)
    }
}

fn megapixels(pixels: u64) -> u64 {
    pixels.div_ceil(1_000_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reservations_round_up_to_megapixels_and_never_exceed_the_whole() {
        let budget = PixelBudget::new(3_000_000);
        let a = budget.reserve(1_500_001).await; // 2 MP
        assert_eq!(budget.megapixels.available_permits(), 1);
        drop(a);
        // Larger than the whole budget: takes all of it instead of waiting forever.
        let b = budget.reserve(50_000_000).await;
        assert_eq!(budget.megapixels.available_permits(), 0);
        drop(b);
        assert_eq!(PixelBudget::new(0).total, 1);
    }
}
