//! The kernel table, and the pipelines and bind-group layouts built from it once per
//! [`Gpu`](crate::Gpu). One declaration per family (its root WGSL file, binding layout,
//! precisions and how it is unrolled) and one per kernel (its entry point and family):
//! pipelines, the naga validation and the tests' coverage all derive from these.

use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, PoisonError};

use super::params::{LINEAR_SLOTS_DIRECT, LINEAR_SLOTS_STAGED};
use super::shaders::{Format, RowReduce, compose};
use crate::Precision;

/// The bind-group layouts: one for the row-wise softmax family, one shared by every
/// class-index kernel (nll, cross-entropy, reductions) and the elementwise losses, so one
/// bind group serves all the dispatches of an op, and one for the linear layer's products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Layout {
    /// 0 params, 1 input (read), 4 grad_output (read), 5 partials, 7 output (read-write).
    Row,
    /// 0 params, 1 input, 2 targets, 4 grad_output (read), 3 aux (weights and extra outputs),
    /// 5 batch state, 6 row_loss, 7 grad, 8 loss_out (read-write).
    ClassIndex,
    /// 0 matmul params, 1 hidden, 2 weight, 3 bias, 4 the logits' gradient (read),
    /// 5 output (read-write).
    Linear,
}

impl Layout {
    const ALL: [Layout; 3] = [Layout::Row, Layout::ClassIndex, Layout::Linear];

    /// The argument a caller's buffer at `binding` stands for, for error messages.
    pub(crate) fn argument(self, binding: u32) -> &'static str {
        match (self, binding) {
            (Layout::Linear, 1) => "hidden",
            (Layout::Linear, 2) => "weight",
            (Layout::Linear, 3) => "bias",
            (Layout::Linear, 5) => "output",
            (_, 1) => "input",
            (Layout::ClassIndex, 2) => "targets",
            (_, 4) => "grad_output",
            (Layout::Row, 7) => "output",
            (Layout::ClassIndex, 6 | 8) => "loss",
            (Layout::ClassIndex, 7) => "grad",
            _ => "workspace",
        }
    }

    /// `(binding, read_only)` of each storage binding, in binding order.
    pub(crate) fn storage_bindings(self) -> &'static [(u32, bool)] {
        match self {
            Layout::Row => &[(1, true), (4, true), (5, false), (7, false)],
            Layout::ClassIndex => {
                &[(1, true), (2, true), (3, false), (4, true), (5, false), (6, false), (7, false), (8, false)]
            }
            Layout::Linear => &[(1, true), (2, true), (3, true), (4, true), (5, false)],
        }
    }
}

/// The element format a family reads its logits in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Logits {
    /// Each precision's own (f32, f16, bf16: the `format` import).
    ByPrecision,
    /// f32 viewed as vec4.
    Vec4,
    /// Each precision's own, chosen by the pipeline's `HALF` override (no `format` import).
    Override,
}

/// How a family's kernels are unrolled: not at all, or once per slot count of a row held
/// in registers (`$s` lines, see [`super::shaders::unroll_slots`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Slots {
    None,
    /// A row per workgroup, each invocation holding 1, 2, 4, … [`MAX_RESIDENT_SLOTS`] quads.
    PerRow,
    /// A short row per invocation, holding 1 to `SOLO_CLASSES / 4` quads.
    Short,
    /// Whole quads of short rows per invocation, built for each even row length of 2 to
    /// `SOLO_CLASSES` classes (the `CLASSES` override; unrolled for the row's quads).
    Classes,
    /// A block of C per invocation of slots × slots quads (`$r` rows, `$j` columns): 1 in
    /// the GPU form of the linear products, 2 in the CPU-adapter form (see
    /// [`crate::Gpu::stages_linear_tiles`]).
    Tile,
}

/// The most quads one invocation of a resident kernel holds.
pub(crate) const MAX_RESIDENT_SLOTS: u32 = 32;
/// Rows of at most this many classes take one invocation each (the `*_solo` and `*_short`
/// kernels), `SOLO_ROWS_PER_WORKGROUP` rows per workgroup.
pub(crate) const SOLO_CLASSES: usize = 32;
pub(crate) const SOLO_ROWS_PER_WORKGROUP: u64 = super::SOLO_WG as u64;

