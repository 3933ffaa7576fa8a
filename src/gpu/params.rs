//! The uniform parameter block every kernel reads, and every constant the host shares with
//! the shaders (each has a WGSL `const` of the same name; a test compares them).

use bytemuck::{Pod, Zeroable};

// Params.flags (shaders/shared/common.wgsl).
pub(crate) const FLAG_WEIGHT: u32 = 1;
pub(crate) const FLAG_MEAN: u32 = 2;
pub(crate) const FLAG_SUM: u32 = 4;
pub(crate) const FLAG_GRAD_BUFFER: u32 = 8;
pub(crate) const FLAG_EMPTY_ZERO: u32 = 16;
pub(crate) const FLAG_IN_PLACE: u32 = 32;
pub(crate) const FLAG_PROB_TARGETS: u32 = 64;
pub(crate) const FLAG_LSE: u32 = 128;
pub(crate) const FLAG_ARGMAX: u32 = 256;

// The elementwise losses' flags and loss kinds (shaders/elementwise/elementwise.wgsl).
pub(crate) const EW_POS_WEIGHT: u32 = 0x1_0000;
pub(crate) const EW_LOG_TARGET: u32 = 0x2_0000;
pub(crate) const EW_BATCHMEAN: u32 = 0x4_0000;
pub(crate) const EW_ROOT: u32 = 0x8_0000;
pub(crate) const LOSS_SHIFT: u32 = 24;
pub(crate) const LOSS_MSE: u32 = 0;
pub(crate) const LOSS_L1: u32 = 1;
pub(crate) const LOSS_SMOOTH_L1: u32 = 2;
pub(crate) const LOSS_HUBER: u32 = 3;
pub(crate) const LOSS_BCE: u32 = 4;
pub(crate) const LOSS_BCE_WITH_LOGITS: u32 = 5;
pub(crate) const LOSS_KL_DIV: u32 = 6;
/// Elements per elementwise workgroup, and so per partial sum.
pub(crate) const EW_TILE: u32 = 256 * 8;

/// Rows per block of the class-index batch reductions (shaders/reduce/reduce.wgsl): one
/// partial sum each, after the batch's rows in the workspace's row losses.
pub(crate) const REDUCE_BLOCK: u64 = 65536;

/// Invocations per workgroup of the NLL kernels, one per row or element.
pub(crate) const NLL_WG: u32 = 256;
/// Rows of at most `SOLO_CLASSES` classes per workgroup of the one-invocation-per-row
/// kernels (shaders/shared/row_stats.wgsl).
pub(crate) const SOLO_WG: u32 = 64;

// A row partial's flags (shaders/shared/row_stats.wgsl; `RowPartial::flags`).
pub(crate) const ROW_POISON: u32 = 1;
pub(crate) const NEG_INF_W_POS: u32 = 2;
pub(crate) const NEG_INF_W_NEG: u32 = 4;
pub(crate) const NEG_INF_W_ZERO: u32 = 8;

/// Bytes of `BatchState` (shaders/shared/class_index.wgsl) before its partials.
pub(crate) const BATCH_STATE_BYTES: u64 = 16;
/// Bytes of one row partial (two vec4, see shaders/shared/row_stats.wgsl).
pub(crate) const PARTIAL_BYTES: u64 = 32;

// The linear products (shaders/linear_cross_entropy/): MatmulParams.flags, the k block
// (TK, also the token block of the chunks), the invocations per workgroup of ∂b, the
// output tile of a workgroup (TILE × TILE), and the slots (quads per side of an
// invocation's block) of the GPU form, which stages k blocks through workgroup memory, and
// of the CPU-adapter form, which does not.
pub(crate) const MM_ACCUMULATE: u32 = 1;
pub(crate) const MM_BIAS: u32 = 2;
pub(crate) const TK: u32 = 16;
pub(crate) const LINEAR_WG: u32 = 64;
pub(crate) const TILE: u32 = 64;
pub(crate) const LINEAR_SLOTS_STAGED: u32 = 1;
pub(crate) const LINEAR_SLOTS_DIRECT: u32 = 2;

