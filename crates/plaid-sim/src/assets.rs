//! Offline merchant logos and category icons. Plaid's transactions point at
//! `plaid-merchant-logos.plaid.com` and Plaid's category-icon CDN, which an offline demo cannot
//! load. With `SimConfig::asset_base_url` set, every URL the simulator emits points under that base
//! instead (see [`AssetUrls`]), and [`router`] serves those files, generated from the merchant
//! catalogue: a merchant's logo is a 64×64 PNG like Plaid's (its initials, drawn with a small built-in
//! bitmap font, in white on a circle of a colour derived from its slug; `png.rs` encodes it), so an app
//! that accepts only raster logos — banksync's logo proxy refuses SVG, which can carry script — shows
//! them; a category icon is a small SVG (its abbreviation on its own colour). The router is stateless,
//! so an app can nest it under any prefix (banksync serves it at `{public URL}/sim-assets`, which stays
//! valid across restarts while the embedded simulator's port changes).

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::world::merchants::{self, MERCHANTS, PFC_PRIMARIES};

/// How long browsers may cache an asset: the files are a pure function of their name.
pub const CACHE_CONTROL: &str = "public, max-age=86400";

/// Where logo and category-icon URLs point: Plaid's hosts (None) or `{base}/logos/{slug}.png` and
/// `{base}/categories/{PRIMARY}.svg`. Cheap to clone (the base is shared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssetUrls {
    base: Option<Arc<str>>,
}

impl AssetUrls {
    /// `base` without a trailing slash is kept as is; a trailing slash is dropped.
    pub fn new(base: Option<&str>) -> Self {
        Self { base: base.map(|b| Arc::from(b.trim_end_matches('/'))) }
    }

    pub fn base(&self) -> Option<&str> {
        self.base.as_deref()
    }

    /// A merchant's or intermediary's logo by its file stem (`starbucks_956`).
    pub fn logo(&self, slug: &str) -> String {
        match &self.base {
            Some(base) => concat(&[base, "/logos/", slug, ".png"]),
            None => merchants::logo_url(slug),
        }
    }

    /// The icon of a personal finance category primary (`FOOD_AND_DRINK`).
    pub fn category_icon(&self, primary: &str) -> String {
        match &self.base {
            Some(base) => concat(&[base, "/categories/", primary, ".svg"]),
            None => merchants::pfc_icon_url(primary),
        }
    }
}

/// Joins strings into one exactly-sized allocation (URLs are built per transaction).
fn concat(parts: &[&str]) -> String {
    let mut s = String::with_capacity(parts.iter().map(|p| p.len()).sum());
    parts.iter().for_each(|p| s.push_str(p));
    s
}

/// `GET /logos/{slug}.png` and `GET /categories/{PRIMARY}.svg`; anything else is 404.
pub fn router() -> Router {
    Router::new().route("/logos/{file}", get(logo)).route("/categories/{file}", get(category))
}

async fn logo(Path(file): Path<String>) -> Response {
    match file.strip_suffix(".png").and_then(logo_png) {
        Some(png) => (
            [
                (header::CONTENT_TYPE, "image/png"),
                (header::CACHE_CONTROL, CACHE_CONTROL),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            png,
        )
            .into_response(),
        None => not_found("unknown logo"),
    }
}

async fn category(Path(file): Path<String>) -> Response {
    match file.strip_suffix(".svg").and_then(category_svg) {
        Some(svg) => svg_response(svg),
        None => not_found("unknown category"),
    }
}

fn svg_response(svg: String) -> Response {
    (
        [
            (header::CONTENT_TYPE, "image/svg+xml"),
            (header::CACHE_CONTROL, CACHE_CONTROL),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            // Opened directly, the SVG is a document: it needs nothing but its own attributes.
            (header::CONTENT_SECURITY_POLICY, "default-src 'none'; style-src 'unsafe-inline'"),
        ],
        svg,
    )
        .into_response()
}

fn not_found(message: &'static str) -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], message).into_response()
}

/// The display name behind a logo slug, if the world uses that logo.
fn logo_name(slug: &str) -> Option<&'static str> {
    if slug == merchants::ZELLE_SLUG {
        return Some("Zelle");
    }
    MERCHANTS.iter().find_map(|m| {
        if m.slug == Some(slug) { Some(m.name) } else { m.via.as_ref().filter(|v| v.slug == slug).map(|v| v.name) }
    })
}

/// Every logo slug the world can emit (for tests and listings).
pub fn logo_slugs() -> Vec<&'static str> {
    let mut slugs: Vec<&'static str> = MERCHANTS
        .iter()
        .flat_map(|m| [m.slug, m.via.as_ref().map(|v| v.slug)])
        .flatten()
        .chain([merchants::ZELLE_SLUG])
        .collect();
    slugs.sort_unstable();
    slugs.dedup();
    slugs
}