impl Slots {
    /// Every slot count a kernel is built for.
    fn counts(self) -> Vec<u32> {
        match self {
            Slots::None => vec![0],
            Slots::PerRow => (0..=MAX_RESIDENT_SLOTS.ilog2()).map(|p| 1 << p).collect(),
            Slots::Short => (1..=SOLO_CLASSES.div_ceil(4) as u32).collect(),
            Slots::Classes => (2..=SOLO_CLASSES as u32).step_by(2).collect(),
            Slots::Tile => vec![LINEAR_SLOTS_STAGED, LINEAR_SLOTS_DIRECT],
        }
    }
}

/// One family's declaration.
struct FamilyDecl {
    /// The root WGSL file (under shaders/, without `.wgsl`).
    root: &'static str,
    layout: Layout,
    /// Whether its kernels reduce along rows (and so take the `WG` / `SG` overrides).
    row_wise: bool,
    /// Whether it is built for f16 and bf16 logits too.
    half: bool,
    logits: Logits,
    slots: Slots,
}

macro_rules! families {
    ($($family:ident: $root:literal, $layout:ident, row_wise: $row_wise:literal, half: $half:literal, $logits:ident, $slots:ident;)*) => {
        /// A kernel family: one root WGSL file of entry points (and what it imports).
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum Family { $($family,)* }

        impl Family {
            #[cfg(test)]
            pub(crate) const ALL: &[Family] = &[$(Family::$family,)*];

            fn decl(self) -> FamilyDecl {
                match self {
                    $(Family::$family => FamilyDecl {
                        root: $root,
                        layout: Layout::$layout,
                        row_wise: $row_wise,
                        half: $half,
                        logits: Logits::$logits,
                        slots: Slots::$slots,
                    },)*
                }
            }
        }
    };
}

families! {
    Softmax:              "softmax/softmax",                      Row,        row_wise: true,  half: false, ByPrecision, None;
    SoftmaxVec4:          "softmax/softmax_vec4",                 Row,        row_wise: true,  half: false, ByPrecision, None;
    SoftmaxResident:      "softmax/softmax_resident",             Row,        row_wise: true,  half: false, ByPrecision, PerRow;
    SoftmaxShort:         "softmax/softmax_short",                Row,        row_wise: true,  half: false, ByPrecision, Short;
    SoftmaxPacked:        "softmax/softmax_packed",               Row,        row_wise: true,  half: false, ByPrecision, Classes;
    CrossEntropy:         "cross_entropy/cross_entropy",          ClassIndex, row_wise: true,  half: true,  ByPrecision, None;
    CrossEntropyVec4:     "cross_entropy/cross_entropy_vec4",     ClassIndex, row_wise: true,  half: false, Vec4,        None;
    CrossEntropyResident: "cross_entropy/cross_entropy_resident", ClassIndex, row_wise: true,  half: false, Vec4,        PerRow;
    CrossEntropyShort:    "cross_entropy/cross_entropy_short",    ClassIndex, row_wise: true,  half: true,  ByPrecision, Short;
    CrossEntropyPacked:   "cross_entropy/cross_entropy_packed",   ClassIndex, row_wise: true,  half: false, Vec4,        Classes;
    Nll:                  "nll/nll",                              ClassIndex, row_wise: false, half: false, ByPrecision, None;
    Reduce:               "reduce/reduce",                        ClassIndex, row_wise: false, half: false, ByPrecision, None;
    Elementwise:          "elementwise/elementwise",              ClassIndex, row_wise: false, half: false, ByPrecision, None;
    Linear:               "linear_cross_entropy/linear",          Linear,     row_wise: false, half: true,  Override,    Tile;
    LinearVec4:           "linear_cross_entropy/linear",          Linear,     row_wise: false, half: false, Vec4,        Tile;
    LinearBias:           "linear_cross_entropy/grad_bias",       Linear,     row_wise: false, half: false, ByPrecision, None;
}

