//! Vocabulary-parallel cross-entropy: when the classes of each row are split across
//! buffers or devices, each shard computes per-row log-sum-exp partials, the host merges
//! them exactly (online log-sum-exp), and each shard computes its part of the gradient from
//! the merged rows. Loss and gradient match the unsplit batch to f32 rounding.
//!
//! ```
//! use wgpu_loss::{ClassShard, CrossEntropyOptions, Gpu, cross_entropy_from_partials, merge_row_partials};
//! let gpu = Gpu::new()?;
//! let opts = CrossEntropyOptions::default();
//! // One row of 4 classes, held as two shards of 2 classes.
//! let (left, right) = ([1.0, 2.0], [3.0, 0.5]);
//! let targets = [2];
//! let a = ClassShard { offset: 0, classes: 2, total_classes: 4 };
//! let b = ClassShard { offset: 2, classes: 2, total_classes: 4 };
//! let pa = gpu.cross_entropy_partials(&left, &targets, 1, a, &opts)?;
//! let pb = gpu.cross_entropy_partials(&right, &targets, 1, b, &opts)?;
//! let merged = merge_row_partials(&[&pa, &pb])?;
//! let loss = cross_entropy_from_partials(&merged, &targets, 4, &opts)?;
//! let whole = gpu.cross_entropy(&[1.0, 2.0, 3.0, 0.5], &targets, 1, 4, &opts)?;
//! assert!((loss[0] - whole[0]).abs() < 1e-6);
//! let grad_b = gpu.cross_entropy_shard_grad(&right, &targets, 1, b, &opts, &merged, &[1.0])?;
//! assert_eq!(grad_b.len(), 2);
//! # Ok::<(), wgpu_loss::Error>(())
//! ```

use crate::options::ClassTargets;
use bytemuck::{Pod, Zeroable};

use super::{ClassIndexOp, LossBuffers, Problem};
use crate::error::{Error, Result};
use crate::gpu::{
    BATCH_STATE_BYTES, Gpu, NEG_INF_W_NEG, NEG_INF_W_POS, NEG_INF_W_ZERO, PARTIAL_BYTES, ROW_POISON, status_to_result,
};
use crate::options::{CrossEntropyOptions, check_len};
use crate::reduction::class_index_reduce;

