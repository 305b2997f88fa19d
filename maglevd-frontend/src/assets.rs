//! The page's files, embedded in the binary: plain HTML, CSS and JavaScript modules, no build
//! step and nothing fetched from elsewhere (the page works offline).

/// Which page to serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `/view/`: read-only.
    View,
    /// `/admin/`: with actions and the event log.
    Admin,
}

const INDEX: &str = include_str!("../assets/index.html");

/// The embedded files: name, MIME type, content.
const FILES: &[(&str, &str, &str)] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/app.js"),
    ),
    (
        "render.js",
        "text/javascript; charset=utf-8",
        include_str!("../assets/render.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_str!("../assets/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("../assets/favicon.svg"),
    ),
];

/// An embedded file's MIME type and content.
#[must_use]
pub fn get(name: &str) -> Option<(&'static str, &'static str)> {
    FILES
        .iter()
        .find(|(file, _, _)| *file == name)
        .map(|(_, mime, body)| (*mime, *body))
}

/// The names of the embedded files.
pub fn names() -> impl Iterator<Item = &'static str> {
    FILES.iter().map(|(name, _, _)| *name)
}

/// The page's HTML for `mode`, with the CSRF token of admin POSTs (empty for `/view/`).
#[must_use]
pub fn page(mode: Mode, csrf: &str) -> String {
    let mode = match mode {
        Mode::View => "view",
        Mode::Admin => "admin",
    };
    INDEX.replace("{{MODE}}", mode).replace("{{CSRF}}", csrf)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_names_its_mode_and_token_and_loads_only_local_files() {
        let admin = page(Mode::Admin, "abc123");
        assert!(admin.contains("data-mode=\"admin\""));
        assert!(admin.contains("content=\"abc123\""));
        let view = page(Mode::View, "");
        assert!(view.contains("data-mode=\"view\""));
        for html in [&admin, &view] {
            assert!(!html.contains("{{"));
            assert!(
                !html.contains("http://") && !html.contains("https://"),
                "no external URL"
            );
        }
        for name in names() {
            let (_, body) = get(name).expect("listed");
            // An SVG's namespace is a name, not something fetched.
            let body = body.replace("xmlns=\"http://www.w3.org/2000/svg\"", "");
            assert!(
                !body.contains("https://") && !body.contains("http://"),
                "{name} loads nothing external"
            );
        }
        assert!(get("nope.js").is_none());
    }
}
