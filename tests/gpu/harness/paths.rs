//! The one declared matrix of paths that every family's tests iterate: the adapter's
//! default; 8, 16, 32, 64 and 256 invocations per row with subgroups and with a
//! workgroup-memory tree; resident rows off; rows split into segments; bindings chunked; and
//! both; and each form of the linear products (staged through workgroup memory, or read
//! straight from the buffers). Each entry states the path it claims and a trial checks that the `Gpu` built for it
//! takes exactly that path. Entries the adapter cannot take are listed as absent with the
//! reason (subgroups on GL), never replaced by another path; entries that come out the same
//! as an earlier one (the default is one of the row shapes) are listed as such and not run
//! twice.

use std::sync::{Mutex, OnceLock};

use wgpu_loss::{Gpu, GpuOptions};

/// Segment length of the split paths: rows longer than twice this are split.
pub const SPLIT_SEGMENT: u32 = 40;
/// Binding cap of the chunked paths.
pub const CHUNK_BYTES: u64 = 8 << 10;

/// What an entry of the matrix claims.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Claim {
    /// `GpuOptions::default()`: whatever the adapter prefers.
    Default,
    /// `per_row` invocations per row, reducing with subgroup operations or through
    /// workgroup memory.
    Row { subgroups: bool, per_row: u32 },
    /// Rows never held in registers: the two-read kernels everywhere.
    ResidentOff,
    /// Rows longer than `2 × SPLIT_SEGMENT` classes split into segments.
    Split,
    /// Bindings capped at `CHUNK_BYTES`: batches recorded as row chunks.
    Chunked,
    /// Both.
    SplitChunked,
    /// The linear products in the GPU form (`true`: staged through workgroup memory) or
    /// the CPU-adapter form.
    Linear { staged: bool },
}

impl Claim {
    fn options(self) -> GpuOptions {
        let mut o = GpuOptions::default();
        match self {
            Claim::Default => {}
            Claim::Row { subgroups, per_row } => {
                o.subgroups = subgroups;
                o.row_workgroup_size = Some(per_row);
            }
            Claim::ResidentOff => o.resident_rows = false,
            Claim::Split => o.segment_classes = Some(SPLIT_SEGMENT),
            Claim::Chunked => o.max_binding_size = Some(CHUNK_BYTES),
            Claim::SplitChunked => {
                o.segment_classes = Some(SPLIT_SEGMENT);
                o.max_binding_size = Some(CHUNK_BYTES);
            }
            Claim::Linear { staged } => o.linear_staged = Some(staged),
        }
        o
    }
}

/// A path of the matrix the adapter takes, with the `Gpu` built for it on the shared device.
#[derive(Debug)]
pub struct Path {
    pub name: &'static str,
    pub claim: Claim,
    pub gpu: Gpu,
}

impl Path {
    pub fn is_default(&self) -> bool {
        self.claim == Claim::Default
    }

    /// Whether the entry changes the fused linear op's products alone (the other families
    /// run there as on the default path).
    pub fn is_linear_form(&self) -> bool {
        matches!(self.claim, Claim::Linear { .. })
    }

    /// Whether a row of `classes` f32 (or an `(N, C, d)` sample of `classes × d`) fits one
    /// binding on this path (longer rows are `Err(TooLarge)` by design: the chunked paths
    /// take the shorter shapes).
    pub fn fits(&self, classes: usize) -> bool {
        let cap = match self.claim {
            Claim::Chunked | Claim::SplitChunked => CHUNK_BYTES,
            _ => return true,
        };
        let align = u64::from(self.gpu.device().limits().min_storage_buffer_offset_alignment);
        classes as u64 * 4 + align - 4 <= cap
    }

    /// The path's name and what it came out as, for failure messages.
    pub fn label(&self) -> String {
        format!(
            "{} ({} per row, {})",
            self.name,
            self.gpu.row_workgroup_size(),
            if self.gpu.uses_subgroups() { "subgroups" } else { "workgroup memory" }
        )
    }

    /// Checks that the `Gpu` takes the path the entry claims.
    pub fn check_claim(&self) {
        let (gpu, default) = (&self.gpu, &matrix().default().gpu);
        match self.claim {
            Claim::Row { subgroups, per_row } => {
                assert_eq!(gpu.uses_subgroups(), subgroups, "{}: subgroups", self.label());
                let want = if subgroups { per_row.max(subgroup_size(gpu)) } else { per_row };
                assert_eq!(gpu.row_workgroup_size(), want, "{}: invocations per row", self.label());
            }
            Claim::Default => {}
            Claim::Linear { staged } => {
                assert_eq!(gpu.stages_linear_tiles(), staged, "{}: linear form", self.label());
            }
            _ => {
                // The other entries keep the default row shape and change one thing each,
                // which the coverage check sees in the kernels they record.
                assert_eq!(gpu.uses_subgroups(), default.uses_subgroups(), "{}", self.label());
                assert_eq!(gpu.row_workgroup_size(), default.row_workgroup_size(), "{}", self.label());
            }
        }
    }
}

/// The adapter's fixed subgroup size (0 without one).
fn subgroup_size(gpu: &Gpu) -> u32 {
    let info = gpu.adapter_info();
    if info.subgroup_min_size == info.subgroup_max_size { info.subgroup_min_size } else { 0 }
}

/// One entry of the matrix.
#[derive(Debug)]
pub enum Entry {
    Present(Box<Path>),
    /// The adapter cannot take this path, and why.
    Absent {
        name: &'static str,
        reason: String,
    },
    /// The path comes out the same as an earlier entry's.
    Same {
        name: &'static str,
        as_entry: &'static str,
    },
}

