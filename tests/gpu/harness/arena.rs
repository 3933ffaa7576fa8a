//! One buffer holding an op's inputs and outputs at 4-byte- (never 16-byte-) aligned
//! offsets, each range fenced by sentinel words, as an app with one big arena would place
//! them: after the op, the outputs are checked and every other word must be unchanged.

use wgpu_loss::Gpu;

use super::data::download;

/// The word every gap and every output range starts as (a NaN payload no op writes).
pub const SENTINEL: u32 = 0x7fa5_a5a5;

/// A range of the arena, in 4-byte words.
#[derive(Debug, Clone, Copy)]
pub struct Range {
    pub start: usize,
    pub len: usize,
}

/// The host image of the arena, then its device buffer.
pub struct Arena {
    words: Vec<u32>,
    outputs: Vec<Range>,
    buffer: Option<wgpu::Buffer>,
}

impl Default for Arena {
    fn default() -> Self {
        Self::new()
    }
}

impl Arena {
    pub fn new() -> Self {
        Self { words: Vec::new(), outputs: Vec::new(), buffer: None }
    }

    /// Pads with sentinels to a word offset ≡ 1 (mod 4): 4 bytes past a 16-byte boundary.
    fn fence(&mut self) -> usize {
        self.words.push(SENTINEL);
        while self.words.len() % 4 != 1 {
            self.words.push(SENTINEL);
        }
        self.words.len()
    }

    /// Places `data` (any 4-byte-multiple plain type, or halves padded to whole words).
    pub fn put<T: bytemuck::Pod>(&mut self, data: &[T]) -> Range {
        let start = self.fence();
        let mut bytes = bytemuck::cast_slice::<T, u8>(data).to_vec();
        bytes.resize(bytes.len().next_multiple_of(4), 0);
        self.words.extend(bytemuck::cast_slice::<u8, u32>(&bytes));
        Range { start, len: self.words.len() - start }
    }

    /// Reserves `len` words for an output (filled with sentinels until the op writes them).
    pub fn output(&mut self, len: usize) -> Range {
        let start = self.fence();
        self.words.extend(std::iter::repeat_n(SENTINEL, len));
        let range = Range { start, len };
        self.outputs.push(range);
        range
    }

    /// Uploads the arena (STORAGE | COPY_SRC | COPY_DST), closing it with a last fence.
    pub fn upload(&mut self, gpu: &Gpu) -> &wgpu::Buffer {
        self.fence();
        self.buffer = Some(super::data::upload(gpu, &self.words));
        self.buffer.as_ref().expect("just uploaded")
    }

    /// The device range of `range` (after [`Arena::upload`]).
    pub fn slice(&self, range: Range) -> wgpu::BufferSlice<'_> {
        let buffer = self.buffer.as_ref().expect("upload the arena first");
        buffer.slice(4 * range.start as u64..4 * (range.start + range.len) as u64)
    }

    /// Reads the arena back (waiting for submitted work), checks that every word outside
    /// the outputs is as placed, and returns the outputs' words as f32, in the order they
    /// were reserved.
    pub fn read(&self, gpu: &Gpu, what: &str) -> Vec<Vec<f32>> {
        let buffer = self.buffer.as_ref().expect("upload the arena first");
        let after = download(gpu, buffer, 0, self.words.len());
        let inside = |i: usize| self.outputs.iter().any(|r| (r.start..r.start + r.len).contains(&i));
        for (i, (&was, now)) in self.words.iter().zip(&after).enumerate() {
            assert!(
                inside(i) || was == now.to_bits(),
                "{what}: word {i} outside the outputs changed from {was:#x} to {:#x}",
                now.to_bits()
            );
        }
        self.outputs.iter().map(|r| after[r.start..r.start + r.len].to_vec()).collect()
    }
}
