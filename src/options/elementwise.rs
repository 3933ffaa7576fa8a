//! Options of the elementwise losses (MSE, L1, RMSE, smooth L1, Huber, binary cross-entropy,
//! KL divergence), what the GPU ops and the CPU twins make of them, and the argument checks
//! both run, so both refuse the same inputs with the same `Err`.

use crate::error::{Error, Result};
use crate::options::{Reduction, check_len};

/// Options of `binary_cross_entropy` and `binary_cross_entropy_with_logits` (PyTorch's
/// keyword arguments).
///
/// * `reduction`: `none`, `sum` or `mean` (the default); the mean divides by the number of
///   elements `n`.
/// * `weight`: one weight per element (`n` values, PyTorch's `weight` of the input's full
///   shape; expand a per-class weight to that shape first). Multiplies loss and gradient.
/// * `pos_weight` (with logits only): the weight of the positive term, one per entry of the
///   last dimension, broadcast over it: element `i` takes `pos_weight[i % pos_weight.len()]`,
///   so `n` must be a multiple of its length.
///
/// New options arrive as new fields, so build it from `Default` and set fields:
///
/// ```
/// use wgpu_loss::{BceOptions, Reduction};
/// let mut opts = BceOptions::default();
/// opts.reduction = Reduction::Sum;
/// opts.pos_weight = Some(vec![1.0, 3.0]); // a last dimension of 2
/// assert!(opts.weight.is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
#[non_exhaustive]
pub struct BceOptions {
    /// `none`, `sum` or `mean` (the default; divides by `n`).
    pub reduction: Reduction,
    /// A finite weight per element (`n` values), or `None` for all ones.
    pub weight: Option<Vec<f32>>,
    /// A finite weight of the positive term per entry of the last dimension (its length),
    /// or `None` for all ones. `binary_cross_entropy` (on probabilities) refuses it.
    pub pos_weight: Option<Vec<f32>>,
}

/// How `kl_div` combines its elementwise terms, as PyTorch's `reduction` argument.
///
/// `Mean` divides the sum by the number of elements `n`; `BatchMean` by the number of batch
/// rows, which is the mathematical KL divergence per sample (PyTorch's recommendation).
///
/// ```
/// use wgpu_loss::KlDivReduction;
/// assert_eq!(KlDivReduction::default(), KlDivReduction::Mean); // PyTorch's default
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum KlDivReduction {
    /// One value per element.
    None,
    /// The sum of all elements.
    Sum,
    /// The sum divided by the number of elements `n`.
    #[default]
    Mean,
    /// The sum divided by the number of batch rows.
    BatchMean,
}

/// Options of `kl_div` (PyTorch's keyword arguments).
///
/// ```
/// use wgpu_loss::{KlDivOptions, KlDivReduction};
/// let mut opts = KlDivOptions::default();
/// opts.reduction = KlDivReduction::BatchMean;
/// opts.log_target = true; // the target holds log-probabilities too
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
#[non_exhaustive]
pub struct KlDivOptions {
    /// `none`, `sum`, `mean` (the default) or `batchmean`.
    pub reduction: KlDivReduction,
    /// Whether the target is given as log-probabilities (default `false`: probabilities).
    pub log_target: bool,
}

/// Which elementwise loss, with its scalar parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Pointwise {
    Mse,
    L1,
    SmoothL1 { beta: f32 },
    Huber { delta: f32 },
    Bce,
    BceWithLogits,
    KlDiv { log_target: bool },
}

/// How the elementwise losses are combined into the result.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Combine {
    None,
    Sum,
    /// Σ / n.
    Mean,
    /// Σ / the batch rows.
    BatchMean,
    /// sqrt(Σ / n) (RMSE).
    RootMean,
}

/// One elementwise loss call: the loss, how it is combined, and its weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Elementwise<'a> {
    pub loss: Pointwise,
    pub combine: Combine,
    pub weight: Option<&'a [f32]>,
    pub pos_weight: Option<&'a [f32]>,
    /// KL's batch rows (they must divide `n`; `BatchMean` divides by them).
    pub batch_rows: Option<usize>,
}

fn combine_of(reduction: Reduction) -> Combine {
    match reduction {
        Reduction::None => Combine::None,
        Reduction::Sum => Combine::Sum,
        Reduction::Mean => Combine::Mean,
    }
}

impl<'a> Elementwise<'a> {
    fn plain(loss: Pointwise, combine: Combine) -> Self {
        Self { loss, combine, weight: None, pos_weight: None, batch_rows: None }
    }

    pub(crate) fn mse(reduction: Reduction) -> Self {
        Self::plain(Pointwise::Mse, combine_of(reduction))
    }

    pub(crate) fn l1(reduction: Reduction) -> Self {
        Self::plain(Pointwise::L1, combine_of(reduction))
    }

    pub(crate) fn rmse() -> Self {
        Self::plain(Pointwise::Mse, Combine::RootMean)
    }

    pub(crate) fn smooth_l1(reduction: Reduction, beta: f32) -> Self {
        Self::plain(Pointwise::SmoothL1 { beta }, combine_of(reduction))
    }