/// The declared matrix.
pub struct Matrix {
    pub entries: Vec<Entry>,
}

/// Every entry, in order: name and claim.
const DECLARED: [(&str, Claim); 17] = [
    ("default", Claim::Default),
    ("sg8", Claim::Row { subgroups: true, per_row: 8 }),
    ("sg16", Claim::Row { subgroups: true, per_row: 16 }),
    ("sg32", Claim::Row { subgroups: true, per_row: 32 }),
    ("sg64", Claim::Row { subgroups: true, per_row: 64 }),
    ("sg256", Claim::Row { subgroups: true, per_row: 256 }),
    ("wg8", Claim::Row { subgroups: false, per_row: 8 }),
    ("wg16", Claim::Row { subgroups: false, per_row: 16 }),
    ("wg32", Claim::Row { subgroups: false, per_row: 32 }),
    ("wg64", Claim::Row { subgroups: false, per_row: 64 }),
    ("wg256", Claim::Row { subgroups: false, per_row: 256 }),
    ("resident-off", Claim::ResidentOff),
    ("split", Claim::Split),
    ("chunked", Claim::Chunked),
    ("split-chunked", Claim::SplitChunked),
    ("linear-staged", Claim::Linear { staged: true }),
    ("linear-direct", Claim::Linear { staged: false }),
];

impl Matrix {
    fn build() -> Self {
        let default = Gpu::new().unwrap_or_else(|e| panic!("no GPU for the tests: {e}"));
        let (device, queue) = (default.device().clone(), default.queue().clone());
        let info = default.adapter_info().clone();
        let has_subgroups =
            device.features().contains(wgpu::Features::SUBGROUP) && info.subgroup_min_size == info.subgroup_max_size;
        let mut entries =
            vec![Entry::Present(Box::new(Path { name: DECLARED[0].0, claim: DECLARED[0].1, gpu: default }))];
        for &(name, claim) in &DECLARED[1..] {
            // Subgroup paths are absent only where the adapter has none and is not Vulkan
            // (lavapipe has them: losing them there is a failure of the `paths::` trial).
            if let Claim::Row { subgroups: true, .. } = claim
                && !has_subgroups
                && info.backend != wgpu::Backend::Vulkan
            {
                let reason = format!("{:?} adapter {:?} has no fixed-size SUBGROUP", info.backend, info.name);
                entries.push(Entry::Absent { name, reason });
                continue;
            }
            let gpu = Gpu::from_device_with_options(device.clone(), queue.clone(), claim.options());
            let same = entries.iter().find_map(|e| match e {
                Entry::Present(p) if is_row_shape(p.claim) && is_row_shape(claim) => (p.gpu.uses_subgroups()
                    == gpu.uses_subgroups()
                    && p.gpu.row_workgroup_size() == gpu.row_workgroup_size())
                .then_some(p.name),
                Entry::Present(p) if p.claim == Claim::Default && matches!(claim, Claim::Linear { .. }) => {
                    (p.gpu.stages_linear_tiles() == gpu.stages_linear_tiles()).then_some(p.name)
                }
                _ => None,
            });
            entries.push(match same {
                Some(as_entry) => Entry::Same { name, as_entry },
                None => Entry::Present(Box::new(Path { name, claim, gpu })),
            });
        }
        Self { entries }
    }

    /// The paths the adapter takes.
    pub fn paths(&self) -> impl Iterator<Item = &Path> {
        self.entries.iter().filter_map(|e| match e {
            Entry::Present(p) => Some(&**p),
            _ => None,
        })
    }

    pub fn default(&self) -> &Path {
        self.paths().next().expect("the default path")
    }

    /// The path named `name` (which must be present).
    pub fn path(&self, name: &str) -> &Path {
        self.paths()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("path {name} is not in the matrix on this adapter"))
    }
}

/// Whether a claim is about the row shape alone (the entries that can coincide).
fn is_row_shape(claim: Claim) -> bool {
    matches!(claim, Claim::Default | Claim::Row { .. })
}

/// The matrix on the shared device, built once per run.
pub fn matrix() -> &'static Matrix {
    static MATRIX: OnceLock<Matrix> = OnceLock::new();
    MATRIX.get_or_init(Matrix::build)
}

/// The default path's `Gpu`: the shared device.
pub fn gpu() -> &'static Gpu {
    &matrix().default().gpu
}

/// `Gpu`s a test builds beyond the matrix (kept for the run so the coverage check sees
/// what they recorded).
static EXTRA: Mutex<Vec<&'static Gpu>> = Mutex::new(Vec::new());

/// A `Gpu` on the shared device with options changed by `edit`, for the few tests that need
/// a setting the matrix has not (bindings of 2 KiB, segments of 7 classes).
pub fn gpu_with(edit: impl FnOnce(&mut GpuOptions)) -> &'static Gpu {
    let mut opts = GpuOptions::default();
    edit(&mut opts);
    let gpu: &'static Gpu =
        Box::leak(Box::new(Gpu::from_device_with_options(gpu().device().clone(), gpu().queue().clone(), opts)));
    EXTRA.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(gpu);
    gpu
}

/// Every `Gpu` of the run: the matrix's paths and those of [`gpu_with`].
pub fn every_gpu() -> Vec<&'static Gpu> {
    let extra = EXTRA.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    matrix().paths().map(|p| &p.gpu).chain(extra.iter().copied()).collect()
}