impl Family {
    pub(crate) fn layout(self) -> Layout {
        self.decl().layout
    }

    pub(crate) fn is_row_wise(self) -> bool {
        self.decl().row_wise
    }

    pub(crate) fn slots(self) -> Slots {
        self.decl().slots
    }

    /// The precisions the family is built for (f16 where the device has `SHADER_F16` or the
    /// family decodes halves itself).
    fn precisions(self, f16: bool) -> &'static [Precision] {
        // Families reading halves from their bits need no SHADER_F16.
        let f16 = f16 || self.decl().logits == Logits::Override;
        match (self.decl().half, f16) {
            (false, _) => &[Precision::F32],
            (true, false) => &[Precision::F32, Precision::Bf16],
            (true, true) => &[Precision::F32, Precision::Bf16, Precision::F16],
        }
    }

    /// The precision a kernel of this family is built for when recorded for `precision`'s
    /// logits: its own for families with half variants, f32 for the others.
    fn built_for(self, precision: Precision) -> Precision {
        if self.decl().half { precision } else { Precision::F32 }
    }

    /// The family's complete WGSL module for `precision`'s logits, reducing rows with
    /// `reduce`, unrolled for `slots` quads per invocation (a `Classes` family: for the
    /// quads of a row of `slots` classes).
    pub(crate) fn source(self, reduce: RowReduce, precision: Precision, slots: u32) -> String {
        let format = match self.decl().logits {
            Logits::Vec4 => Format::F32x4,
            Logits::ByPrecision | Logits::Override => match self.built_for(precision) {
                Precision::F32 => Format::F32,
                Precision::F16 => Format::F16,
                Precision::Bf16 => Format::Bf16,
            },
        };
        let quads = match self.decl().slots {
            Slots::Classes => slots.div_ceil(4),
            _ => slots,
        };
        compose(self.decl().root, format, reduce, quads)
    }
}

macro_rules! kernels {
    ($($kernel:ident: $family:ident, $entry:literal $(+ $flag:ident)*;)*) => {
        /// Every compute kernel of the crate: an entry point, and the override constants
        /// (see [`Flag`]) its pipeline sets to `true`.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub(crate) enum Kernel { $($kernel,)* }

        impl Kernel {
            const ALL: &[Kernel] = &[$(Kernel::$kernel,)*];

            pub(crate) fn family(self) -> Family {
                match self { $(Kernel::$kernel => Family::$family,)* }
            }

            pub(crate) fn entry_point(self) -> &'static str {
                match self { $(Kernel::$kernel => $entry,)* }
            }

            fn flags(self) -> &'static [Flag] {
                match self { $(Kernel::$kernel => &[$(Flag::$flag),*],)* }
            }
        }
    };
}

/// An override constant of the WGSL that a kernel's pipeline sets to `true` (the shaders
/// default it to `false`), so one entry point serves several kernels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[allow(non_camel_case_types)]
enum Flag {
    /// Log-softmax rather than softmax (the softmax families).
    log_space,
    /// The gradient as well as the loss (the cross-entropy families).
    backward,
    /// The gradient overwrites the logits, bound as `grad` (f32 only).
    in_place,
    /// A linear product's A is the logits' gradient, not the hidden states.
    a_grad,
    /// A linear product's B is the hidden states, not the weight.
    b_hidden,
    /// A linear product's B is the logits' gradient.
    b_grad,
    /// The logits or ∂h of an `H × V` weight.
    h_by_v,
    /// The batch reductions sum the row losses as well as the mean's divisor.
    losses,
}

impl Flag {
    /// The override's name in the WGSL.
    fn constant(self) -> &'static str {
        match self {
            Flag::log_space => "LOG_SPACE",
            Flag::backward => "BACKWARD",
            Flag::in_place => "IN_PLACE",
            Flag::a_grad => "A_GRAD",
            Flag::b_hidden => "B_HIDDEN",
            Flag::b_grad => "B_GRAD",
            Flag::h_by_v => "H_BY_V",
            Flag::losses => "LOSSES",
        }
    }
}

