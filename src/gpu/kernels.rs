//! Pipelines and bind-group layouts, built once per [`Gpu`](crate::Gpu) and reused.

use std::collections::HashMap;

use super::shaders::{Family, RowReduce};
use crate::Precision;

/// The two bind-group layouts: one for the row-wise softmax family, one shared by every
/// class-index kernel (nll, cross-entropy, reductions), so one bind group serves all the
/// dispatches of an op.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Layout {
    /// 0 params, 1 input (read), 4 grad_output (read), 5 partials, 7 output (read-write).
    Row,
    /// 0 params, 1 input, 2 targets, 4 grad_output (read), 3 aux (weights and extra outputs),
    /// 5 batch state, 6 row_loss, 7 grad, 8 loss_out (read-write).
    ClassIndex,
}

impl Layout {
    /// The argument a caller's buffer at `binding` stands for, for error messages.
    pub(crate) fn argument(self, binding: u32) -> &'static str {
        match (self, binding) {
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
            Layout::ClassIndex => &[
                (1, true),
                (2, true),
                (3, false),
                (4, true),
                (5, false),
                (6, false),
                (7, false),
                (8, false),
            ],
        }
    }
}

/// Every compute kernel of the crate, named by its WGSL entry point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Kernel {
    LogSoftmaxForward,
    SoftmaxForward,
    LogSoftmaxBackward,
    SoftmaxBackward,
    CrossEntropyForward,
    CrossEntropyForwardBackward,
    CrossEntropyForwardSolo,
    CrossEntropyForwardBackwardSolo,
    LogSoftmaxForwardSolo,
    SoftmaxForwardSolo,
    LogSoftmaxBackwardSolo,
    SoftmaxBackwardSolo,
    LogSoftmaxForwardVec4,
    SoftmaxForwardVec4,
    SoftmaxPartialsVec4,
    LogSoftmaxMergedForwardVec4,
    SoftmaxMergedForwardVec4,
    CrossEntropyPartials,
    CrossEntropyMergedForward,
    CrossEntropyMergedForwardBackward,
    CrossEntropyForwardVec4,
    CrossEntropyForwardBackwardVec4,
    CrossEntropyForwardBackwardVec4InPlace,
    CrossEntropyPartialsVec4,
    CrossEntropyMergedForwardBackwardVec4,
    SoftmaxPartials,
    LogSoftmaxMergedForward,
    SoftmaxMergedForward,
    NllForward,
    NllBackward,
    TargetWeightTotal,
    ReduceLosses,
    ReduceAccuracy,
    RecordBadTargetValue,
    ElementwiseForward,
    ElementwiseForwardBackward,
    ElementwiseBackward,
    ElementwiseReduce,
    /// A kernel that holds each row on-chip, unrolled for this many quads per invocation
    /// (built on first use).
    Resident(ResidentKernel, u32),
}

/// The kernels that hold rows in registers: a workgroup per row (shaders/*_resident.wgsl)
/// or, for short rows, an invocation per row (shaders/*_short.wgsl).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum ResidentKernel {
    LogSoftmaxForward,
    SoftmaxForward,
    CrossEntropyForward,
    CrossEntropyForwardBackward,
    CrossEntropyForwardBackwardInPlace,
    LogSoftmaxShort,
    SoftmaxShort,
    CrossEntropyShortForward,
    CrossEntropyShortForwardBackward,
    CrossEntropyShortForwardBackwardInPlace,
}

/// The most quads one invocation of a resident kernel holds.
pub(crate) const MAX_RESIDENT_SLOTS: u32 = 32;

impl Kernel {
    const ALL: [Kernel; 38] = [
        Kernel::LogSoftmaxForward,
        Kernel::SoftmaxForward,
        Kernel::LogSoftmaxBackward,
        Kernel::SoftmaxBackward,
        Kernel::CrossEntropyForward,
        Kernel::CrossEntropyForwardBackward,
        Kernel::CrossEntropyForwardSolo,
        Kernel::CrossEntropyForwardBackwardSolo,
        Kernel::LogSoftmaxForwardSolo,
        Kernel::SoftmaxForwardSolo,
        Kernel::LogSoftmaxBackwardSolo,
        Kernel::SoftmaxBackwardSolo,
        Kernel::LogSoftmaxForwardVec4,
        Kernel::SoftmaxForwardVec4,
        Kernel::SoftmaxPartialsVec4,
        Kernel::LogSoftmaxMergedForwardVec4,
        Kernel::SoftmaxMergedForwardVec4,
        Kernel::CrossEntropyPartials,
        Kernel::CrossEntropyMergedForward,
        Kernel::CrossEntropyMergedForwardBackward,
        Kernel::CrossEntropyForwardVec4,
        Kernel::CrossEntropyForwardBackwardVec4,
        Kernel::CrossEntropyForwardBackwardVec4InPlace,
        Kernel::CrossEntropyPartialsVec4,
        Kernel::CrossEntropyMergedForwardBackwardVec4,
        Kernel::SoftmaxPartials,
        Kernel::LogSoftmaxMergedForward,
        Kernel::SoftmaxMergedForward,
        Kernel::NllForward,
        Kernel::NllBackward,
        Kernel::TargetWeightTotal,
        Kernel::ReduceLosses,
        Kernel::ReduceAccuracy,
        Kernel::RecordBadTargetValue,
        Kernel::ElementwiseForward,
        Kernel::ElementwiseForwardBackward,
        Kernel::ElementwiseBackward,
        Kernel::ElementwiseReduce,
    ];

