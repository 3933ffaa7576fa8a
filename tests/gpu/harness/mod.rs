//! What every GPU test shares: the declared matrix of paths, deterministic data, the
//! expected values with their per-element tolerances, the trial list and the coverage
//! check.

pub mod arena;
pub mod checks;
pub mod coverage;
pub mod data;
pub mod paths;
pub mod tol;

pub use arena::Arena;
pub use checks::{CeCase, Expect, Got, OwnedTargets};
pub use data::*;
pub use paths::{Path, gpu, gpu_with, matrix};
pub use tol::{Shape, Targets};

use libtest_mimic::Trial;

/// Trials slower than this are named on stderr, to keep the run's budget in view.
const SLOW: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `test` as a trial, its panics (the assertions) reported as failures.
fn trial(name: String, test: impl FnOnce() + Send + 'static) -> Trial {
    Trial::test(name.clone(), move || {
        let start = std::time::Instant::now();
        test();
        let took = start.elapsed();
        if took > SLOW || std::env::var_os("WGPU_LOSS_TEST_TIMES").is_some() {
            eprintln!("{name}: {:.1} s", took.as_secs_f64());
        }
        Ok(())
    })
}

/// One trial of `test` per path of the matrix, named `name::path`.
pub fn per_path(name: &str, test: fn(&'static Path)) -> Vec<Trial> {
    // The linear entries change the linear products alone: only their tests run there.
    let linear = name.starts_with("linear_cross_entropy::");
    matrix()
        .paths()
        .filter(|path| linear || !path.is_linear_form())
        .map(|path| trial(format!("{name}::{}", path.name), move || test(path)))
        .collect()
}

/// One trial of `test`.
pub fn once(name: &str, test: fn()) -> Trial {
    trial(name.to_string(), test)
}

/// One trial of `test`, run only with `--ignored` (the soak).
pub fn ignored(name: &str, test: fn()) -> Trial {
    trial(name.to_string(), test).with_ignored_flag(true)
}

/// The trials of a test module: `per_path` tests take a `&Path` and run once per path of
/// the matrix, `once` tests take nothing, `ignored` ones run only with `--ignored`. Named
/// `module::test[::path]`.
macro_rules! trials {
    ($(per_path: [$($p:ident),* $(,)?] $(,)?)? $(once: [$($o:ident),* $(,)?] $(,)?)? $(ignored: [$($i:ident),* $(,)?] $(,)?)?) => {{
        let module = module_path!().trim_start_matches("gpu::");
        let mut trials: Vec<libtest_mimic::Trial> = Vec::new();
        $($(trials.extend(crate::harness::per_path(&format!("{module}::{}", stringify!($p)), $p));)*)?
        $($(trials.push(crate::harness::once(&format!("{module}::{}", stringify!($o)), $o));)*)?
        $($(trials.push(crate::harness::ignored(&format!("{module}::{}", stringify!($i)), $i));)*)?
        trials
    }};
}
pub(crate) use trials;

/// The harness's own trials: each matrix entry takes the path it claims (or is absent for
/// the stated reason).
pub fn tests() -> Vec<Trial> {
    matrix()
        .entries
        .iter()
        .map(|entry| match entry {
            paths::Entry::Present(path) => trial(format!("paths::{}", path.name), move || path.check_claim()),
            paths::Entry::Absent { name, reason } => {
                let reason = reason.clone();
                trial(format!("paths::{name}"), move || {
                    let info = gpu().adapter_info();
                    assert_ne!(info.backend, wgpu::Backend::Vulkan, "subgroups absent on Vulkan: {reason}");
                    assert!(!gpu().uses_subgroups(), "absent, yet the default path uses subgroups: {reason}");
                    eprintln!("absent on this adapter: {reason}");
                })
            }
            paths::Entry::Same { name, as_entry } => {
                let (name, as_entry) = (*name, *as_entry);
                trial(format!("paths::{name}"), move || {
                    eprintln!("{name} comes out as {as_entry} on this adapter: run as {as_entry}");
                })
            }
        })
        .collect()
}
