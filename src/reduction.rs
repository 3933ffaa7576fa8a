//! How the class-index losses weigh, ignore and reduce their rows, in f64: shared by the CPU
//! twins (`nll_loss`, `cross_entropy`) and the host merge of vocabulary-parallel shards.

use crate::{CrossEntropyOptions, EmptyPolicy, Reduction};

/// Class-index targets with the options that say how to weigh, ignore and reduce them.
pub(crate) struct Targets<'a> {
    pub(crate) targets: &'a [i32],
    pub(crate) opts: &'a CrossEntropyOptions,
}

impl Targets<'_> {
    /// The weight of class `c` (1 without `weight`).
    pub(crate) fn weight(&self, c: usize) -> f64 {
        f64::from(self.opts.class_weight(c))
    }

    /// Row `i`'s target class, or `None` where it equals `ignore_index`.
    fn target(&self, i: usize) -> Option<usize> {
        let t = self.targets[i];
        (t != self.opts.ignore_index).then_some(t as usize)
    }

    /// Whether 0/0-like cases give 0 instead of NaN ([`EmptyPolicy::Zero`]).
    pub(crate) fn empty_gives_zero(&self) -> bool {
        self.opts.empty == EmptyPolicy::Zero
    }

    /// The mean's denominator `D`: Σ `w[t_i]` over the rows that are not ignored.
    fn denominator(&self) -> f64 {
        (0..self.targets.len()).filter_map(|i| self.target(i)).map(|t| self.weight(t)).sum()
    }

    /// `row_loss(i, t_i)` for each row (exactly 0 for ignored rows), reduced: one value per row
    /// for `None`, else one value (the mean divides by `D`, so no counted row gives NaN).
    pub(crate) fn reduced_loss(&self, row_loss: impl Fn(usize, usize) -> f64) -> Vec<f64> {
        let losses = (0..self.targets.len()).map(|i| self.target(i).map_or(0.0, |t| row_loss(i, t)));
        match self.opts.reduction {
            Reduction::None => losses.collect(),
            Reduction::Sum => vec![losses.sum()],
            Reduction::Mean if self.denominator() == 0.0 && self.empty_gives_zero() => vec![0.0],
            Reduction::Mean => vec![losses.sum::<f64>() / self.denominator()],
        }
    }

    /// The `rows × classes` gradient: ignored rows exactly 0, rows whose upstream scale `g_i` is
    /// not finite (e.g. a mean with `D == 0`) all NaN, every other row filled by
    /// `row_grad(i, t_i, g_i, row)` from zeros.
    pub(crate) fn gradient(
        &self, classes: usize, grad_output: &[f64], row_grad: impl Fn(usize, usize, f64, &mut [f64]),
    ) -> Vec<f64> {
        let denominator = self.denominator();
        let mut grad = vec![0.0; self.targets.len() * classes];
        for (i, row) in grad.chunks_exact_mut(classes).enumerate() {
            let Some(t) = self.target(i) else { continue };
            let g = match self.opts.reduction {
                Reduction::None => grad_output[i],
                Reduction::Sum => grad_output[0],
                Reduction::Mean if denominator == 0.0 && self.empty_gives_zero() => 0.0,
                Reduction::Mean => grad_output[0] / denominator,
            };
            if g.is_finite() {
                row_grad(i, t, g, row);
            } else {
                row.fill(f64::NAN);
            }
        }
        grad
    }
}

/// Per-row f64 losses `row_loss(row, target)` (0 for ignored rows) reduced as
/// `opts.reduction` says, with the mean's divisor and `EmptyPolicy` of the CPU twins.
pub(crate) fn class_index_reduce(
    targets: &[i32], opts: &CrossEntropyOptions, row_loss: impl Fn(usize, usize) -> f64,
) -> Vec<f64> {
    Targets { targets, opts }.reduced_loss(row_loss)
}
