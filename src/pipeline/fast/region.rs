//! Decode only a rectangle of a JPEG: libjpeg-turbo 3's cropping region
//! (`tj3SetCroppingRegion`), which skips the IDCT of the rows above the
//! rectangle and stops reading the file after its last row, as libvips's
//! sequential decode does. The `turbojpeg` crate does not expose it, so this
//! is the one place in the crate that calls C directly.
//!
//! Measured on the 12 MP benchmark photo (4000x3000, one core): an 800x600
//! crop at (100, 100) decodes in ~7 ms this way against ~45 ms for the whole
//! image (see `bench/results/speed.md`).
#![allow(unsafe_code)]

use std::ffi::CStr;

use turbojpeg_sys as raw;

/// Decoded RGB (or gray) pixels of a region, left edge moved down to the
/// iMCU boundary libjpeg-turbo needs: `left` is where the region starts,
/// `x - left` columns before the requested x.
pub(super) struct Region {
    pub left: u32,
    pub width: u32,
    pub height: u32,
    pub gray: bool,
    pub pixels: Vec<u8>,
}

/// One libjpeg-turbo decompressor, destroyed on drop.
struct Handle(raw::tjhandle);

impl Handle {
    fn new() -> Result<Handle, String> {
        // SAFETY: tj3Init has no preconditions; a null return is checked.
        let ptr = unsafe { raw::tj3Init(raw::TJINIT_TJINIT_DECOMPRESS as libc::c_int) };
        if ptr.is_null() {
            return Err("libjpeg-turbo: cannot make a decompressor".into());
        }
        Ok(Handle(ptr))
    }

    fn error(&self) -> String {
        // SAFETY: the handle is valid; tj3GetErrorStr returns a NUL-terminated
        // string owned by the handle, copied before the handle is used again.
        let message = unsafe { CStr::from_ptr(raw::tj3GetErrorStr(self.0)) };
        message.to_string_lossy().into_owned()
    }

    fn check(&self, status: libc::c_int) -> Result<(), String> {
        if status == 0 {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    fn set(&self, param: raw::TJPARAM, value: libc::c_int) -> Result<(), String> {
        // SAFETY: valid handle; tj3Set validates `param` and `value`.
        self.check(unsafe { raw::tj3Set(self.0, param as libc::c_int, value) })
    }

    fn get(&self, param: raw::TJPARAM) -> libc::c_int {
        // SAFETY: valid handle; unknown parameters return -1.
        unsafe { raw::tj3Get(self.0, param as libc::c_int) }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        // SAFETY: the handle came from tj3Init and is destroyed once.
        unsafe { raw::tj3Destroy(self.0) }
    }
}

/// Decode the rectangle `(x, y, w, h)` of `jpeg` (which the caller has
/// probed and checked against the limits: a baseline or progressive YCbCr,
/// RGB or gray JPEG) at full scale, with at most `scan_limit` scans.
pub(super) fn decode(
    jpeg: &[u8],
    (x, y, w, h): (u32, u32, u32, u32),
    scan_limit: u32,
) -> Result<Region, String> {
    let handle = Handle::new()?;
    handle.set(raw::TJPARAM_TJPARAM_SCANLIMIT, scan_limit as libc::c_int)?;
    // SAFETY: the pointer and length describe `jpeg`, alive for the call.
    handle.check(unsafe {
        raw::tj3DecompressHeader(handle.0, jpeg.as_ptr(), jpeg.len() as raw::size_t)
    })?;
    let (width, height) = (
        handle.get(raw::TJPARAM_TJPARAM_JPEGWIDTH),
        handle.get(raw::TJPARAM_TJPARAM_JPEGHEIGHT),
    );
    let (x, y, w, h) = (x as i64, y as i64, w as i64, h as i64);
    if width <= 0
        || height <= 0
        || w <= 0
        || h <= 0
        || x + w > i64::from(width)
        || y + h > i64::from(height)
    {
        return Err(format!(
            "region {w}x{h}+{x}+{y} outside the {width}x{height} image"
        ));
    }
    let gray = handle.get(raw::TJPARAM_TJPARAM_COLORSPACE) == raw::TJCS_TJCS_GRAY as libc::c_int;
    let mcu = match handle.get(raw::TJPARAM_TJPARAM_SUBSAMP) {
        s if s < 0 => return Err("unknown chroma subsampling".into()),
        s => i64::from(mcu_width(s)),
    };
    let left = x - x % mcu;
    let region = raw::tjregion {
        x: left as libc::c_int,
        y: y as libc::c_int,
        w: (x + w - left) as libc::c_int,
        h: h as libc::c_int,
    };
    // SAFETY: valid handle; the region is checked by libjpeg-turbo against
    // the header it has read.
    handle.check(unsafe { raw::tj3SetCroppingRegion(handle.0, region) })?;
    let channels = if gray { 1 } else { 3 };
    let pitch = region.w as usize * channels;
    let mut pixels = vec![0u8; pitch * region.h as usize];
    let format = if gray {
        raw::TJPF_TJPF_GRAY
    } else {
        raw::TJPF_TJPF_RGB
    };
    // SAFETY: `pixels` holds exactly `region.h` rows of `pitch` bytes, the
    // size libjpeg-turbo writes for this cropping region and pixel format.
    handle.check(unsafe {
        raw::tj3Decompress8(
            handle.0,
            jpeg.as_ptr(),
            jpeg.len() as raw::size_t,
            pixels.as_mut_ptr(),
            pitch as libc::c_int,
            format,
        )
    })?;
    Ok(Region {
        left: left as u32,
        width: region.w as u32,
        height: region.h as u32,
        gray,
        pixels,
    })
}

/// `tjMCUWidth`: the iMCU width in pixels of each `TJSAMP`.
fn mcu_width(subsamp: libc::c_int) -> u32 {
    match subsamp as raw::TJSAMP {
        raw::TJSAMP_TJSAMP_444 | raw::TJSAMP_TJSAMP_GRAY | raw::TJSAMP_TJSAMP_440 => 8,
        raw::TJSAMP_TJSAMP_411 | raw::TJSAMP_TJSAMP_441 => 32,
        _ => 16,
    }
}
