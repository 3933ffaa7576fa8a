//! The crate's one error type.

use std::fmt;

/// Everything that can go wrong in `wgpu-loss`, each variant naming what was wrong.
///
/// Bad arguments are reported before anything is uploaded or recorded, so a returned
/// `Err` never leaves work half-done on the device.
///
/// ```
/// use wgpu_loss::{cpu, CrossEntropyOptions, Error};
/// let err = cpu::cross_entropy(&[0.0; 6], &[0, 3], 2, 3, &CrossEntropyOptions::default());
/// assert!(matches!(err, Err(Error::InvalidTarget { row: 1, value: 3, .. })));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Error {
    /// No GPU adapter could be found (or none matched `WGPU_BACKEND` / `WGPU_ADAPTER_NAME`).
    NoAdapter {
        /// What was asked for and what was found.
        detail: String,
    },
    /// The adapter refused to create a device.
    RequestDevice(String),
    /// `rows == 0` or `classes == 0` (PyTorch returns NaN or 0 here; we refuse).
    EmptyBatch {
        /// The `rows` argument.
        rows: usize,
        /// The `classes` argument.
        classes: usize,
    },
    /// A slice or buffer does not have the length the shape requires.
    LengthMismatch {
        /// The argument's name, e.g. `"logits"`.
        argument: &'static str,
        /// The length the shape requires (elements).
        expected: usize,
        /// The length given (elements).
        actual: usize,
    },
    /// A target outside `[0, classes)` that is not `ignore_index`.
    InvalidTarget {
        /// The first offending row.
        row: usize,
        /// Its target value.
        value: i64,
        /// The number of classes.
        classes: usize,
    },
    /// Any other argument outside its allowed range (its name and why).
    InvalidArgument {
        /// The argument's name, e.g. `"label_smoothing"`.
        argument: &'static str,
        /// What is wrong with it, with the value.
        message: String,
    },
    /// The batch needs more than the device allows in one buffer or binding.
    TooLarge {
        /// The argument's name.
        argument: &'static str,
        /// Bytes needed.
        bytes: u64,
        /// The device's limit in bytes.
        limit: u64,
    },
    /// wgpu reported a validation or out-of-memory error for work this crate submitted.
    Device(String),
    /// Reading results back failed: the device was lost, mapping failed, or it timed out.
    Readback(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::NoAdapter { detail } => write!(
                f,
                "no GPU adapter found ({detail}); install Mesa's Vulkan driver \
                 (apt-get install mesa-vulkan-drivers) or set WGPU_BACKEND=gl to use llvmpipe"
            ),
            Error::RequestDevice(e) => write!(f, "the adapter refused to create a device: {e}"),
            Error::EmptyBatch { rows, classes } => {
                write!(f, "empty batch: rows = {rows}, classes = {classes}; both must be at least 1")
            }
            Error::LengthMismatch { argument, expected, actual } => {
                write!(f, "`{argument}` has {actual} elements but the shape needs {expected}")
            }
            Error::InvalidTarget { row, value, classes } => {
                write!(f, "target {value} in row {row} is out of bounds: not in [0, {classes}) and not ignore_index")
            }
            Error::InvalidArgument { argument, message } => write!(f, "`{argument}`: {message}"),
            Error::TooLarge { argument, bytes, limit } => {
                write!(f, "`{argument}` needs {bytes} bytes, more than the device allows ({limit} bytes)")
            }
            Error::Device(e) => write!(f, "the GPU reported an error: {e}"),
            Error::Readback(e) => write!(f, "reading results back from the GPU failed: {e}"),
        }
    }
}

impl std::error::Error for Error {}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
