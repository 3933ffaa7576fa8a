//! burn's wgpu device and this crate's [`Gpu`] on the same `wgpu::Device` and queue.
//!
//! burn 0.22 gives no access to its device and queue once its runtime is running, so they
//! are taken when the runtime starts ([`wgpu_device`], or [`register`] with the setup of
//! the caller's own `init_with_setup`) and kept here, keyed by burn's device.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use burn::backend::DispatchDevice;
use burn::tensor::wgpu::{WgpuBackend, WgpuSetup, wgpu};
use burn::tensor::{Device, DeviceKind};
use burn_cubecl::CubeDevice;
use wgpu_loss::{Error, Gpu, Result, Workspace};

/// This crate's side of one of burn's devices: the kernels, and the scratch of one
/// recording at a time (every recording is submitted before the next one starts): the
/// workspace and the buffers outputs are routed through (`record.rs`).
pub(crate) struct Shared {
    pub gpu: Arc<Gpu>,
    pub scratch: Mutex<(Workspace, Vec<wgpu::Buffer>)>,
}

fn registry() -> MutexGuard<'static, HashMap<CubeDevice, Arc<Shared>>> {
    static DEVICES: OnceLock<Mutex<HashMap<CubeDevice, Arc<Shared>>>> = OnceLock::new();
    DEVICES.get_or_init(Default::default).lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts burn's wgpu runtime on an adapter of `kind` through `api` and registers it with
/// this crate: the device the losses of this crate run on. Call it before any tensor
/// touches that device (burn cannot hand out its device and queue later); use
/// `.autodiff()` on the result for training.
///
/// ```
/// use burn::tensor::{DeviceKind, wgpu::WgpuBackend};
/// let device = wgpu_loss_burn::wgpu_device(DeviceKind::DefaultDevice, WgpuBackend::Auto).unwrap();
/// let x = burn::tensor::Tensor::<1>::from_floats([1.0, 2.0], &device);
/// assert_eq!(x.dims(), [2]);
/// ```
pub fn wgpu_device(kind: DeviceKind, api: WgpuBackend) -> Result<Device> {
    let (device, setup) = Device::wgpu_options()
        .device_kind(kind)
        .graphics_api(api)
        .init_with_setup()
        .map_err(|e| Error::RequestDevice(format!("burn's wgpu runtime: {e}")))?;
    register(&device, &setup)?;
    Ok(device)
}

/// Registers burn's `device`, started by the caller with `init_with_setup`, with this crate,
/// on the device and queue of its `setup`: the losses then run on it.
///
/// ```
/// let (device, setup) = burn::tensor::Device::wgpu_options().init_with_setup().unwrap();
/// wgpu_loss_burn::register(&device, &setup).unwrap();
/// ```
pub fn register(device: &Device, setup: &WgpuSetup) -> Result<()> {
    let cube = cube_device(device, "device")?;
    let gpu = Arc::new(Gpu::from_device(setup.device.clone(), setup.queue.clone()));
    let scratch = Mutex::new((Workspace::new(&gpu), Vec::new()));
    registry().insert(cube, Arc::new(Shared { gpu, scratch }));
    Ok(())
}

/// This crate's [`Gpu`] on a registered burn device's `wgpu::Device` and queue: its adapter,
/// and every other op of wgpu-loss (slice and encode APIs) on burn's device.
///
/// ```
/// use burn::tensor::{DeviceKind, wgpu::WgpuBackend};
/// let device = wgpu_loss_burn::wgpu_device(DeviceKind::DefaultDevice, WgpuBackend::Auto).unwrap();
/// let gpu = wgpu_loss_burn::gpu(&device).unwrap();
/// println!("burn runs on {:?}", gpu.adapter_info().backend);
/// assert_eq!(gpu.softmax(&[0.0, 0.0], 1, 2).unwrap(), vec![0.5, 0.5]);
/// ```
pub fn gpu(device: &Device) -> Result<Arc<Gpu>> {
    Ok(shared_for(device, "device")?.gpu.clone())
}

/// Bytes of the buffers this crate holds on a registered device beyond burn's tensors: the
/// workspace (parameters, batch state, the fused op's logits chunk) and the buffers outputs
/// were routed through.
///
/// ```
/// use burn::tensor::{DeviceKind, wgpu::WgpuBackend};
/// let device = wgpu_loss_burn::wgpu_device(DeviceKind::DefaultDevice, WgpuBackend::Auto).unwrap();
/// assert!(wgpu_loss_burn::allocated_bytes(&device).unwrap() < 4096);
/// ```
pub fn allocated_bytes(device: &Device) -> Result<u64> {
    let shared = shared_for(device, "device")?;
    let scratch = shared.scratch.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    Ok(scratch.0.allocated_bytes() + scratch.1.iter().map(wgpu::Buffer::size).sum::<u64>())
}

/// burn's cubecl device under `device` (autodiff or not).
fn cube_device(device: &Device, argument: &'static str) -> Result<CubeDevice> {
    match device.clone().without_autodiff().as_dispatch() {
        DispatchDevice::Cube(cube) => Ok(cube.clone()),
        _ => Err(Error::InvalidArgument { argument, message: "is not on one of burn's cubecl (wgpu) devices".into() }),
    }
}

/// The registered side of `device`, or an `Err` naming `argument` and saying how to register.
pub(crate) fn shared_for(device: &Device, argument: &'static str) -> Result<Arc<Shared>> {
    let cube = cube_device(device, argument)?;
    shared(&cube).ok_or_else(|| Error::InvalidArgument {
        argument,
        message: format!(
            "is on burn device {cube:?}, which was not registered with wgpu_loss_burn \
             (create it with wgpu_loss_burn::wgpu_device or pass its setup to wgpu_loss_burn::register)"
        ),
    })
}

/// The registered side of a cubecl device (inside the backend, where the wrapper has
/// already checked it is there).
pub(crate) fn shared(cube: &CubeDevice) -> Option<Arc<Shared>> {
    registry().get(cube).cloned()
}