kernels! {
    LogSoftmaxForward:                    Softmax,              "softmax_forward" + log_space;
    SoftmaxForward:                       Softmax,              "softmax_forward";
    LogSoftmaxBackward:                   Softmax,              "softmax_backward" + log_space;
    SoftmaxBackward:                      Softmax,              "softmax_backward";
    LogSoftmaxForwardSolo:                Softmax,              "softmax_forward_solo" + log_space;
    SoftmaxForwardSolo:                   Softmax,              "softmax_forward_solo";
    LogSoftmaxBackwardSolo:               Softmax,              "softmax_backward_solo" + log_space;
    SoftmaxBackwardSolo:                  Softmax,              "softmax_backward_solo";
    SoftmaxPartials:                      Softmax,              "softmax_partials";
    LogSoftmaxMergedForward:              Softmax,              "softmax_merged_forward" + log_space;
    SoftmaxMergedForward:                 Softmax,              "softmax_merged_forward";
    LogSoftmaxForwardVec4:                SoftmaxVec4,          "softmax_forward_vec4" + log_space;
    SoftmaxForwardVec4:                   SoftmaxVec4,          "softmax_forward_vec4";
    SoftmaxPartialsVec4:                  SoftmaxVec4,          "softmax_partials_vec4";
    LogSoftmaxMergedForwardVec4:          SoftmaxVec4,          "softmax_merged_forward_vec4" + log_space;
    SoftmaxMergedForwardVec4:             SoftmaxVec4,          "softmax_merged_forward_vec4";
    LogSoftmaxResident:                   SoftmaxResident,      "softmax_forward_resident" + log_space;
    SoftmaxResident:                      SoftmaxResident,      "softmax_forward_resident";
    LogSoftmaxShort:                      SoftmaxShort,         "softmax_forward_short" + log_space;
    SoftmaxShort:                         SoftmaxShort,         "softmax_forward_short";
    LogSoftmaxPacked:                     SoftmaxPacked,        "softmax_forward_packed" + log_space;
    SoftmaxPacked:                        SoftmaxPacked,        "softmax_forward_packed";
    CrossEntropyForward:                  CrossEntropy,         "cross_entropy_forward";
    CrossEntropyForwardBackward:          CrossEntropy,         "cross_entropy_forward" + backward;
    CrossEntropyForwardSolo:              CrossEntropy,         "cross_entropy_forward_solo";
    CrossEntropyForwardBackwardSolo:      CrossEntropy,         "cross_entropy_forward_solo" + backward;
    CrossEntropyPartials:                 CrossEntropy,         "cross_entropy_partials";
    CrossEntropyMergedForward:            CrossEntropy,         "cross_entropy_merged_forward";
    CrossEntropyMergedForwardBackward:    CrossEntropy,         "cross_entropy_merged_forward_backward";
    CrossEntropyForwardVec4:              CrossEntropyVec4,     "cross_entropy_forward_vec4";
    CrossEntropyForwardBackwardVec4:      CrossEntropyVec4,     "cross_entropy_forward_vec4" + backward;
    CrossEntropyForwardBackwardVec4InPlace: CrossEntropyVec4,   "cross_entropy_forward_vec4" + backward + in_place;
    CrossEntropyPartialsVec4:             CrossEntropyVec4,     "cross_entropy_partials_vec4";
    CrossEntropyMergedForwardBackwardVec4: CrossEntropyVec4,    "cross_entropy_merged_forward_backward_vec4";
    CrossEntropyResidentForward:          CrossEntropyResident, "cross_entropy_forward_resident";
    CrossEntropyResidentForwardBackward:  CrossEntropyResident, "cross_entropy_forward_resident" + backward;
    CrossEntropyResidentForwardBackwardInPlace: CrossEntropyResident, "cross_entropy_forward_resident" + backward + in_place;
    CrossEntropyShortForward:             CrossEntropyShort,    "cross_entropy_forward_short";
    CrossEntropyShortForwardBackward:     CrossEntropyShort,    "cross_entropy_forward_short" + backward;
    CrossEntropyShortForwardBackwardInPlace: CrossEntropyShort, "cross_entropy_forward_short" + backward + in_place;
    CrossEntropyPackedForward:            CrossEntropyPacked,   "cross_entropy_forward_packed";
    CrossEntropyPackedForwardBackward:    CrossEntropyPacked,   "cross_entropy_forward_packed" + backward;
    CrossEntropyPackedForwardBackwardInPlace: CrossEntropyPacked, "cross_entropy_forward_packed" + backward + in_place;
    NllForward:                           Nll,                  "nll_forward";
    NllBackward:                          Nll,                  "nll_backward";
    TargetWeightBlocks:                   Reduce,               "reduce_blocks";
    TargetWeightTotal:                    Reduce,               "reduce_totals";
    LossBlocks:                           Reduce,               "reduce_blocks" + losses;
    ReduceLosses:                         Reduce,               "reduce_totals" + losses;
    ReduceAccuracy:                       Reduce,               "reduce_accuracy";
    RecordBadTargetValue:                 Reduce,               "record_bad_target_value";
    ElementwiseForward:                   Elementwise,          "elementwise_forward";
    ElementwiseForwardBackward:           Elementwise,          "elementwise_forward_backward";
    ElementwiseBackward:                  Elementwise,          "elementwise_backward";
    ElementwiseReduce:                    Elementwise,          "elementwise_reduce";
    LinearLogits:                         Linear,               "linear_product";
    LinearLogitsT:                        Linear,               "linear_product" + h_by_v;
    LinearGradHidden:                     Linear,               "linear_product" + a_grad;
    LinearGradHiddenT:                    Linear,               "linear_product" + a_grad + h_by_v;
    LinearGradWeight:                     Linear,               "linear_product" + a_grad + b_hidden;
    LinearGradWeightT:                    Linear,               "linear_product" + b_grad;
    LinearLogitsVec4:                     LinearVec4,           "linear_product";
    LinearLogitsTVec4:                    LinearVec4,           "linear_product" + h_by_v;
    LinearGradHiddenVec4:                 LinearVec4,           "linear_product" + a_grad;
    LinearGradHiddenTVec4:                LinearVec4,           "linear_product" + a_grad + h_by_v;
    LinearGradWeightVec4:                 LinearVec4,           "linear_product" + a_grad + b_hidden;
    LinearGradWeightTVec4:                LinearVec4,           "linear_product" + b_grad;
    LinearGradBias:                       LinearBias,           "linear_grad_bias";
}

