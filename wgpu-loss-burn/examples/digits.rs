//! A burn MLP (64 → 64 → 10) trained on the UCI handwritten digits shipped with wgpu-loss
//! (`data/digits.csv.gz`, 1797 8×8 images, 80 % train / 20 % test), its output layer and
//! loss fused by `wgpu_loss_burn::linear_cross_entropy` — or, with `--loss burn`, burn's own
//! `Linear` + `CrossEntropyLoss`, for comparison. Prints the test accuracy.
//!
//! ```text
//! cargo run --release -p wgpu-loss-burn --example digits [-- --loss fused|burn]
//! ```

use std::io::Read;

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::nn::{Linear, LinearConfig, Relu};
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::wgpu::WgpuBackend;
use burn::tensor::{Device, DeviceKind, Int, Tensor, TensorData};

/// Which loss trains the output layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loss {
    /// `wgpu_loss_burn::linear_cross_entropy` on the head's parameters.
    Fused,
    /// burn's `Linear::forward` then `CrossEntropyLoss`.
    Burn,
}

#[derive(Module, Debug)]
pub struct Mlp {
    hidden: Linear,
    act: Relu,
    head: Linear,
}

impl Mlp {
    fn new(device: &Device) -> Self {
        Self {
            hidden: LinearConfig::new(64, 64).init(device),
            act: Relu::new(),
            head: LinearConfig::new(64, 10).init(device),
        }
    }

    fn features(&self, x: Tensor<2>) -> Tensor<2> {
        self.act.forward(self.hidden.forward(x))
    }

    fn loss(&self, x: Tensor<2>, y: Tensor<1, Int>, loss: Loss) -> Tensor<1> {
        let h = self.features(x);
        match loss {
            Loss::Fused => wgpu_loss_burn::linear_cross_entropy(
                h,
                self.head.weight.val(),
                self.head.bias.as_ref().map(|b| b.val()),
                y,
                &Default::default(),
            )
            .expect("fused linear + cross-entropy"),
            Loss::Burn => CrossEntropyLossConfig::new().init(&h.device()).forward(self.head.forward(h), y),
        }
    }

    fn accuracy(&self, x: Tensor<2>, y: &[i32]) -> f64 {
        let predicted = self.head.forward(self.features(x)).argmax(1);
        let predicted = predicted.into_data().convert::<i32>().try_into_vec::<i32>().expect("argmax");
        predicted.iter().zip(y).filter(|(p, t)| p == t).count() as f64 / y.len() as f64
    }
}

/// Images (pixels scaled to [0, 1]) and labels, shuffled with a fixed seed and split 80/20.
pub struct Digits {
    pub train: (Vec<f32>, Vec<i32>),
    pub test: (Vec<f32>, Vec<i32>),
}

pub fn digits() -> Digits {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../data/digits.csv.gz");
    let mut text = String::new();
    let file = std::fs::File::open(path).expect("data/digits.csv.gz");
    flate2::read::GzDecoder::new(file).read_to_string(&mut text).expect("digits.csv.gz");
    let rows: Vec<Vec<f32>> =
        text.lines().map(|l| l.split(',').map(|v| v.parse().expect("a number")).collect()).collect();
    // A fixed shuffle (an LCG), so both losses see the same split and order.
    let mut order: Vec<usize> = (0..rows.len()).collect();
    let mut s = 0x5eedu64;
    for i in (1..order.len()).rev() {
        s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        order.swap(i, (s >> 33) as usize % (i + 1));
    }
    let take = |ids: &[usize]| {
        let x = ids.iter().flat_map(|&i| rows[i][..64].iter().map(|p| p / 16.0)).collect();
        let y = ids.iter().map(|&i| rows[i][64] as i32).collect();
        (x, y)
    };
    let cut = rows.len() * 4 / 5;
    Digits { train: take(&order[..cut]), test: take(&order[cut..]) }
}

/// Trains a fresh MLP with `loss` (Adam, batches of 128, `epochs` epochs, seed 7) and
/// returns its test accuracy.
pub fn train(device: &Device, data: &Digits, loss: Loss, epochs: usize) -> f64 {
    let device = device.clone().autodiff();
    device.seed(7);
    let mut model = Mlp::new(&device);
    let mut optim = AdamConfig::new().init();
    let (x, y) = &data.train;
    let n = y.len();
    for _ in 0..epochs {
        for start in (0..n).step_by(128) {
            let end = (start + 128).min(n);
            let xb =
                Tensor::<2>::from_data(TensorData::new(x[start * 64..end * 64].to_vec(), [end - start, 64]), &device);
            let yb = Tensor::<1, Int>::from_data(TensorData::new(y[start..end].to_vec(), [end - start]), &device);
            let grads = model.loss(xb, yb, loss).backward();
            let grads = GradientsParams::from_grads(grads, &model);
            model = optim.step(1e-2, model, grads);
        }
    }
    let (x, y) = &data.test;
    model.accuracy(Tensor::from_data(TensorData::new(x.clone(), [y.len(), 64]), &device), y)
}

#[allow(dead_code)] // the burn tests include this file for `train`, not for `main`
fn main() {
    let loss = match std::env::args().skip_while(|a| a != "--loss").nth(1).as_deref() {
        None | Some("fused") => Loss::Fused,
        Some("burn") => Loss::Burn,
        Some(other) => panic!("--loss takes fused or burn, not {other}"),
    };
    let device = wgpu_loss_burn::wgpu_device(DeviceKind::DefaultDevice, WgpuBackend::Auto).expect("burn's wgpu device");
    let accuracy = train(&device, &digits(), loss, 20);
    println!("loss {loss:?}: test accuracy {:.2} %", 100.0 * accuracy);
}
