//! The benches' deterministic generator (SplitMix64), so every run times the same data.

pub struct SplitMix64(pub u64);

impl SplitMix64 {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `[lo, hi]` (24 random bits).
    pub fn uniform(&mut self, lo: f32, hi: f32) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32 * (hi - lo) + lo
    }

    /// Uniform in `0..classes`.
    pub fn class(&mut self, classes: usize) -> i32 {
        (self.next_u64() % classes as u64) as i32
    }
}
