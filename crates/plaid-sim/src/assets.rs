//! Offline merchant logos and category icons. Plaid's transactions point at
//! `plaid-merchant-logos.plaid.com` and Plaid's category-icon CDN, which an offline demo cannot
//! load. With `SimConfig::asset_base_url` set, every URL the simulator emits points under that base
//! instead (see [`AssetUrls`]), and [`router`] serves those files: small SVGs generated from the
//! merchant catalogue (the merchant's initials on a colour derived from its slug; a category's
//! abbreviation on its own colour). The router is stateless, so an app can nest it under any
//! prefix (banksync serves it at `{public URL}/sim-assets`, which stays valid across restarts while
//! the embedded simulator's port changes).

use std::sync::Arc;

use axum::Router;
use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::world::merchants::{self, MERCHANTS, PFC_PRIMARIES};

/// How long browsers may cache an asset: the files are a pure function of their name.
pub const CACHE_CONTROL: &str = "public, max-age=86400";

/// Where logo and category-icon URLs point: Plaid's hosts (None) or `{base}/logos/{slug}.svg` and
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
            Some(base) => concat(&[base, "/logos/", slug, ".svg"]),
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

/// `GET /logos/{slug}.svg` and `GET /categories/{PRIMARY}.svg`; anything else is 404.
pub fn router() -> Router {
    Router::new().route("/logos/{file}", get(logo)).route("/categories/{file}", get(category))
}

async fn logo(Path(file): Path<String>) -> Response {
    match file.strip_suffix(".svg").and_then(logo_svg) {
        Some(svg) => svg_response(svg),
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
fn colour_of(name: &str) -> String {
    let hue = (crate::ids::tag(name) % 360) as f64;
    hsl_hex(hue, 0.55, 0.40)
}

fn hsl_hex(h: f64, s: f64, l: f64) -> String {
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
    format!("#{:02x}{:02x}{:02x}", byte(r), byte(g), byte(b))
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

/// A merchant's logo: its initials on a circle coloured by its slug.
pub fn logo_svg(slug: &str) -> Option<String> {
    let name = logo_name(slug)?;
    let text = initials(name);
    let shape = format!("<circle cx=\"32\" cy=\"32\" r=\"32\" fill=\"{}\"/>", colour_of(slug));
    Some(badge(name, &shape, &text, if text.chars().count() > 1 { 26 } else { 32 }))
}

/// A category icon: the primary's abbreviation on a rounded square of the primary's colour.
pub fn category_svg(primary: &str) -> Option<String> {
    let primary = PFC_PRIMARIES.iter().find(|p| **p == primary)?;
    let abbreviation: String = primary.split('_').filter(|w| *w != "AND").filter_map(|w| w.chars().next()).collect();
    let text: String = abbreviation.chars().take(2).collect();
    let shape = format!("<rect width=\"64\" height=\"64\" rx=\"14\" fill=\"{}\"/>", colour_of(primary));
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
        assert_eq!(local.logo("starbucks_956"), "http://127.0.0.1:8080/sim-assets/logos/starbucks_956.svg");
        assert_eq!(local.category_icon("INCOME"), "http://127.0.0.1:8080/sim-assets/categories/INCOME.svg");
    }

    #[test]
    fn every_logo_and_category_renders_and_unknown_names_do_not() {
        for slug in logo_slugs() {
            let svg = logo_svg(slug).unwrap_or_else(|| panic!("{slug}"));
            assert!(svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\"") && svg.ends_with("</svg>"));
        }
        assert!(logo_svg("pg_e_701").expect("PG&E").contains("<title>PG&amp;E</title>"));
        assert!(logo_svg("the_home_depot_935").expect("logo").contains(">HD</text>"));
        for primary in PFC_PRIMARIES {
            assert!(category_svg(primary).is_some(), "{primary}");
        }
        assert!(category_svg("FOOD_AND_DRINK").expect("icon").contains(">FD</text>"));
        assert_eq!(logo_svg("nope_1"), None);
        assert_eq!(category_svg("NOT_A_CATEGORY"), None);
    }

    #[test]
    fn colours_are_stable_hex_and_differ_between_names() {
        let a = colour_of("starbucks_956");
        assert_eq!(a, colour_of("starbucks_956"));
        assert_eq!(a.len(), 7);
        assert!(a.starts_with('#') && a[1..].chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, colour_of("netflix_619"));
        assert_eq!(hsl_hex(0.0, 1.0, 0.5), "#ff0000");
        assert_eq!(hsl_hex(240.0, 1.0, 0.5), "#0000ff");
    }
}