/// Mirrors `MatmulParams` in shaders/linear_cross_entropy/params.wgsl (a test compares
/// them): `C[m, n] (+)= Σ_k A[m, k]·B[k, n] (+ bias[n])` with element offsets and strides.
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Pod, Zeroable)]
pub(crate) struct MatmulParams {
    pub m: u32,
    pub n: u32,
    pub k: u32,
    pub flags: u32,
    pub a_off: u32,
    pub a_sm: u32,
    pub a_sk: u32,
    pub b_off: u32,
    pub b_sk: u32,
    pub b_sn: u32,
    pub c_off: u32,
    pub c_sm: u32,
    pub bias_off: u32,
}

/// Mirrors `Params` in shaders/shared/common.wgsl field for field (a test compares them).
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Pod, Zeroable)]
pub(crate) struct LossParams {
    pub rows: u32,
    pub classes: u32,
    pub ignore_index: i32,
    pub flags: u32,
    pub label_smoothing: f32,
    pub grad_scale: f32,
    pub input_off: u32,
    pub target_off: u32,
    pub grad_output_off: u32,
    pub row_loss_off: u32,
    pub grad_off: u32,
    pub loss_out_off: u32,
    pub row_base: u32,
    pub seg_len: u32,
    pub segments: u32,
    pub class_offset: u32,
    pub total_classes: u32,
    pub spatial: u32,
    pub softcap: f32,
    pub z_loss_scale: f32,
    pub lse_off: u32,
    pub argmax_off: u32,
    pub arg_partial_off: u32,
    pub accuracy_off: u32,
    pub batch_len: u32,
}