impl Kernel {
    /// Whether the kernel writes the gradient over the logits (f32 only).
    fn is_in_place(self) -> bool {
        self.flags().contains(&Flag::in_place)
    }

    /// The linear product's twin reading its operands as vec4 quads: the `LinearVec4`
    /// kernel with its entry point and flags (itself for any other kernel).
    pub(crate) fn quads(self) -> Kernel {
        let twin = |k: &&Kernel| {
            k.family() == Family::LinearVec4 && k.entry_point() == self.entry_point() && k.flags() == self.flags()
        };
        match self.family() {
            Family::Linear => *Kernel::ALL.iter().find(twin).expect("every linear product has a vec4 twin"),
            _ => self,
        }
    }
}

/// One built pipeline: a kernel, the quads per invocation it is unrolled for (0 unless
/// its family holds rows in registers) and the precision of the logits it reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Variant {
    kernel: Kernel,
    slots: u32,
    precision: Precision,
}

impl Variant {
    /// The variant recorded for `precision`'s logits (f32 for families without half
    /// variants, which never read the logits' elements).
    fn of(kernel: Kernel, slots: u32, precision: Precision) -> Self {
        Self { kernel, slots, precision: kernel.family().built_for(precision) }
    }

    /// Every variant a device can record: each kernel at each of its slot counts in each
    /// precision its family is built for (in-place kernels: f32 only).
    fn every(f16: bool) -> Vec<Variant> {
        let mut all = Vec::new();
        for &kernel in Kernel::ALL {
            let family = kernel.family();
            for slots in family.slots().counts() {
                for &precision in family.precisions(f16) {
                    if precision == Precision::F32 || !kernel.is_in_place() {
                        all.push(Variant { kernel, slots, precision });
                    }
                }
            }
        }
        all
    }