    pub(crate) fn huber(reduction: Reduction, delta: f32) -> Self {
        Self::plain(Pointwise::Huber { delta }, combine_of(reduction))
    }

    pub(crate) fn bce(opts: &'a BceOptions) -> Self {
        Self::bce_family(Pointwise::Bce, opts)
    }

    pub(crate) fn bce_with_logits(opts: &'a BceOptions) -> Self {
        Self::bce_family(Pointwise::BceWithLogits, opts)
    }

    fn bce_family(loss: Pointwise, opts: &'a BceOptions) -> Self {
        Self {
            loss,
            combine: combine_of(opts.reduction),
            weight: opts.weight.as_deref(),
            pos_weight: opts.pos_weight.as_deref(),
            batch_rows: None,
        }
    }

    pub(crate) fn kl_div(rows: usize, opts: &KlDivOptions) -> Self {
        let combine = match opts.reduction {
            KlDivReduction::None => Combine::None,
            KlDivReduction::Sum => Combine::Sum,
            KlDivReduction::Mean => Combine::Mean,
            KlDivReduction::BatchMean => Combine::BatchMean,
        };
        let log_target = opts.log_target;
        Self { batch_rows: Some(rows), ..Self::plain(Pointwise::KlDiv { log_target }, combine) }
    }

    /// How many values the loss (and `grad_output`) has: `n` for `none`, else one.
    pub(crate) fn output_len(&self, n: usize) -> usize {
        match self.combine {
            Combine::None => n,
            _ => 1,
        }
    }

    /// The length of the dimension `pos_weight` broadcasts over (1 without it).
    pub(crate) fn pos_weight_len(&self) -> usize {
        self.pos_weight.map_or(1, <[f32]>::len)
    }

    /// Every check that does not need the data: `n`, the loss's parameter, the weights,
    /// and the shape of the batch.
    pub(crate) fn check_shape(&self, n: usize) -> Result<()> {
        if n == 0 {
            return Err(Error::InvalidArgument {
                argument: "n",
                message: "the input is empty (n = 0): at least one element is needed".into(),
            });
        }
        match self.loss {
            Pointwise::SmoothL1 { beta } if !(beta.is_finite() && beta >= 0.0) => {
                return Err(Error::InvalidArgument {
                    argument: "beta",
                    message: format!("must be finite and at least 0, got {beta}"),
                });
            }
            Pointwise::Huber { delta } if !(delta.is_finite() && delta > 0.0) => {
                return Err(Error::InvalidArgument {
                    argument: "delta",
                    message: format!("must be finite and greater than 0, got {delta}"),
                });
            }
            _ => {}
        }
        if let Some(w) = self.weight {
            check_len("weight", w.len(), n)?;
            check_finite("weight", w)?;
        }
        if let Some(pw) = self.pos_weight {
            if self.loss == Pointwise::Bce {
                return Err(Error::InvalidArgument {
                    argument: "pos_weight",
                    message: "binary_cross_entropy takes no pos_weight (PyTorch's has none); \
                              use binary_cross_entropy_with_logits"
                        .into(),
                });
            }
            if pw.is_empty() || !n.is_multiple_of(pw.len()) {
                return Err(Error::InvalidArgument {
                    argument: "pos_weight",
                    message: format!(
                        "its length {} (the last dimension) must divide the number of elements n = {n}",
                        pw.len()
                    ),
                });
            }
            check_finite("pos_weight", pw)?;
        }
        if let Some(rows) = self.batch_rows {
            if rows == 0 || !n.is_multiple_of(rows) {
                return Err(Error::InvalidArgument {
                    argument: "rows",
                    message: format!("n = {n} elements do not split into {rows} batch rows"),
                });
            }
        }
        Ok(())
    }

    /// Every check of the slice API and the CPU twins: the shape, the lengths of the data,
    /// and for binary cross-entropy on probabilities that input and target lie in [0, 1]
    /// (PyTorch raises there too).
    pub(crate) fn check(&self, input: &[f32], target: &[f32], n: usize, grad_output: Option<&[f32]>) -> Result<()> {
        self.check_shape(n)?;
        check_len("input", input.len(), n)?;
        check_len("target", target.len(), n)?;
        if let Some(g) = grad_output {
            check_len("grad_output", g.len(), self.output_len(n))?;
        }
        if self.loss == Pointwise::Bce {
            check_probabilities("input", input)?;
            check_probabilities("target", target)?;
        }
        Ok(())
    }
}

fn check_finite(argument: &'static str, values: &[f32]) -> Result<()> {
    match values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        Some((i, v)) => {
            Err(Error::InvalidArgument { argument, message: format!("{argument}[{i}] = {v} is not finite") })
        }
        None => Ok(()),
    }
}

fn check_probabilities(argument: &'static str, values: &[f32]) -> Result<()> {
    match values.iter().enumerate().find(|(_, v)| !(0.0..=1.0).contains(*v)) {
        Some((i, v)) => Err(Error::InvalidArgument {
            argument,
            message: format!("{argument}[{i}] = {v} is not a probability in [0, 1]"),
        }),
        None => Ok(()),
    }
}