impl Default for LossParams {
    /// All zeros but `spatial` = 1 (rows × classes).
    fn default() -> Self {
        Self { spatial: 1, ..Zeroable::zeroed() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::gpu::shaders::{Format, RowReduce, compose};

    /// The host's constants that have a WGSL twin, by name.
    const SHARED: &[(&str, u32)] = &[
        ("FLAG_WEIGHT", FLAG_WEIGHT),
        ("FLAG_MEAN", FLAG_MEAN),
        ("FLAG_SUM", FLAG_SUM),
        ("FLAG_GRAD_BUFFER", FLAG_GRAD_BUFFER),
        ("FLAG_EMPTY_ZERO", FLAG_EMPTY_ZERO),
        ("FLAG_IN_PLACE", FLAG_IN_PLACE),
        ("FLAG_PROB_TARGETS", FLAG_PROB_TARGETS),
        ("FLAG_LSE", FLAG_LSE),
        ("FLAG_ARGMAX", FLAG_ARGMAX),
        ("EW_POS_WEIGHT", EW_POS_WEIGHT),
        ("EW_LOG_TARGET", EW_LOG_TARGET),
        ("EW_BATCHMEAN", EW_BATCHMEAN),
        ("EW_ROOT", EW_ROOT),
        ("LOSS_SHIFT", LOSS_SHIFT),
        ("LOSS_MSE", LOSS_MSE),
        ("LOSS_L1", LOSS_L1),
        ("LOSS_SMOOTH_L1", LOSS_SMOOTH_L1),
        ("LOSS_HUBER", LOSS_HUBER),
        ("LOSS_BCE", LOSS_BCE),
        ("LOSS_BCE_WITH_LOGITS", LOSS_BCE_WITH_LOGITS),
        ("LOSS_KL_DIV", LOSS_KL_DIV),
        ("EW_TILE", EW_TILE),
        ("NLL_WG", NLL_WG),
        ("SOLO_WG", SOLO_WG),
        ("REDUCE_BLOCK", REDUCE_BLOCK as u32),
        ("ROW_POISON", ROW_POISON),
        ("NEG_INF_W_POS", NEG_INF_W_POS),
        ("NEG_INF_W_NEG", NEG_INF_W_NEG),
        ("NEG_INF_W_ZERO", NEG_INF_W_ZERO),
        ("MM_ACCUMULATE", MM_ACCUMULATE),
        ("MM_BIAS", MM_BIAS),
        ("TK", TK),
        ("TILE", TILE),
        ("LINEAR_WG", LINEAR_WG),
    ];

    /// Every module that declares the shared constants and structs.
    fn modules() -> Vec<naga::Module> {
        [
            "cross_entropy/cross_entropy",
            "nll/nll",
            "elementwise/elementwise",
            "linear_cross_entropy/linear",
            "reduce/reduce",
        ]
        .into_iter()
        .map(|root| naga::front::wgsl::parse_str(&compose(root, Format::F32, RowReduce::Workgroup, 1)).unwrap())
        .collect()
    }

    /// Each shared constant has the host's value in every module that declares it, and
    /// some module declares each.
    #[test]
    fn shared_constants_agree_with_the_shaders() {
        let modules = modules();
        for &(name, host) in SHARED {
            let mut found = false;
            for module in &modules {
                for (_, constant) in module.constants.iter() {
                    if constant.name.as_deref() != Some(name) {
                        continue;
                    }
                    found = true;
                    let value = match module.global_expressions[constant.init] {
                        naga::Expression::Literal(naga::Literal::U32(v)) => v,
                        ref other => panic!("{name}: not a u32 literal in WGSL: {other:?}"),
                    };
                    assert_eq!(value, host, "{name}: WGSL {value}, host {host}");
                }
            }
            assert!(found, "{name} is declared by no shader");
        }
    }

    /// The layout of a struct named `name` in `module`: its members' names and offsets,
    /// and its size.
    fn layout_of(module: &naga::Module, name: &str) -> (Vec<(String, u32)>, u32) {
        let mut layouter = naga::proc::Layouter::default();
        layouter.update(module.to_ctx()).unwrap();
        let (handle, ty) = module
            .types
            .iter()
            .find(|(_, t)| t.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no struct {name}"));
        let naga::TypeInner::Struct { members, .. } = &ty.inner else { panic!("{name} is not a struct") };
        let fields = members.iter().map(|m| (m.name.clone().unwrap_or_default(), m.offset)).collect();
        (fields, layouter[handle].size)
    }

    /// `LossParams` has WGSL's `Params` layout, field for field, and `BatchState`'s
    /// partials start at `BATCH_STATE_BYTES`.
    #[test]
    fn params_mirror_the_wgsl_struct() {
        macro_rules! fields {
            ($($field:ident),*) => {
                vec![$((stringify!($field).to_string(), std::mem::offset_of!(LossParams, $field) as u32)),*]
            };
        }
        let host = fields!(
            rows,
            classes,
            ignore_index,
            flags,
            label_smoothing,
            grad_scale,
            input_off,
            target_off,
            grad_output_off,
            row_loss_off,
            grad_off,
            loss_out_off,
            row_base,
            seg_len,
            segments,
            class_offset,
            total_classes,
            spatial,
            softcap,
            z_loss_scale,
            lse_off,
            argmax_off,
            arg_partial_off,
            accuracy_off,
            batch_len
        );
        for module in &modules()[..3] {
            let (wgsl, size) = layout_of(module, "Params");
            assert_eq!(wgsl, host, "Params and LossParams");
            assert_eq!(size as usize, std::mem::size_of::<LossParams>(), "size of Params");
        }
        let module = &modules()[0];
        let (batch, _) = layout_of(module, "BatchState");
        assert_eq!(batch.last(), Some(&("partials".to_string(), BATCH_STATE_BYTES as u32)));
    }

    /// `MatmulParams` has the WGSL struct's layout, field for field.
    #[test]
    fn matmul_params_mirror_the_wgsl_struct() {
        macro_rules! fields {
            ($($field:ident),*) => {
                vec![$((stringify!($field).to_string(), std::mem::offset_of!(MatmulParams, $field) as u32)),*]
            };
        }
        let host = fields!(m, n, k, flags, a_off, a_sm, a_sk, b_off, b_sk, b_sn, c_off, c_sm, bias_off);
        let (wgsl, size) = layout_of(&modules()[3], "MatmulParams");
        assert_eq!(wgsl, host, "MatmulParams");
        assert_eq!(size as usize, std::mem::size_of::<MatmulParams>(), "size of MatmulParams");
    }
}
