//! Colour management: sources tagged with an ICC profile (or, in HEIF and
//! AVIF, nclx code points) are converted to sRGB with `moxcms`, a pure-Rust
//! CMS, at the precision they were decoded at (16-bit sources convert in 16
//! bits), before anything else touches the pixels. Outputs are untagged
//! sRGB, as sharp and libvips's `thumbnail` write them, unless an output
//! asks `icc=keep`: then it is made from the unconverted pixels and carries
//! the source's profile. See docs/colour.md.

use image::{DynamicImage, ImageBuffer, Pixel, Rgb, RgbImage};
use moxcms::{
    CicpColorPrimaries, CicpProfile, ColorProfile, DataColorSpace, Layout, MatrixCoefficients,
    RenderingIntent, TransferCharacteristics, TransformOptions,
};

/// What a source says about its colours.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Colour {
    /// Nothing: taken as sRGB.
    #[default]
    Untagged,
    /// An embedded ICC profile.
    Icc(Vec<u8>),
    /// HEIF/AVIF nclx colour primaries and transfer characteristics.
    Cicp { primaries: u8, transfer: u8 },
    /// An ICC profile the decoder has already converted through (CMYK):
    /// the pixels are sRGB, the profile cannot be kept.
    Converted(Vec<u8>),
}

/// A decoded source: sRGB pixels at 8 bits, upright.
pub struct Decoded {
    pub image: DynamicImage,
    /// The unconverted pixels, when asked for and different.
    pub native: Option<DynamicImage>,
    pub colour: Colour,
}

/// Convert to sRGB (at the decoded precision), then to 8 bits, then
/// orient; keep the unconverted pixels too if `keep_native` and the
/// source has a profile an output could carry.
pub(super) fn finish(
    image: DynamicImage,
    colour: Colour,
    orientation: image::metadata::Orientation,
    keep_native: bool,
    to_8_bit: fn(DynamicImage) -> DynamicImage,
) -> Decoded {
    let native = (keep_native && matches!(colour, Colour::Icc(_))).then(|| image.clone());
    let _span = tracing::info_span!("colour").entered();
    let image = to_srgb(image, &colour);
    drop(_span);
    let upright = |image: DynamicImage| {
        let mut image = to_8_bit(image);
        image.apply_orientation(orientation);
        image
    };
    Decoded {
        image: upright(image),
        native: native.map(upright),
        colour,
    }
}

impl Colour {
    /// The embedded ICC profile's bytes, if any.
    pub fn icc(&self) -> Option<&[u8]> {
        match self {
            Colour::Icc(bytes) | Colour::Converted(bytes) => Some(bytes),
            _ => None,
        }
    }

    /// The source profile, `None` when it is sRGB or cannot be used (a
    /// damaged profile is ignored, as libvips does, rather than failing).
    fn profile(&self) -> Option<ColorProfile> {
        match self {
            Colour::Untagged | Colour::Converted(_) => None,
            Colour::Icc(bytes) => match ColorProfile::new_from_slice(bytes) {
                Ok(profile) => Some(profile),
                Err(error) => {
                    tracing::warn!(message = "ignoring an unreadable ICC profile", ?error);
                    None
                }
            },
            &Colour::Cicp {
                primaries,
                transfer,
            } => {
                let primaries = CicpColorPrimaries::try_from(primaries).ok()?;
                let transfer = TransferCharacteristics::try_from(transfer).ok()?;
                let srgb_like = |p| {
                    matches!(
                        p,
                        CicpColorPrimaries::Bt709 | CicpColorPrimaries::Unspecified
                    )
                };
                if srgb_like(primaries)
                    && matches!(
                        transfer,
                        TransferCharacteristics::Srgb | TransferCharacteristics::Unspecified
                    )
                {
                    return None;
                }
                let mut profile = ColorProfile::new_srgb();
                profile
                    .update_rgb_colorimetry_from_cicp(CicpProfile {
                        color_primaries: primaries,
                        transfer_characteristics: transfer,
                        matrix_coefficients: MatrixCoefficients::Identity,
                        full_range: true,
                    })
                    .then_some(profile)
            }
        }
    }

    /// The profile's description, as a manifest may show it.
    pub fn name(&self) -> Option<String> {
        let profile = ColorProfile::new_from_slice(self.icc()?).ok()?;
        match profile.description? {
            moxcms::ProfileText::PlainString(s) => Some(s),
            moxcms::ProfileText::Localizable(strings) => {
                strings.into_iter().next().map(|s| s.value)
            }
            moxcms::ProfileText::Description(d) => Some(d.ascii_string),
        }
    }
}

/// libvips's default: relative colorimetric (without black point compensation).
const INTENT: RenderingIntent = RenderingIntent::RelativeColorimetric;

fn options() -> TransformOptions {
    TransformOptions {
        rendering_intent: INTENT,
        // Floating point and tetrahedral interpolation, as LittleCMS does:
        // the defaults (fixed point, trilinear) were 3.2 ΔE2000 off
        // LittleCMS at worst through a CMYK LUT profile.
        prefer_fixed_point: false,
        interpolation_method: moxcms::InterpolationMethod::Tetrahedral,
        barycentric_weight_scale: moxcms::BarycentricWeightScale::High,
        ..TransformOptions::default()
    }
}

/// Convert `image` from the colours `colour` describes to sRGB. Gray
/// sources with a gray profile become RGB; anything whose profile does not
/// match its channels is left as it is.
pub fn to_srgb(image: DynamicImage, colour: &Colour) -> DynamicImage {
    let Some(profile) = colour.profile() else {
        return image;
    };
    let srgb = ColorProfile::new_srgb();
    match convert(&image, &profile, &srgb) {
        Ok(Some(converted)) => converted,
        Ok(None) => image,
        Err(error) => {
            tracing::warn!(message = "colour conversion failed; leaving the pixels as they are", %error);
            image
        }
    }
}