    fn family(self) -> Family {
        match self {
            Kernel::LogSoftmaxForward
            | Kernel::SoftmaxForward
            | Kernel::LogSoftmaxBackward
            | Kernel::SoftmaxBackward
            | Kernel::SoftmaxPartials
            | Kernel::LogSoftmaxForwardSolo
            | Kernel::SoftmaxForwardSolo
            | Kernel::LogSoftmaxBackwardSolo
            | Kernel::SoftmaxBackwardSolo
            | Kernel::LogSoftmaxMergedForward
            | Kernel::SoftmaxMergedForward => Family::Softmax,
            Kernel::LogSoftmaxForwardVec4
            | Kernel::SoftmaxForwardVec4
            | Kernel::SoftmaxPartialsVec4
            | Kernel::LogSoftmaxMergedForwardVec4
            | Kernel::SoftmaxMergedForwardVec4 => Family::SoftmaxVec4,
            Kernel::CrossEntropyForward
            | Kernel::CrossEntropyForwardBackward
            | Kernel::CrossEntropyForwardSolo
            | Kernel::CrossEntropyForwardBackwardSolo
            | Kernel::CrossEntropyPartials
            | Kernel::CrossEntropyMergedForward
            | Kernel::CrossEntropyMergedForwardBackward => Family::CrossEntropy,
            Kernel::CrossEntropyForwardVec4
            | Kernel::CrossEntropyForwardBackwardVec4
            | Kernel::CrossEntropyForwardBackwardVec4InPlace
            | Kernel::CrossEntropyPartialsVec4
            | Kernel::CrossEntropyMergedForwardBackwardVec4 => Family::CrossEntropyVec4,
            Kernel::NllForward | Kernel::NllBackward => Family::Nll,
            Kernel::TargetWeightTotal
            | Kernel::ReduceLosses
            | Kernel::ReduceAccuracy
            | Kernel::RecordBadTargetValue => Family::Reduce,
            Kernel::ElementwiseForward
            | Kernel::ElementwiseForwardBackward
            | Kernel::ElementwiseBackward
            | Kernel::ElementwiseReduce => Family::Elementwise,
            Kernel::Resident(kernel, _) => match kernel {
                ResidentKernel::LogSoftmaxForward | ResidentKernel::SoftmaxForward => Family::SoftmaxResident,
                ResidentKernel::CrossEntropyForward
                | ResidentKernel::CrossEntropyForwardBackward
                | ResidentKernel::CrossEntropyForwardBackwardInPlace => Family::CrossEntropyResident,
                ResidentKernel::LogSoftmaxShort | ResidentKernel::SoftmaxShort => Family::SoftmaxShort,
                ResidentKernel::CrossEntropyShortForward
                | ResidentKernel::CrossEntropyShortForwardBackward
                | ResidentKernel::CrossEntropyShortForwardBackwardInPlace => Family::CrossEntropyShort,
            },
        }
    }

    /// The quads per invocation a resident kernel is unrolled for (0 for the others).
    fn slots(self) -> u32 {
        match self {
            Kernel::Resident(_, slots) => slots,
            _ => 0,
        }
    }

