//! The digits data set (`data/digits.csv.gz`, decompressed by the page): 8×8 images of
//! handwritten digits, one per line as 64 pixel values in `0..=16` and then the label.

use wgpu_loss::{Error, Result};

/// Pixels per image.
pub const FEATURES: usize = 64;
/// Digits 0 to 9.
pub const CLASSES: usize = 10;
/// Every `TEST_EVERY`-th image is held out for testing.
const TEST_EVERY: usize = 5;

/// Images as rows of `FEATURES` values scaled to `[0, 1]`, with their labels.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Samples {
    pub features: Vec<f32>,
    pub labels: Vec<i32>,
}

impl Samples {
    pub fn rows(&self) -> usize {
        self.labels.len()
    }

    fn push(&mut self, pixels: &[f32], label: i32) {
        self.features.extend(pixels.iter().map(|p| p / 16.0));
        self.labels.push(label);
    }
}

/// Parses the CSV and splits it: every fifth image is a test image, the rest train.
pub fn parse_and_split(csv: &str) -> Result<(Samples, Samples)> {
    let (mut train, mut test) = (Samples::default(), Samples::default());
    for (i, line) in csv.lines().filter(|l| !l.trim().is_empty()).enumerate() {
        let values: Vec<f32> = line
            .split(',')
            .map(|v| v.trim().parse::<f32>())
            .collect::<std::result::Result<_, _>>()
            .map_err(|e| bad_line(i, format!("{e}")))?;
        let (pixels, label) = match values.split_last() {
            Some((&label, pixels)) if pixels.len() == FEATURES => (pixels, label),
            _ => {
                return Err(bad_line(i, format!("{} values, expected {}", values.len(), FEATURES + 1)));
            }
        };
        if !(0.0..CLASSES as f32).contains(&label) || label.fract() != 0.0 {
            return Err(bad_line(i, format!("label {label} is not a digit")));
        }
        let set = if i % TEST_EVERY == TEST_EVERY - 1 { &mut test } else { &mut train };
        set.push(pixels, label as i32);
    }
    if train.rows() == 0 || test.rows() == 0 {
        return Err(Error::InvalidArgument {
            argument: "csv",
            message: format!("{} images: too few to train and test", train.rows() + test.rows()),
        });
    }
    Ok((train, test))
}

fn bad_line(index: usize, why: String) -> Error {
    Error::InvalidArgument { argument: "csv", message: format!("line {}: {why}", index + 1) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_every_fifth_image_into_test() {
        let line = |label: usize| format!("{}{label}\n", "16,".repeat(FEATURES));
        let csv: String = (0..10).map(line).collect();
        let (train, test) = parse_and_split(&csv).unwrap();
        assert_eq!(train.labels, [0, 1, 2, 3, 5, 6, 7, 8]);
        assert_eq!(test.labels, [4, 9]);
        assert_eq!(train.features.len(), 8 * FEATURES);
        assert!(train.features.iter().all(|&x| x == 1.0));
    }

    #[test]
    fn rejects_short_lines_and_bad_labels() {
        let err = parse_and_split("1,2,3\n").unwrap_err();
        assert_eq!(err.to_string(), "`csv`: line 1: 3 values, expected 65");
        let err = parse_and_split(&format!("{}10\n", "0,".repeat(FEATURES))).unwrap_err();
        assert_eq!(err.to_string(), "`csv`: line 1: label 10 is not a digit");
    }
}