slice_api! {
    /// The log-sum-exp partials of one shard of each row's classes (`rows × shard.classes`
    /// logits), for [`merge_row_partials`]. Blocking; native only.
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let shard = wgpu_loss::ClassShard { offset: 3, classes: 2, total_classes: 5 };
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let p = gpu.cross_entropy_partials(&[0.0, 0.0], &[4], 1, shard, &opts).unwrap();
    /// assert_eq!((p[0].sum_exp, p[0].has_target), (2.0, 1));
    /// ```
    pub fn cross_entropy_partials;
    /// The async form of [`Gpu::cross_entropy_partials`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// let shard = wgpu_loss::ClassShard { offset: 0, classes: 2, total_classes: 2 };
    /// let opts = wgpu_loss::CrossEntropyOptions::default();
    /// let p = pollster::block_on(gpu.cross_entropy_partials_async(&[0.0, 0.0], &[1], 1, shard, &opts)).unwrap();
    /// ```
    pub async fn cross_entropy_partials_async(
        &self, logits: &[f32], targets: &(impl ClassTargets + ?Sized), rows: usize, shard: ClassShard,
        opts: &CrossEntropyOptions,
    ) -> Result<Vec<RowPartial>> {
        let targets = &*targets.to_i32(shard.total_classes)?;
        let (state, _) = shard_slice(self, ClassIndexOp::ShardPartials(shard), logits, targets, rows, opts, None)
        .await?;
        Ok(state[(BATCH_STATE_BYTES / 4) as usize..]
            .chunks_exact(8)
            .map(RowPartial::from_words)
            .collect())
    }

    /// One shard's gradient (`rows × shard.classes`) from the rows' merged partials and the
    /// upstream gradient (`rows` values for `Reduction::None`, else one). Blocking; native only.
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// use wgpu_loss::{ClassShard, CrossEntropyOptions, merge_row_partials};
    /// let opts = CrossEntropyOptions::default();
    /// let shard = ClassShard { offset: 0, classes: 2, total_classes: 2 };
    /// let merged = merge_row_partials(&[&gpu.cross_entropy_partials(&[0.0, 0.0], &[1], 1, shard, &opts).unwrap()]).unwrap();
    /// let g = gpu.cross_entropy_shard_grad(&[0.0, 0.0], &[1], 1, shard, &opts, &merged, &[1.0]).unwrap();
    /// assert_eq!(g, vec![0.5, -0.5]);
    /// ```
    pub fn cross_entropy_shard_grad;
    /// The async form of [`Gpu::cross_entropy_shard_grad`].
    ///
    /// ```
    /// # let gpu = wgpu_loss::Gpu::new().unwrap();
    /// use wgpu_loss::{ClassShard, CrossEntropyOptions, RowPartial};
    /// let shard = ClassShard { offset: 0, classes: 2, total_classes: 2 };
    /// let merged = [RowPartial { max: 0.0, sum_exp: 2.0, finite_weight: 2.0, total_weight: 2.0, has_target: 1, ..Default::default() }];
    /// let opts = CrossEntropyOptions::default();
    /// let g = pollster::block_on(gpu.cross_entropy_shard_grad_async(&[0.0, 0.0], &[1], 1, shard, &opts, &merged, &[1.0]));
    /// ```
    #[allow(clippy::too_many_arguments)]
    pub async fn cross_entropy_shard_grad_async(
        &self, logits: &[f32], targets: &(impl ClassTargets + ?Sized), rows: usize, shard: ClassShard,
        opts: &CrossEntropyOptions, merged: &[RowPartial], grad_output: &[f32],
    ) -> Result<Vec<f32>> {
        let targets = &*targets.to_i32(shard.total_classes)?;
        check_len("merged", merged.len(), rows)?;
        crate::options::check_len("grad_output", grad_output.len(), opts.grad_output_len(rows))?;
        let (_, grad) = shard_slice(
            self,
            ClassIndexOp::ShardGrad(shard),
            logits,
            targets,
            rows,
            opts,
            Some((merged, grad_output)),
        )
        .await?;
        Ok(grad)
    }
}

/// Which classes of every row a buffer holds: `classes` of them, starting at class
/// `offset`, out of `total_classes` in all. Targets and `weight` stay global.
///
/// ```
/// let shard = wgpu_loss::ClassShard { offset: 32000, classes: 32000, total_classes: 128000 };
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ClassShard {
    /// The first class this shard holds.
    pub offset: usize,
    /// How many classes it holds (its row length).
    pub classes: usize,
    /// How many classes a whole row has.
    pub total_classes: usize,
}

impl ClassShard {
    pub(crate) fn check(&self) -> Result<()> {
        if self.classes == 0 || self.offset + self.classes > self.total_classes {
            return Err(Error::InvalidArgument {
                argument: "shard",
                message: format!(
                    "classes [{}, {}) do not lie within the {} classes of a row",
                    self.offset,
                    self.offset + self.classes,
                    self.total_classes
                ),
            });
        }
        Ok(())
    }
}

/// A row's log-sum-exp statistics over some of its classes, exact to merge. Mirrors the
/// partials of shaders/shared/row_stats.wgsl.
///
/// ```
/// let p = wgpu_loss::RowPartial::default();
/// assert_eq!(p.sum_exp, 0.0); // no finite logit seen
/// ```
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Default, Pod, Zeroable)]
pub struct RowPartial {
    /// Max of the finite logits (meaningless when `sum_exp` is 0).
    pub max: f32,
    /// Σ exp(x − max) over the finite logits; 0 when there is none.
    pub sum_exp: f32,
    /// Σ w·(x − max) over the finite logits (for label smoothing).
    pub weighted_logits: f32,
    /// Σ w over the finite logits.
    pub finite_weight: f32,
    /// Σ w over all the classes.
    pub total_weight: f32,
    /// Bits: 1 a NaN or +inf logit, 2/4/8 a −inf logit at a class of weight > 0 / < 0 / = 0.
    pub flags: u32,
    /// The target's logit, when `has_target` is 1.
    pub target_logit: f32,
    /// 1 when the target class lies in these classes, else 0.
    pub has_target: u32,
}