    /// The name [`crate::Gpu::recorded_kernels`] reports: the entry point, the slot count of
    /// a resident kernel in brackets, `+flag` for each override it sets, the precision, and how its rows are reduced
    /// (`subgroup` or `workgroup`, row-wise kernels only).
    fn name(self, reduce: RowReduce) -> String {
        let slots = match self.kernel.family().slots() {
            Slots::None => String::new(),
            Slots::PerRow | Slots::Short | Slots::Classes | Slots::Tile => format!("[{}]", self.slots),
        };
        let precision = match self.precision {
            Precision::F32 if self.kernel.family().decl().logits == Logits::Vec4 => "f32x4",
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        };
        let reduce = match (self.kernel.family().is_row_wise(), reduce) {
            (false, _) => "",
            (true, RowReduce::Subgroup) => " subgroup",
            (true, RowReduce::Workgroup) => " workgroup",
        };
        let flags: String = self.kernel.flags().iter().map(|f| format!("+{f:?}")).collect();
        format!("{}{slots}{flags} {precision}{reduce}", self.kernel.entry_point())
    }
}

/// How the row-wise kernels are shaped on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowShape {
    pub reduce: RowReduce,
    /// Invocations per row (a power of two ≤ 256; the subgroup size for `Subgroup`).
    pub workgroup_size: u32,
    /// The fixed subgroup size (`Subgroup` only; `workgroup_size` is a multiple of it).
    pub subgroup_size: u32,
}

/// All pipelines and layouts of one device: the f32 pipeline of every kernel that is not
/// unrolled, built with the `Gpu`; the others (half precision, each slot count) built on
/// first use and kept; and which variants were recorded.
#[derive(Debug)]
pub(crate) struct Kernels {
    device: wgpu::Device,
    row: RowShape,
    layouts: HashMap<Layout, wgpu::BindGroupLayout>,
    pipelines: Mutex<HashMap<Variant, wgpu::ComputePipeline>>,
    recorded: Mutex<HashSet<Variant>>,
}

impl Kernels {
    pub(crate) fn new(device: &wgpu::Device, row: RowShape) -> Self {
        let layouts = Layout::ALL.into_iter().map(|layout| (layout, create_layout(device, layout))).collect();
        let kernels =
            Self { device: device.clone(), row, layouts, pipelines: Default::default(), recorded: Default::default() };
        let mut modules: HashMap<Family, wgpu::ShaderModule> = HashMap::new();
        let mut built = HashMap::new();
        for &kernel in Kernel::ALL.iter().filter(|k| k.family().slots() == Slots::None) {
            let family = kernel.family();
            let module = modules.entry(family).or_insert_with(|| kernels.module(family, Precision::F32, 0));
            let variant = Variant::of(kernel, 0, Precision::F32);
            built.insert(variant, kernels.create_pipeline(variant, module));
        }
        *kernels.pipelines.lock().unwrap_or_else(PoisonError::into_inner) = built;
        kernels
    }