    fn entry_point(self) -> &'static str {
        match self {
            Kernel::LogSoftmaxForward => "log_softmax_forward",
            Kernel::SoftmaxForward => "softmax_forward",
            Kernel::LogSoftmaxBackward => "log_softmax_backward",
            Kernel::SoftmaxBackward => "softmax_backward",
            Kernel::CrossEntropyForward => "cross_entropy_forward",
            Kernel::CrossEntropyForwardBackward => "cross_entropy_forward_backward",
            Kernel::CrossEntropyForwardSolo => "cross_entropy_forward_solo",
            Kernel::CrossEntropyForwardBackwardSolo => "cross_entropy_forward_backward_solo",
            Kernel::LogSoftmaxForwardSolo => "log_softmax_forward_solo",
            Kernel::SoftmaxForwardSolo => "softmax_forward_solo",
            Kernel::LogSoftmaxBackwardSolo => "log_softmax_backward_solo",
            Kernel::SoftmaxBackwardSolo => "softmax_backward_solo",
            Kernel::LogSoftmaxForwardVec4 => "log_softmax_forward_vec4",
            Kernel::SoftmaxForwardVec4 => "softmax_forward_vec4",
            Kernel::SoftmaxPartialsVec4 => "softmax_partials_vec4",
            Kernel::LogSoftmaxMergedForwardVec4 => "log_softmax_merged_forward_vec4",
            Kernel::SoftmaxMergedForwardVec4 => "softmax_merged_forward_vec4",
            Kernel::CrossEntropyPartials => "cross_entropy_partials",
            Kernel::CrossEntropyMergedForward => "cross_entropy_merged_forward",
            Kernel::CrossEntropyMergedForwardBackward => "cross_entropy_merged_forward_backward",
            Kernel::CrossEntropyForwardVec4 => "cross_entropy_forward_vec4",
            Kernel::CrossEntropyForwardBackwardVec4 => "cross_entropy_forward_backward_vec4",
            Kernel::CrossEntropyForwardBackwardVec4InPlace => "cross_entropy_forward_backward_vec4_in_place",
            Kernel::CrossEntropyPartialsVec4 => "cross_entropy_partials_vec4",
            Kernel::CrossEntropyMergedForwardBackwardVec4 => "cross_entropy_merged_forward_backward_vec4",
            Kernel::SoftmaxPartials => "softmax_partials",
            Kernel::LogSoftmaxMergedForward => "log_softmax_merged_forward",
            Kernel::SoftmaxMergedForward => "softmax_merged_forward",
            Kernel::NllForward => "nll_forward",
            Kernel::NllBackward => "nll_backward",
            Kernel::TargetWeightTotal => "target_weight_total",
            Kernel::ReduceLosses => "reduce_losses",
            Kernel::ReduceAccuracy => "reduce_accuracy",
            Kernel::RecordBadTargetValue => "record_bad_target_value",
            Kernel::ElementwiseForward => "elementwise_forward",
            Kernel::ElementwiseForwardBackward => "elementwise_forward_backward",
            Kernel::ElementwiseBackward => "elementwise_backward",
            Kernel::ElementwiseReduce => "elementwise_reduce",
            Kernel::Resident(kernel, _) => match kernel {
                ResidentKernel::LogSoftmaxForward => "log_softmax_forward_resident",
                ResidentKernel::SoftmaxForward => "softmax_forward_resident",
                ResidentKernel::CrossEntropyForward => "cross_entropy_forward_resident",
                ResidentKernel::CrossEntropyForwardBackward => "cross_entropy_forward_backward_resident",
                ResidentKernel::CrossEntropyForwardBackwardInPlace => {
                    "cross_entropy_forward_backward_resident_in_place"
                }
                ResidentKernel::LogSoftmaxShort => "log_softmax_forward_short",
                ResidentKernel::SoftmaxShort => "softmax_forward_short",
                ResidentKernel::CrossEntropyShortForward => "cross_entropy_forward_short",
                ResidentKernel::CrossEntropyShortForwardBackward => "cross_entropy_forward_backward_short",
                ResidentKernel::CrossEntropyShortForwardBackwardInPlace => {
                    "cross_entropy_forward_backward_short_in_place"
                }
            },
        }
    }

    /// The precision the kernel is built for when recorded for `precision`'s logits: its
    /// own for families with half variants, f32 for the others.
    fn built_for(self, precision: Precision) -> Precision {
        if self.family().has_half_variants() {
            precision
        } else {
            Precision::F32
        }
    }

    /// Every kernel a device can record, with each precision it is built for: the
    /// kernels of [`Kernel::ALL`], and the resident ones at every slot count (powers of two
    /// up to [`MAX_RESIDENT_SLOTS`] for a workgroup per row, 1 to 8 quads for a short row).
    fn every_variant(f16: bool) -> Vec<(Kernel, Precision)> {
        use ResidentKernel as R;
        let per_row = [
            R::LogSoftmaxForward,
            R::SoftmaxForward,
            R::CrossEntropyForward,
            R::CrossEntropyForwardBackward,
            R::CrossEntropyForwardBackwardInPlace,
        ];
        let short = [
            R::LogSoftmaxShort,
            R::SoftmaxShort,
            R::CrossEntropyShortForward,
            R::CrossEntropyShortForwardBackward,
            R::CrossEntropyShortForwardBackwardInPlace,
        ];
        let resident = per_row
            .into_iter()
            .flat_map(|k| (0..=MAX_RESIDENT_SLOTS.ilog2()).map(move |p| Kernel::Resident(k, 1 << p)))
            .chain(
                short
                    .into_iter()
                    .flat_map(|k| (1..=SOLO_CLASSES.div_ceil(4) as u32).map(move |slots| Kernel::Resident(k, slots))),
            );
        let precisions: &[Precision] = if f16 {
            &[Precision::F32, Precision::Bf16, Precision::F16]
        } else {
            &[Precision::F32, Precision::Bf16]
        };
        Kernel::ALL
            .into_iter()
            .chain(resident)
            .flat_map(|kernel| {
                precisions
                    .iter()
                    .filter(move |&&p| p == Precision::F32 || kernel.family().has_half_variants())
                    // In-place kernels write the gradient over f32 logits only.
                    .filter(move |&&p| p == Precision::F32 || !kernel.is_in_place())
                    .map(move |&p| (kernel, p))
            })
            .collect()
    }

    /// Whether the kernel writes the gradient over the logits.
    fn is_in_place(self) -> bool {
        matches!(
            self,
            Kernel::CrossEntropyForwardBackwardVec4InPlace
                | Kernel::Resident(
                    ResidentKernel::CrossEntropyForwardBackwardInPlace
                        | ResidentKernel::CrossEntropyShortForwardBackwardInPlace,
                    _
                )
        )
    }

    /// The kernel's name as [`crate::Gpu::recorded_kernels`] reports it: the entry point,
    /// the slot count of a resident kernel in brackets, the precision, and how its rows
    /// are reduced (`subgroup` or `workgroup`, row-wise kernels only).
    fn name(self, precision: Precision, reduce: RowReduce) -> String {
        let slots = match self {
            Kernel::Resident(_, slots) => format!("[{slots}]"),
            _ => String::new(),
        };
        let precision = match precision {
            Precision::F32 => "f32",
            Precision::F16 => "f16",
            Precision::Bf16 => "bf16",
        };
        let reduce = match (self.family().is_row_wise(), reduce) {
            (false, _) => "",
            (true, RowReduce::Subgroup) => " subgroup",
            (true, RowReduce::Workgroup) => " workgroup",
        };
        format!("{}{slots} {precision}{reduce}", self.entry_point())
    }

    pub(crate) fn layout(self) -> Layout {
        match self.family() {
            Family::Softmax | Family::SoftmaxVec4 | Family::SoftmaxResident | Family::SoftmaxShort => Layout::Row,
            Family::CrossEntropy
            | Family::CrossEntropyVec4
            | Family::CrossEntropyResident
            | Family::CrossEntropyShort
            | Family::Nll
            | Family::Reduce => Layout::ClassIndex,
            Family::Elementwise => Layout::ClassIndex,
        }
    }
}

