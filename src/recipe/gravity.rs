//! Where things go: the nine fixed positions (watermarks, crops, cover
//! resizes) and the gravities that look at the pixels instead.

/// One of nine positions: the corners, the middles of the edges, the centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Anchor {
    TopLeft,
    Top,
    TopRight,
    Left,
    #[default]
    Center,
    Right,
    BottomLeft,
    Bottom,
    BottomRight,
}

impl Anchor {
    pub const ALL: [Anchor; 9] = [
        Anchor::TopLeft,
        Anchor::Top,
        Anchor::TopRight,
        Anchor::Left,
        Anchor::Center,
        Anchor::Right,
        Anchor::BottomLeft,
        Anchor::Bottom,
        Anchor::BottomRight,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Anchor::TopLeft => "top-left",
            Anchor::Top => "top",
            Anchor::TopRight => "top-right",
            Anchor::Left => "left",
            Anchor::Center => "center",
            Anchor::Right => "right",
            Anchor::BottomLeft => "bottom-left",
            Anchor::Bottom => "bottom",
            Anchor::BottomRight => "bottom-right",
        }
    }

    /// Horizontal and vertical placement: 0 = start, 1 = middle, 2 = end.
    pub fn grid(self) -> (u32, u32) {
        let i = Anchor::ALL.iter().position(|a| *a == self).unwrap_or(4) as u32;
        (i % 3, i / 3)
    }

    /// Offset of a `inner`-long span placed in an `outer`-long one, `margin` from the edges.
    pub fn offset(place: u32, outer: u32, inner: u32, margin: u32) -> i64 {
        let (outer, inner, margin) = (i64::from(outer), i64::from(inner), i64::from(margin));
        match place {
            0 => margin,
            1 => (outer - inner) / 2,
            _ => outer - inner - margin,
        }
    }
}

/// Which part of the image a cover resize or a sized crop keeps: a fixed
/// position, or one the pixels choose (`pipeline::smart`, `pipeline::face`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gravity {
    Anchor(Anchor),
    /// The window with the most edges, skin tones and saturated colour.
    Smart,
    /// The faces SeetaFace finds; [`Gravity::Smart`] where it finds none.
    Face,
}

impl Default for Gravity {
    fn default() -> Self {
        Gravity::Anchor(Anchor::Center)
    }
}

impl From<Anchor> for Gravity {
    fn from(anchor: Anchor) -> Self {
        Gravity::Anchor(anchor)
    }
}

impl Gravity {
    pub fn name(self) -> &'static str {
        match self {
            Gravity::Anchor(anchor) => anchor.name(),
            Gravity::Smart => "smart",
            Gravity::Face => "face",
        }
    }

    /// Whether placing the window means looking at the pixels.
    pub fn looks(self) -> bool {
        !matches!(self, Gravity::Anchor(_))
    }
}