    fn module(&self, family: Family, precision: Precision, slots: u32) -> wgpu::ShaderModule {
        self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&format!("wgpu-loss {family:?} {precision:?} {slots}")),
            source: wgpu::ShaderSource::Wgsl(family.source(self.row.reduce, precision, slots).into()),
        })
    }

    fn create_pipeline(&self, variant: Variant, module: &wgpu::ShaderModule) -> wgpu::ComputePipeline {
        let (row, kernel) = (self.row, variant.kernel);
        let mut constants: Vec<(&str, f64)> = kernel.flags().iter().map(|f| (f.constant(), 1.0)).collect();
        if kernel.family().decl().logits == Logits::Override {
            let half = match variant.precision {
                Precision::F32 => 0.0,
                Precision::F16 => 1.0,
                Precision::Bf16 => 2.0,
            };
            constants.push(("HALF", half));
        }
        if kernel.family().slots() == Slots::Classes {
            constants.push(("CLASSES", f64::from(variant.slots)));
        }
        if kernel.family().is_row_wise() {
            constants.push(("WG", f64::from(row.workgroup_size)));
            if row.reduce == RowReduce::Subgroup {
                constants.push(("SG", f64::from(row.subgroup_size)));
            }
        }
        let layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel.entry_point()),
            bind_group_layouts: &[Some(&self.layouts[&kernel.family().layout()])],
            immediate_size: 0,
        });
        self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry_point()),
            layout: Some(&layout),
            module,
            entry_point: Some(kernel.entry_point()),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants: &constants,
                // Every kernel writes its workgroup memory before reading it: zeroing it
                // first would cost each workgroup a pass over it and a barrier.
                zero_initialize_workgroup_memory: false,
            },
            cache: None,
        })
    }

    pub(crate) fn layout(&self, layout: Layout) -> &wgpu::BindGroupLayout {
        &self.layouts[&layout]
    }

    /// The pipeline of `kernel` unrolled for `slots` quads (0 for kernels that are not)
    /// for `precision`'s logits, built on first use; notes that it was recorded.
    pub(crate) fn pipeline(&self, kernel: Kernel, slots: u32, precision: Precision) -> wgpu::ComputePipeline {
        let variant = Variant::of(kernel, slots, precision);
        self.recorded.lock().unwrap_or_else(PoisonError::into_inner).insert(variant);
        let mut built = self.pipelines.lock().unwrap_or_else(PoisonError::into_inner);
        built
            .entry(variant)
            .or_insert_with(|| {
                let module = self.module(kernel.family(), variant.precision, slots);
                self.create_pipeline(variant, &module)
            })
            .clone()
    }

    /// The names of the variants recorded so far, sorted.
    pub(crate) fn recorded_names(&self) -> Vec<String> {
        let recorded = self.recorded.lock().unwrap_or_else(PoisonError::into_inner);
        let mut names: Vec<String> = recorded.iter().map(|v| v.name(self.row.reduce)).collect();
        names.sort();
        names
    }

    /// The names of every variant this device can record, sorted.
    pub(crate) fn recordable_names(&self) -> Vec<String> {
        let f16 = self.device.features().contains(wgpu::Features::SHADER_F16);
        let mut names: Vec<String> = Variant::every(f16).iter().map(|v| v.name(self.row.reduce)).collect();
        names.sort();
        names
    }
}

fn create_layout(device: &wgpu::Device, layout: Layout) -> wgpu::BindGroupLayout {
    let uniform = wgpu::BindGroupLayoutEntry {
        binding: 0,
        visibility: wgpu::ShaderStages::COMPUTE,
        ty: wgpu::BindingType::Buffer {
            ty: wgpu::BufferBindingType::Uniform,
            has_dynamic_offset: false,
            min_binding_size: None,
        },
        count: None,
    };
    let entries: Vec<_> = std::iter::once(uniform)
        .chain(layout.storage_bindings().iter().map(|&(binding, read_only)| wgpu::BindGroupLayoutEntry {
            binding,
            visibility: wgpu::ShaderStages::COMPUTE,
            ty: wgpu::BindingType::Buffer {
                ty: wgpu::BufferBindingType::Storage { read_only },
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        }))
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(&format!("wgpu-loss {layout:?}")),
        entries: &entries,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel's family module has the kernel's entry point and declares the overrides
    /// it sets.
    #[test]
    fn every_entry_point_is_in_its_family_module() {
        for &kernel in Kernel::ALL {
            let family = kernel.family();
            let slots = family.slots().counts()[0];
            let source = family.source(RowReduce::Workgroup, Precision::F32, slots);
            let module = naga::front::wgsl::parse_str(&source).unwrap();
            assert!(
                module.entry_points.iter().any(|e| e.name == kernel.entry_point()),
                "{kernel:?}: no entry point {} in {family:?}",
                kernel.entry_point()
            );
            for flag in kernel.flags() {
                assert!(
                    module.overrides.iter().any(|(_, o)| o.name.as_deref() == Some(flag.constant())),
                    "{kernel:?}: no override {} in {family:?}",
                    flag.constant()
                );
            }
        }
    }
}