/// Up to two initials: the first character of the first two words ("The" skipped).
fn initials(name: &str) -> String {
    name.split_whitespace()
        .filter(|w| !w.eq_ignore_ascii_case("the"))
        .filter_map(|w| w.chars().find(|c| c.is_alphanumeric()))
        .take(2)
        .flat_map(char::to_uppercase)
        .collect()
}

/// A mid-dark colour from a name (white text stays readable on it): the name's hash picks the hue.
fn colour_of(name: &str) -> [u8; 3] {
    let hue = (crate::ids::tag(name) % 360) as f64;
    hsl_rgb(hue, 0.55, 0.40)
}

fn hex(rgb: [u8; 3]) -> String {
    format!("#{:02x}{:02x}{:02x}", rgb[0], rgb[1], rgb[2])
}

fn hsl_rgb(h: f64, s: f64, l: f64) -> [u8; 3] {
    let c = (1.0 - (2.0 * l - 1.0).abs()) * s;
    let x = c * (1.0 - ((h / 60.0) % 2.0 - 1.0).abs());
    let m = l - c / 2.0;
    let (r, g, b) = match (h / 60.0) as u32 {
        0 => (c, x, 0.0),
        1 => (x, c, 0.0),
        2 => (0.0, c, x),
        3 => (0.0, x, c),
        4 => (x, 0.0, c),
        _ => (c, 0.0, x),
    };
    let byte = |v: f64| ((v + m) * 255.0).round().clamp(0.0, 255.0) as u8;
    [byte(r), byte(g), byte(b)]
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A 64×64 badge: `shape` is the background element, `text` centred on it.
fn badge(title: &str, shape: &str, text: &str, font_size: u32) -> String {
    format!(
        concat!(
            "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"64\" height=\"64\" viewBox=\"0 0 64 64\" role=\"img\">",
            "<title>{title}</title>{shape}",
            "<text x=\"32\" y=\"32\" dy=\"0.35em\" text-anchor=\"middle\" fill=\"#ffffff\" ",
            "font-family=\"Helvetica, Arial, sans-serif\" font-weight=\"700\" font-size=\"{size}\">{text}</text></svg>"
        ),
        title = xml_escape(title),
        shape = shape,
        text = xml_escape(text),
        size = font_size,
    )
}

/// Logo edge length in pixels: shown at 32 CSS px, sharp on 2× screens.
const LOGO_SIZE: usize = 64;

/// A 5×7 bitmap font for initials (merchant names are ASCII): each row's low 5 bits, leftmost pixel highest.
const FONT: [(char, [u8; 7]); 36] = [
    ('A', [0b01110, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001]),
    ('B', [0b11110, 0b10001, 0b10001, 0b11110, 0b10001, 0b10001, 0b11110]),
    ('C', [0b01110, 0b10001, 0b10000, 0b10000, 0b10000, 0b10001, 0b01110]),
    ('D', [0b11100, 0b10010, 0b10001, 0b10001, 0b10001, 0b10010, 0b11100]),
    ('E', [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b11111]),
    ('F', [0b11111, 0b10000, 0b10000, 0b11110, 0b10000, 0b10000, 0b10000]),
    ('G', [0b01110, 0b10001, 0b10000, 0b10111, 0b10001, 0b10001, 0b01111]),
    ('H', [0b10001, 0b10001, 0b10001, 0b11111, 0b10001, 0b10001, 0b10001]),
    ('I', [0b01110, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110]),
    ('J', [0b00111, 0b00010, 0b00010, 0b00010, 0b00010, 0b10010, 0b01100]),
    ('K', [0b10001, 0b10010, 0b10100, 0b11000, 0b10100, 0b10010, 0b10001]),
    ('L', [0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b10000, 0b11111]),
    ('M', [0b10001, 0b11011, 0b10101, 0b10101, 0b10001, 0b10001, 0b10001]),
    ('N', [0b10001, 0b10001, 0b11001, 0b10101, 0b10011, 0b10001, 0b10001]),
    ('O', [0b01110, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110]),
    ('P', [0b11110, 0b10001, 0b10001, 0b11110, 0b10000, 0b10000, 0b10000]),
    ('Q', [0b01110, 0b10001, 0b10001, 0b10001, 0b10101, 0b10010, 0b01101]),
    ('R', [0b11110, 0b10001, 0b10001, 0b11110, 0b10100, 0b10010, 0b10001]),
    ('S', [0b01111, 0b10000, 0b10000, 0b01110, 0b00001, 0b00001, 0b11110]),
    ('T', [0b11111, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100, 0b00100]),
    ('U', [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01110]),
    ('V', [0b10001, 0b10001, 0b10001, 0b10001, 0b10001, 0b01010, 0b00100]),
    ('W', [0b10001, 0b10001, 0b10001, 0b10101, 0b10101, 0b10101, 0b01010]),
    ('X', [0b10001, 0b10001, 0b01010, 0b00100, 0b01010, 0b10001, 0b10001]),
    ('Y', [0b10001, 0b10001, 0b10001, 0b01010, 0b00100, 0b00100, 0b00100]),
    ('Z', [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b10000, 0b11111]),
    ('0', [0b01110, 0b10001, 0b10011, 0b10101, 0b11001, 0b10001, 0b01110]),
    ('1', [0b00100, 0b01100, 0b00100, 0b00100, 0b00100, 0b00100, 0b01110]),
    ('2', [0b01110, 0b10001, 0b00001, 0b00010, 0b00100, 0b01000, 0b11111]),
    ('3', [0b11111, 0b00010, 0b00100, 0b00010, 0b00001, 0b10001, 0b01110]),
    ('4', [0b00010, 0b00110, 0b01010, 0b10010, 0b11111, 0b00010, 0b00010]),
    ('5', [0b11111, 0b10000, 0b11110, 0b00001, 0b00001, 0b10001, 0b01110]),
    ('6', [0b00110, 0b01000, 0b10000, 0b11110, 0b10001, 0b10001, 0b01110]),
    ('7', [0b11111, 0b00001, 0b00010, 0b00100, 0b01000, 0b01000, 0b01000]),
    ('8', [0b01110, 0b10001, 0b10001, 0b01110, 0b10001, 0b10001, 0b01110]),
    ('9', [0b01110, 0b10001, 0b10001, 0b01111, 0b00001, 0b00010, 0b01100]),
];

fn glyph(c: char) -> Option<&'static [u8; 7]> {
    FONT.iter().find(|(g, _)| *g == c).map(|(_, rows)| rows)
}

