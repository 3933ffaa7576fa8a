//! After a whole run: every kernel the crate can record on this device, in each
//! row-reduction variant the matrix reaches and every resident slot count, was recorded at
//! least once by some test; and each path of the matrix recorded what makes it that path.

use std::collections::BTreeSet;

use super::paths::{Claim, every_gpu, matrix};

/// Whether `args` run every non-ignored trial (no filter, no skip): only then can the
/// coverage be judged.
pub fn is_whole_run(args: &libtest_mimic::Arguments) -> bool {
    args.filter.is_none() && args.skip.is_empty() && !args.ignored && !args.list && !args.exact
}

/// The kernels none of the run's `Gpu`s recorded, and each path's missing signature.
pub fn missing() -> Vec<String> {
    let gpus = every_gpu();
    let recordable: BTreeSet<String> = gpus.iter().flat_map(|g| g.recordable_kernels()).collect();
    let recorded: BTreeSet<String> = gpus.iter().flat_map(|g| g.recorded_kernels()).collect();
    let mut missing: Vec<String> = recordable.difference(&recorded).map(|k| format!("never recorded: {k}")).collect();
    for path in matrix().paths() {
        let ran = path.gpu.recorded_kernels();
        let has = |part: &str| ran.iter().any(|k| k.contains(part));
        let wants: &[&str] = match path.claim {
            Claim::Split | Claim::SplitChunked => &["softmax_partials", "cross_entropy_partials", "_merged_forward"],
            Claim::Row { .. } | Claim::Default => &["_resident[", "_short["],
            Claim::ResidentOff | Claim::Chunked => &[],
            Claim::Linear { staged: true } => &["linear_product[1]"],
            Claim::Linear { staged: false } => &["linear_product[2]"],
        };
        for part in wants.iter().filter(|part| !has(part)) {
            missing.push(format!("path {}: no kernel with {part:?} recorded", path.name));
        }
        if path.claim == Claim::ResidentOff && (has("_resident[") || has("_short[")) {
            missing.push(format!("path {}: recorded a resident kernel", path.name));
        }
    }
    missing
}

/// Prints the check as a test line; `false` when something is missing.
pub fn check() -> bool {
    let missing = missing();
    let total: usize = every_gpu().iter().map(|g| g.recorded_kernels().len()).sum();
    if missing.is_empty() {
        println!("test coverage::every_kernel_recorded ... ok ({total} kernel variants recorded across the paths)");
        return true;
    }
    println!("test coverage::every_kernel_recorded ... FAILED");
    for m in &missing {
        println!("    {m}");
    }
    false
}