fn convert(
    image: &DynamicImage,
    from: &ColorProfile,
    to: &ColorProfile,
) -> Result<Option<DynamicImage>, moxcms::CmsError> {
    let (w, h) = (image.width(), image.height());
    let gray = from.color_space == DataColorSpace::Gray;
    if from.color_space != DataColorSpace::Rgb && !gray {
        return Ok(None);
    }
    Ok(Some(match image {
        DynamicImage::ImageRgb8(rgb) if !gray => {
            let t = from.create_transform_8bit(Layout::Rgb, to, Layout::Rgb, options())?;
            let mut out = vec![0u8; rgb.len()];
            t.transform(rgb.as_raw(), &mut out)?;
            DynamicImage::ImageRgb8(buffer(w, h, out))
        }
        DynamicImage::ImageRgba8(rgba) if !gray => {
            let t = from.create_transform_8bit(Layout::Rgba, to, Layout::Rgba, options())?;
            let mut out = vec![0u8; rgba.len()];
            t.transform(rgba.as_raw(), &mut out)?;
            DynamicImage::ImageRgba8(buffer(w, h, out))
        }
        DynamicImage::ImageRgb16(rgb) if !gray => {
            let t = from.create_transform_16bit(Layout::Rgb, to, Layout::Rgb, options())?;
            let mut out = vec![0u16; rgb.len()];
            t.transform(rgb.as_raw(), &mut out)?;
            DynamicImage::ImageRgb16(buffer(w, h, out))
        }
        DynamicImage::ImageRgba16(rgba) if !gray => {
            let t = from.create_transform_16bit(Layout::Rgba, to, Layout::Rgba, options())?;
            let mut out = vec![0u16; rgba.len()];
            t.transform(rgba.as_raw(), &mut out)?;
            DynamicImage::ImageRgba16(buffer(w, h, out))
        }
        DynamicImage::ImageRgb32F(_) | DynamicImage::ImageRgba32F(_) if !gray => {
            let deep = if image.color().has_alpha() {
                DynamicImage::ImageRgba16(image.to_rgba16())
            } else {
                DynamicImage::ImageRgb16(image.to_rgb16())
            };
            return convert(&deep, from, to);
        }
        DynamicImage::ImageLuma8(luma) if gray => {
            let t = from.create_transform_8bit(Layout::Gray, to, Layout::Rgb, options())?;
            let mut out = vec![0u8; luma.len() * 3];
            t.transform(luma.as_raw(), &mut out)?;
            DynamicImage::ImageRgb8(buffer(w, h, out))
        }
        DynamicImage::ImageLuma16(luma) if gray => {
            let t = from.create_transform_16bit(Layout::Gray, to, Layout::Rgb, options())?;
            let mut out = vec![0u16; luma.len() * 3];
            t.transform(luma.as_raw(), &mut out)?;
            DynamicImage::ImageRgb16(buffer(w, h, out))
        }
        DynamicImage::ImageLumaA8(la) if gray => {
            let t = from.create_transform_8bit(Layout::GrayAlpha, to, Layout::Rgba, options())?;
            let mut out = vec![0u8; la.len() * 2];
            t.transform(la.as_raw(), &mut out)?;
            DynamicImage::ImageRgba8(buffer(w, h, out))
        }
        DynamicImage::ImageLumaA16(la) if gray => {
            let t = from.create_transform_16bit(Layout::GrayAlpha, to, Layout::Rgba, options())?;
            let mut out = vec![0u16; la.len() * 2];
            t.transform(la.as_raw(), &mut out)?;
            DynamicImage::ImageRgba16(buffer(w, h, out))
        }
        _ => return Ok(None),
    }))
}

fn buffer<P: Pixel>(w: u32, h: u32, samples: Vec<P::Subpixel>) -> ImageBuffer<P, Vec<P::Subpixel>> {
    // The transforms write exactly as many samples as the layouts say.
    ImageBuffer::from_raw(w, h, samples).unwrap_or_else(|| ImageBuffer::new(w, h))
}

/// Four-channel CMYK samples as libjpeg gives them (`inverted`: Adobe's
/// JPEGs store 255 for no ink) to sRGB: through `icc` when the file
/// carries a CMYK profile, else by the naive formula every viewer uses.
pub fn cmyk_to_srgb(
    w: u32,
    h: u32,
    mut cmyk: Vec<u8>,
    inverted: bool,
    icc: Option<&[u8]>,
) -> RgbImage {
    if inverted {
        cmyk.iter_mut().for_each(|v| *v = 255 - *v);
    }
    let profile = icc
        .and_then(|bytes| ColorProfile::new_from_slice(bytes).ok())
        .filter(|p| p.color_space == DataColorSpace::Cmyk);
    if let Some(profile) = profile {
        let srgb = ColorProfile::new_srgb();
        let mut out = vec![0u8; cmyk.len() / 4 * 3];
        let done = profile
            .create_transform_8bit(Layout::Rgba, &srgb, Layout::Rgb, options())
            .and_then(|t| t.transform(&cmyk, &mut out));
        match done {
            Ok(()) => return buffer(w, h, out),
            Err(error) => tracing::warn!(message = "CMYK profile conversion failed", %error),
        }
    }
    let mut out = RgbImage::new(w, h);
    for (o, p) in out.pixels_mut().zip(cmyk.chunks_exact(4)) {
        let k = 255 - u16::from(p[3]);
        let ink = |c: u8| ((255 - u16::from(c)) * k / 255) as u8;
        *o = Rgb([ink(p[0]), ink(p[1]), ink(p[2])]);
    }
    out
}
