//! The small web page at `/`: plain HTML, CSS and JavaScript compiled into the binary (no build step).
//! It talks to the same JSON API as scripts do, with the session cookie and the CSRF header. The routes that serve
//! these files are `crate::http::web`.

pub const INDEX_HTML: &str = include_str!("index.html");
pub const APP_JS: &str = include_str!("app.js");
pub const STYLE_CSS: &str = include_str!("style.css");
