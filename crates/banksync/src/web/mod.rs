//! The web app: plain HTML, CSS and ES modules compiled into the binary (no build step, no framework). One HTML
//! shell (`index.html`) is served for every page path (`PAGE_PATHS`); `app.js` routes over those real paths and
//! loads each view's module. Everything else is an asset under `/assets/{name}` (`asset`), a flat namespace so
//! the modules import each other as `./name.js`. Vendored third-party files (`vendor/`, see its README) carry their
//! version in the served name, so they may be cached for a year; our own files are revalidated on every load.
//! The page talks to the same JSON API as scripts do, with the session cookie and the CSRF header, and follows
//! `/api/events`. It complies with the Content-Security-Policy: no inline script or style, no `eval`.
//! The routes that serve these files are `crate::http::web`.

pub const INDEX_HTML: &str = include_str!("index.html");

/// The paths the single-page app answers with `INDEX_HTML` (the router in `app.js` knows the same list).
pub const PAGE_PATHS: [&str; 8] =
    ["/", "/transactions", "/spending", "/banks", "/settings", "/setup", "/login", "/oauth-return"];

/// One embedded file served under `/assets/`.
pub struct Asset {
    pub body: &'static str,
    pub content_type: &'static str,
    /// Versioned vendored files never change under their name.
    pub immutable: bool,
}

const JS: &str = "text/javascript; charset=utf-8";
const SVG: &str = "image/svg+xml";

macro_rules! assets {
    ($($name:literal => $file:literal, $type:expr, $immutable:expr;)*) => {
        /// The asset served as `/assets/{name}`, if any.
        pub fn asset(name: &str) -> Option<Asset> {
            match name {
                $($name => Some(Asset { body: include_str!($file), content_type: $type, immutable: $immutable }),)*
                _ => None,
            }
        }
        /// Every asset name, for tests.
        pub const ASSET_NAMES: &[&str] = &[$($name),*];
    };
}

assets! {
    "style.css" => "style.css", "text/css; charset=utf-8", false;
    "app.js" => "app.js", JS, false;
    "api.js" => "api.js", JS, false;
    "ui.js" => "ui.js", JS, false;
    "format.js" => "format.js", JS, false;
    "link.js" => "link.js", JS, false;
    "view-auth.js" => "view-auth.js", JS, false;
    "view-overview.js" => "view-overview.js", JS, false;
    "view-transactions.js" => "view-transactions.js", JS, false;
    "view-spending.js" => "view-spending.js", JS, false;
    "view-banks.js" => "view-banks.js", JS, false;
    "view-settings.js" => "view-settings.js", JS, false;
    "chart-4.5.1.umd.min.js" => "vendor/chart.js-4.5.1/chart.umd.min.js", JS, true;
    "icon-0.555.0-arrow-down-left.svg" => "vendor/lucide-static-0.555.0/arrow-down-left.svg", SVG, true;
    "icon-0.555.0-arrow-up-right.svg" => "vendor/lucide-static-0.555.0/arrow-up-right.svg", SVG, true;
    "icon-0.555.0-banknote.svg" => "vendor/lucide-static-0.555.0/banknote.svg", SVG, true;
    "icon-0.555.0-briefcase.svg" => "vendor/lucide-static-0.555.0/briefcase.svg", SVG, true;
    "icon-0.555.0-building-2.svg" => "vendor/lucide-static-0.555.0/building-2.svg", SVG, true;
    "icon-0.555.0-car.svg" => "vendor/lucide-static-0.555.0/car.svg", SVG, true;
    "icon-0.555.0-circle-help.svg" => "vendor/lucide-static-0.555.0/circle-help.svg", SVG, true;
    "icon-0.555.0-clapperboard.svg" => "vendor/lucide-static-0.555.0/clapperboard.svg", SVG, true;
    "icon-0.555.0-hammer.svg" => "vendor/lucide-static-0.555.0/hammer.svg", SVG, true;
    "icon-0.555.0-house.svg" => "vendor/lucide-static-0.555.0/house.svg", SVG, true;
    "icon-0.555.0-landmark.svg" => "vendor/lucide-static-0.555.0/landmark.svg", SVG, true;
    "icon-0.555.0-plane.svg" => "vendor/lucide-static-0.555.0/plane.svg", SVG, true;
    "icon-0.555.0-receipt.svg" => "vendor/lucide-static-0.555.0/receipt.svg", SVG, true;
    "icon-0.555.0-scissors.svg" => "vendor/lucide-static-0.555.0/scissors.svg", SVG, true;
    "icon-0.555.0-shopping-bag.svg" => "vendor/lucide-static-0.555.0/shopping-bag.svg", SVG, true;
    "icon-0.555.0-stethoscope.svg" => "vendor/lucide-static-0.555.0/stethoscope.svg", SVG, true;
    "icon-0.555.0-tag.svg" => "vendor/lucide-static-0.555.0/tag.svg", SVG, true;
    "icon-0.555.0-utensils.svg" => "vendor/lucide-static-0.555.0/utensils.svg", SVG, true;
}