/// A merchant's logo as RGBA pixels: a circle of the slug's colour (edges anti-aliased by 4×4 supersampling,
/// transparent outside) with the initials in white, centred, scaled up from the bitmap font.
fn logo_pixels(slug: &str, text: &str) -> Vec<u8> {
    let [r, g, b] = colour_of(slug);
    let mut rgba = vec![0u8; LOGO_SIZE * LOGO_SIZE * 4];
    let centre = LOGO_SIZE as f64 / 2.0;
    for y in 0..LOGO_SIZE {
        for x in 0..LOGO_SIZE {
            let inside = (0..16)
                .filter(|i| {
                    let sx = x as f64 + (f64::from(i % 4) + 0.5) / 4.0 - centre;
                    let sy = y as f64 + (f64::from(i / 4) + 0.5) / 4.0 - centre;
                    sx * sx + sy * sy <= centre * centre
                })
                .count();
            let at = (y * LOGO_SIZE + x) * 4;
            rgba[at..at + 4].copy_from_slice(&[r, g, b, (inside * 255 / 16) as u8]);
        }
    }
    let glyphs: Vec<&[u8; 7]> = text.chars().filter_map(glyph).collect();
    // One initial large; two smaller, a gap of one scaled font pixel between them. Both fit inside the circle.
    let scale = if glyphs.len() > 1 { 4 } else { 5 };
    let width = glyphs.len() * 5 * scale + glyphs.len().saturating_sub(1) * scale;
    let (left, top) = ((LOGO_SIZE - width) / 2, (LOGO_SIZE - 7 * scale) / 2);
    for (n, rows) in glyphs.iter().enumerate() {
        let x0 = left + n * 6 * scale;
        for (row, bits) in rows.iter().enumerate() {
            for col in 0..5 {
                if bits & (0b10000 >> col) == 0 {
                    continue;
                }
                for dy in 0..scale {
                    for dx in 0..scale {
                        let at = ((top + row * scale + dy) * LOGO_SIZE + x0 + col * scale + dx) * 4;
                        rgba[at..at + 4].copy_from_slice(&[255, 255, 255, 255]);
                    }
                }
            }
        }
    }
    rgba
}

/// A merchant's logo: a 64×64 PNG of its initials on a circle coloured by its slug.
pub fn logo_png(slug: &str) -> Option<Vec<u8>> {
    let name = logo_name(slug)?;
    let size = LOGO_SIZE as u32;
    Some(crate::png::encode_rgba(size, size, &logo_pixels(slug, &initials(name))))
}