/// Rows of at most this many classes take one invocation each (the `*_solo` kernels),
/// `SOLO_WG` = 64 rows per workgroup.
pub(crate) const SOLO_CLASSES: usize = 32;
pub(crate) const SOLO_ROWS_PER_WORKGROUP: u64 = 64;

/// How the row-wise kernels are shaped on this device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RowShape {
    pub reduce: RowReduce,
    /// Invocations per row (a power of two ≤ 256; the subgroup size for `Subgroup`).
    pub workgroup_size: u32,
    /// The fixed subgroup size (`Subgroup` only; `workgroup_size` is a multiple of it).
    pub subgroup_size: u32,
}

/// All pipelines and layouts of one device: every kernel of [`Kernel::ALL`] for f32 logits,
/// built with the `Gpu`; the half-precision variants of the cross-entropy kernels and the
/// resident kernels (one per slot count) built on first use and kept.
#[derive(Debug)]
pub(crate) struct Kernels {
    device: wgpu::Device,
    row: RowShape,
    layouts: HashMap<Layout, wgpu::BindGroupLayout>,
    pipelines: HashMap<Kernel, wgpu::ComputePipeline>,
    on_demand: std::sync::Mutex<HashMap<(Kernel, Precision), wgpu::ComputePipeline>>,
    /// Every (kernel, precision) recorded so far (see [`Kernels::note_recorded`]).
    recorded: std::sync::Mutex<std::collections::HashSet<(Kernel, Precision)>>,
}

