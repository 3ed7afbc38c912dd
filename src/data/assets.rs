//! What innscope carries inside its binary, so it runs anywhere with no download: the demo
//! INN and its discrete twin (trained here on Fashion-MNIST), the TorchIntegral reference
//! model, a balanced 1 000-image Fashion-MNIST evaluation subset (the first 100 test images of
//! each class), and one sample picture per class. `assets/README.md` says where each came from.

use std::io::Read;

use flate2::read::GzDecoder;

use super::idx::{Dataset, parse_images, parse_labels};
use crate::model::{Model, native};

/// The demo INN (`assets/fashion-inn.inn.safetensors`): continuous in channels and space,
/// trained by `innscope train`.
pub const DEMO_MODEL: &[u8] = include_bytes!("../../assets/fashion-inn.inn.safetensors");

/// The demo INN's discrete twin (`assets/fashion-twin.inn.safetensors`): the same architecture
/// with ordinary fixed kernels, trained the same way at full width and 28 px.
pub const DEMO_TWIN: &[u8] = include_bytes!("../../assets/fashion-twin.inn.safetensors");

/// TorchIntegral's `mnist_example`, imported (`assets/torchintegral-mnist.inn.safetensors`):
/// continuous in channels only, kernels discrete.
pub const TORCHINTEGRAL_MODEL: &[u8] =
    include_bytes!("../../assets/torchintegral-mnist.inn.safetensors");

const EVAL_IMAGES: &[u8] =
    include_bytes!("../../assets/fashion-mnist-eval/t10k-images-idx3-ubyte.gz");
const EVAL_LABELS: &[u8] =
    include_bytes!("../../assets/fashion-mnist-eval/t10k-labels-idx1-ubyte.gz");

/// Sample pictures: (file name, PNG bytes), one per class.
pub const SAMPLES: [(&str, &[u8]); 10] = [
    (
        "0_T-shirt_top_t10k-19.png",
        include_bytes!("../../assets/samples/0_T-shirt_top_t10k-19.png"),
    ),
    (
        "1_Trouser_t10k-2.png",
        include_bytes!("../../assets/samples/1_Trouser_t10k-2.png"),
    ),
    (
        "2_Pullover_t10k-1.png",
        include_bytes!("../../assets/samples/2_Pullover_t10k-1.png"),
    ),
    (
        "3_Dress_t10k-13.png",
        include_bytes!("../../assets/samples/3_Dress_t10k-13.png"),
    ),
    (
        "4_Coat_t10k-6.png",
        include_bytes!("../../assets/samples/4_Coat_t10k-6.png"),
    ),
    (
        "5_Sandal_t10k-8.png",
        include_bytes!("../../assets/samples/5_Sandal_t10k-8.png"),
    ),
    (
        "6_Shirt_t10k-4.png",
        include_bytes!("../../assets/samples/6_Shirt_t10k-4.png"),
    ),
    (
        "7_Sneaker_t10k-9.png",
        include_bytes!("../../assets/samples/7_Sneaker_t10k-9.png"),
    ),
    (
        "8_Bag_t10k-18.png",
        include_bytes!("../../assets/samples/8_Bag_t10k-18.png"),
    ),
    (
        "9_Ankle_boot_t10k-0.png",
        include_bytes!("../../assets/samples/9_Ankle_boot_t10k-0.png"),
    ),
];

/// The bundled demo model.
///
/// # Panics
/// Never in a released build: the file is checked by the test suite.
#[must_use]
pub fn demo_model() -> Model {
    native::from_bytes(DEMO_MODEL, "bundled demo model").expect("the bundled demo model is valid")
}

/// The bundled discrete twin of the demo INN.
///
/// # Panics
/// Never in a released build: the file is checked by the test suite.
#[must_use]
pub fn demo_twin() -> Model {
    native::from_bytes(DEMO_TWIN, "bundled discrete twin").expect("the bundled twin is valid")
}

/// The bundled TorchIntegral reference model.
///
/// # Panics
/// Never in a released build: the file is checked by the test suite.
#[must_use]
pub fn torchintegral_model() -> Model {
    native::from_bytes(TORCHINTEGRAL_MODEL, "bundled TorchIntegral model")
        .expect("the bundled TorchIntegral model is valid")
}

fn gunzip(bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    GzDecoder::new(bytes)
        .read_to_end(&mut out)
        .map_err(|e| e.to_string())?;
    Ok(out)
}

/// The bundled evaluation subset (1 000 Fashion-MNIST test images, 100 per class).
///
/// # Errors
/// Never for the bundled bytes; kept fallible for symmetry with [`Dataset::open`].
pub fn eval_subset() -> Result<Dataset, String> {
    Ok(Dataset {
        images: parse_images(&gunzip(EVAL_IMAGES)?)?,
        labels: parse_labels(&gunzip(EVAL_LABELS)?)?,
        origin: "bundled Fashion-MNIST evaluation subset (1000 test images)".into(),
    })
}