/// A category icon: the primary's abbreviation on a rounded square of the primary's colour.
pub fn category_svg(primary: &str) -> Option<String> {
    let primary = PFC_PRIMARIES.iter().find(|p| **p == primary)?;
    let abbreviation: String = primary.split('_').filter(|w| *w != "AND").filter_map(|w| w.chars().next()).collect();
    let text: String = abbreviation.chars().take(2).collect();
    let shape = format!("<rect width=\"64\" height=\"64\" rx=\"14\" fill=\"{}\"/>", hex(colour_of(primary)));
    Some(badge(&primary.replace('_', " "), &shape, &text, 26))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_base_or_stay_plaids() {
        let plaid = AssetUrls::new(None);
        assert_eq!(plaid.logo("starbucks_956"), "https://plaid-merchant-logos.plaid.com/starbucks_956.png");
        assert_eq!(plaid.category_icon("INCOME"), "https://plaid-category-icons.plaid.com/PFC_INCOME.png");
        let local = AssetUrls::new(Some("http://127.0.0.1:8080/sim-assets/"));
        assert_eq!(local.logo("starbucks_956"), "http://127.0.0.1:8080/sim-assets/logos/starbucks_956.png");
        assert_eq!(local.category_icon("INCOME"), "http://127.0.0.1:8080/sim-assets/categories/INCOME.svg");
    }

    #[test]
    fn every_logo_and_category_renders_and_unknown_names_do_not() {
        for slug in logo_slugs() {
            let text = initials(logo_name(slug).expect("a name"));
            assert!(!text.is_empty() && text.chars().all(|c| glyph(c).is_some()), "{slug}: {text:?} in the font");
            let png = logo_png(slug).unwrap_or_else(|| panic!("{slug}"));
            assert_eq!(png[..8], crate::png::SIGNATURE, "{slug}");
            assert!(png.len() < 32 * 1024, "{slug}: {} bytes", png.len());
            assert_eq!(Some(png), logo_png(slug), "{slug}: the same bytes every time");
        }
        assert_eq!(initials("PG&E"), "P");
        assert_eq!(initials("The Home Depot"), "HD");
        for primary in PFC_PRIMARIES {
            assert!(category_svg(primary).is_some(), "{primary}");
        }
        assert!(category_svg("FOOD_AND_DRINK").expect("icon").contains(">FD</text>"));
        assert_eq!(logo_png("nope_1"), None);
        assert_eq!(category_svg("NOT_A_CATEGORY"), None);
    }

    #[test]
    fn a_logo_is_white_initials_on_a_coloured_circle_with_transparent_corners() {
        let slug = "the_home_depot_935";
        let pixels = logo_pixels(slug, "HD");
        let at = |x: usize, y: usize| -> [u8; 4] { pixels[(y * LOGO_SIZE + x) * 4..][..4].try_into().unwrap() };
        let [r, g, b] = colour_of(slug);
        assert_eq!(at(0, 0)[3], 0, "corners are transparent");
        assert_eq!(at(LOGO_SIZE - 1, LOGO_SIZE - 1)[3], 0);
        assert_eq!(at(32, 4), [r, g, b, 255], "the circle in the merchant's colour");
        let edge = pixels.chunks_exact(4).filter(|p| p[3] > 0 && p[3] < 255).count();
        assert!(edge > 100, "the circle's edge is anti-aliased ({edge} partly covered pixels)");
        // Two initials at 4× with one scaled pixel between: 44 px wide from x = 10, 28 px high from y = 18.
        assert_eq!(at(10, 18), [255; 4], "H's top-left stroke");
        assert_eq!(at(14, 18), [r, g, b, 255], "the gap inside the H");
        assert_eq!(at(34, 18), [255; 4], "D's top stroke");
        let white = pixels.chunks_exact(4).filter(|p| *p == [255; 4]).count();
        let font_pixels: u32 = ["H", "D"]
            .iter()
            .flat_map(|c| glyph(c.chars().next().unwrap()).unwrap().iter())
            .map(|row| row.count_ones())
            .sum();
        assert_eq!(white, font_pixels as usize * 16, "every font pixel drawn as a 4×4 block, nothing else white");
        assert_eq!(logo_png(slug), Some(crate::png::encode_rgba(64, 64, &pixels)));
    }

    #[test]
    fn colours_are_stable_and_differ_between_names() {
        let a = colour_of("starbucks_956");
        assert_eq!(a, colour_of("starbucks_956"));
        assert_ne!(a, colour_of("netflix_619"));
        assert_eq!(hex(a).len(), 7);
        assert_eq!(hex(hsl_rgb(0.0, 1.0, 0.5)), "#ff0000");
        assert_eq!(hex(hsl_rgb(240.0, 1.0, 0.5)), "#0000ff");
    }
}