impl Kernels {
    pub(crate) fn new(device: &wgpu::Device, row: RowShape) -> Self {
        let layouts: HashMap<Layout, wgpu::BindGroupLayout> = [Layout::Row, Layout::ClassIndex]
            .into_iter()
            .map(|layout| (layout, create_layout(device, layout)))
            .collect();
        let mut kernels = Self {
            device: device.clone(),
            row,
            layouts,
            pipelines: HashMap::new(),
            on_demand: Default::default(),
            recorded: Default::default(),
        };
        let mut modules: HashMap<Family, wgpu::ShaderModule> = HashMap::new();
        for kernel in Kernel::ALL {
            let family = kernel.family();
            modules
                .entry(family)
                .or_insert_with(|| kernels.module(family, Precision::F32, 0));
        }
        kernels.pipelines = Kernel::ALL
            .into_iter()
            .map(|kernel| (kernel, kernels.create_pipeline(kernel, &modules[&kernel.family()])))
            .collect();
        kernels
    }

    fn module(&self, family: Family, precision: Precision, slots: u32) -> wgpu::ShaderModule {
        self.device.create_shader_module(wgpu::ShaderModuleDescriptor {
            label: Some(&format!("wgpu-loss {family:?} {precision:?} {slots}")),
            source: wgpu::ShaderSource::Wgsl(family.source_for(self.row.reduce, precision, slots).into()),
        })
    }

    fn create_pipeline(&self, kernel: Kernel, module: &wgpu::ShaderModule) -> wgpu::ComputePipeline {
        let row = self.row;
        let sized = [
            ("WG", f64::from(row.workgroup_size)),
            ("SG", f64::from(row.subgroup_size)),
        ];
        let row_constants = match row.reduce {
            RowReduce::Subgroup => &sized[..],
            RowReduce::Workgroup => &sized[..1],
        };
        let layout = self.device.create_pipeline_layout(&wgpu::PipelineLayoutDescriptor {
            label: Some(kernel.entry_point()),
            bind_group_layouts: &[Some(&self.layouts[&kernel.layout()])],
            immediate_size: 0,
        });
        let constants: &[(&str, f64)] = if kernel.family().is_row_wise() {
            row_constants
        } else {
            &[]
        };
        self.device.create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
            label: Some(kernel.entry_point()),
            layout: Some(&layout),
            module,
            entry_point: Some(kernel.entry_point()),
            compilation_options: wgpu::PipelineCompilationOptions {
                constants,
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

    /// Notes that `kernel` was recorded for `precision`'s logits.
    pub(crate) fn note_recorded(&self, kernel: Kernel, precision: Precision) {
        let precision = kernel.built_for(precision);
        self.recorded
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((kernel, precision));
    }

    /// The names of the kernels recorded so far, sorted.
    pub(crate) fn recorded_names(&self) -> Vec<String> {
        let recorded = self.recorded.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut names: Vec<String> = recorded.iter().map(|&(k, p)| k.name(p, self.row.reduce)).collect();
        names.sort();
        names
    }

    /// The names of every kernel this device can record, sorted.
    pub(crate) fn recordable_names(&self) -> Vec<String> {
        let f16 = self.device.features().contains(wgpu::Features::SHADER_F16);
        let mut names: Vec<String> = Kernel::every_variant(f16)
            .into_iter()
            .map(|(k, p)| k.name(p, self.row.reduce))
            .collect();
        names.sort();
        names
    }

    /// The kernel's pipeline for `precision`'s logits (f32 for families without half
    /// variants, which never read the logits' elements).
    pub(crate) fn pipeline(&self, kernel: Kernel, precision: Precision) -> wgpu::ComputePipeline {
        let family = kernel.family();
        let precision = kernel.built_for(precision);
        if let Some(pipeline) = self.pipelines.get(&kernel).filter(|_| precision == Precision::F32) {
            return pipeline.clone();
        }
        let mut built = self.on_demand.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        built
            .entry((kernel, precision))
            .or_insert_with(|| self.create_pipeline(kernel, &self.module(family, precision, kernel.slots())))
            .clone()
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
        .chain(
            layout
                .storage_bindings()
                .iter()
                .map(|&(binding, read_only)| wgpu::BindGroupLayoutEntry {
                    binding,
                    visibility: wgpu::ShaderStages::COMPUTE,
                    ty: wgpu::BindingType::Buffer {
                        ty: wgpu::BufferBindingType::Storage { read_only },
                        has_dynamic_offset: false,
                        min_binding_size: None,
                    },
                    count: None,
                }),
        )
        .collect();
    device.create_bind_group_layout(&wgpu::BindGroupLayoutDescriptor {
        label: Some(&format!("wgpu-loss {layout:?}")),
        entries: &entries,
    })
}