impl RowPartial {
    fn from_words(words: &[f32]) -> Self {
        let mut p: RowPartial = bytemuck::pod_read_unaligned(bytemuck::cast_slice(words));
        p.has_target = u32::from(f32::from_bits(p.has_target) != 0.0);
        p
    }

    fn to_words(self) -> [f32; 8] {
        let mut p = self;
        p.has_target = (p.has_target as f32).to_bits();
        bytemuck::cast(p)
    }
}

/// Merges the partials of the same rows from several shards (`shards[k][row]`) exactly:
/// the max first, then each shard's sums rescaled to it, in shard order. Computed in f64.
///
/// ```
/// use wgpu_loss::{RowPartial, merge_row_partials};
/// let a = RowPartial { max: 1.0, sum_exp: 1.0, finite_weight: 1.0, total_weight: 1.0, ..Default::default() };
/// let b = RowPartial { max: 1.0, sum_exp: 1.0, finite_weight: 1.0, total_weight: 1.0, ..Default::default() };
/// let m = merge_row_partials(&[&[a], &[b]]).unwrap();
/// assert_eq!((m[0].max, m[0].sum_exp), (1.0, 2.0));
/// ```
pub fn merge_row_partials(shards: &[&[RowPartial]]) -> Result<Vec<RowPartial>> {
    let rows = shards.first().map_or(0, |s| s.len());
    for s in shards {
        check_len("shards", s.len(), rows)?;
    }
    Ok((0..rows)
        .map(|r| {
            let parts = shards.iter().map(|s| s[r]);
            let max =
                parts.clone().filter(|p| p.sum_exp > 0.0).map(|p| f64::from(p.max)).fold(f64::NEG_INFINITY, f64::max);
            let (mut sum, mut wx) = (0.0f64, 0.0f64);
            let mut merged = RowPartial::default();
            for p in parts {
                if p.sum_exp > 0.0 {
                    let d = f64::from(p.max) - max;
                    sum += f64::from(p.sum_exp) * d.exp();
                    wx += f64::from(p.weighted_logits) + d * f64::from(p.finite_weight);
                }
                merged.finite_weight += p.finite_weight;
                merged.total_weight += p.total_weight;
                merged.flags |= p.flags;
                if p.has_target != 0 {
                    merged.target_logit = p.target_logit;
                    merged.has_target = 1;
                }
            }
            merged.max = if sum > 0.0 { max as f32 } else { 0.0 };
            merged.sum_exp = sum as f32;
            merged.weighted_logits = wx as f32;
            merged
        })
        .collect())
}

/// Cross-entropy (reduced as `opts.reduction` says) from merged partials of rows of
/// `total_classes` classes, computed in f64 with PyTorch's semantics as [`crate::cpu::cross_entropy`].
///
/// ```
/// use wgpu_loss::{CrossEntropyOptions, RowPartial, cross_entropy_from_partials};
/// // Two classes of equal logits 0: log-sum-exp = ln 2, target logit 0.
/// let row = RowPartial { max: 0.0, sum_exp: 2.0, finite_weight: 2.0, total_weight: 2.0, has_target: 1, ..Default::default() };
/// let loss = cross_entropy_from_partials(&[row], &[1], 2, &CrossEntropyOptions::default()).unwrap();
/// assert!((loss[0] - 2f32.ln()).abs() < 1e-7);
/// ```
pub fn cross_entropy_from_partials(
    merged: &[RowPartial], targets: &(impl ClassTargets + ?Sized), total_classes: usize, opts: &CrossEntropyOptions,
) -> Result<Vec<f32>> {
    let targets = &*targets.to_i32(total_classes)?;
    crate::options::check_class_index_loss(
        ("merged", merged.len() * total_classes),
        targets,
        merged.len(),
        total_classes,
        opts,
        None,
    )?;
    opts.check_plain("cross_entropy_from_partials")?;
    if opts.spatial != 1 {
        return Err(crate::Error::InvalidArgument {
            argument: "spatial",
            message: "class shards take rows × classes inputs only".into(),
        });
    }
    let eps = f64::from(opts.label_smoothing);
    let row_loss = |row: usize, t: usize| -> f64 {
        let p = merged[row];
        if p.flags & ROW_POISON != 0 || p.sum_exp == 0.0 {
            return if p.flags & ROW_POISON == 0 && opts.empty == crate::EmptyPolicy::Zero { 0.0 } else { f64::NAN };
        }
        let log_sum = f64::from(p.sum_exp).ln();
        let lp_target = if p.has_target != 0 && p.target_logit != f32::NEG_INFINITY {
            (f64::from(p.target_logit) - f64::from(p.max)) - log_sum
        } else {
            f64::NEG_INFINITY
        };
        let nll = -f64::from(opts.class_weight(t)) * lp_target;
        if eps == 0.0 {
            return nll;
        }
        let mut smooth = f64::from(p.finite_weight) * log_sum - f64::from(p.weighted_logits);
        for (bit, infinity) in
            [(NEG_INF_W_POS, f64::INFINITY), (NEG_INF_W_NEG, f64::NEG_INFINITY), (NEG_INF_W_ZERO, f64::NAN)]
        {
            if p.flags & bit != 0 {
                smooth += infinity;
            }
        }
        (1.0 - eps) * nll + eps / total_classes as f64 * smooth
    };
    Ok(class_index_reduce(targets, opts, row_loss).into_iter().map(|v| v as f32).collect())
}

/// Uploads a shard, records `op` and reads back the batch state (status and partials) and,
/// for the gradient, the gradient.
async fn shard_slice(
    gpu: &Gpu, op: ClassIndexOp, logits: &[f32], targets: &[i32], rows: usize, opts: &CrossEntropyOptions,
    merged: Option<(&[RowPartial], &[f32])>,
) -> Result<(Vec<f32>, Vec<f32>)> {
    let (ClassIndexOp::ShardPartials(shard) | ClassIndexOp::ShardGrad(shard)) = op else {
        unreachable!("shard_slice records shard ops only")
    };
    let problem = Problem::new(op, rows, shard.classes, opts)?;
    check_len("logits", logits.len(), rows * shard.classes)?;
    check_len("targets", targets.len(), rows)?;
    let mut uploads: Vec<&[u8]> = vec![bytemuck::cast_slice(targets), bytemuck::cast_slice(logits)];
    uploads.extend(merged.map(|(_, g)| bytemuck::cast_slice(g)));
    let grad_len: Vec<usize> = merged.map(|_| rows * shard.classes).into_iter().collect();
    let batch_bytes = BATCH_STATE_BYTES + rows as u64 * PARTIAL_BYTES;
    let outputs = gpu
        .run_slice(&uploads, &grad_len, batch_bytes, |encoder, ws, inputs, outputs| {
            let mut buffers = LossBuffers::new(inputs[0]).input(inputs[1]);
            if let Some((partials, _)) = merged {
                ws.reserve_partials(gpu, rows as u64);
                let words: Vec<[f32; 8]> = partials.iter().map(|p| p.to_words()).collect();
                ws.write_partials(gpu, bytemuck::cast_slice(&words));
                buffers = buffers.grad_output(inputs[2]).grad(outputs[0]);
            }
            super::encode(gpu, encoder, ws, &problem, &buffers)
        })
        .await?;
    let state = outputs.last().cloned().unwrap_or_default();
    status_to_result(&state, shard.total_classes)?;
    let grad = if merged.is_some() { outputs[0].clone() } else { Vec::new() };
    Ok((state, grad))
}
