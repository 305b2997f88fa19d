//! Turns `.api.json` comment blocks (`\brief`, `@param`) into documentation text.

use std::collections::BTreeMap;

/// A parsed comment block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DocComment {
    /// The description paragraphs (from `\brief` and the following free text).
    pub paragraphs: Vec<String>,
    /// `@param` texts by field name (`-` in names normalised to `_`).
    pub params: BTreeMap<String, String>,
}

/// Escapes characters that rustdoc's Markdown would interpret.
pub fn escape_markdown(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if matches!(
            c,
            '\\' | '`' | '*' | '_' | '[' | ']' | '<' | '>' | '#' | '|'
        ) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn clean_line(l: &str) -> &str {
    let l = l.trim();
    let l = l
        .strip_prefix("/**")
        .or_else(|| l.strip_prefix("/*"))
        .unwrap_or(l);
    let l = l.strip_suffix("*/").unwrap_or(l);
    let l = l.trim();
    let l = l.strip_prefix('*').unwrap_or(l);
    l.trim()
}

/// Parses a comment block.
pub fn parse(comment: &str) -> DocComment {
    let mut doc = DocComment::default();
    let mut para = String::new();
    let mut param: Option<(String, String)> = None;
    let flush_para = |para: &mut String, doc: &mut DocComment| {
        if !para.trim().is_empty() {
            doc.paragraphs.push(para.trim().to_owned());
        }
        para.clear();
    };
    let flush_param = |param: &mut Option<(String, String)>, doc: &mut DocComment| {
        if let Some((n, t)) = param.take() {
            let t = t.trim().to_owned();
            if !t.is_empty() {
                doc.params.entry(n).or_insert(t);
            }
        }
    };
    for raw in comment.lines() {
        let l = clean_line(raw);
        if let Some(rest) = l.strip_prefix("@param") {
            flush_para(&mut para, &mut doc);
            flush_param(&mut param, &mut doc);
            let rest = rest.trim();
            let (name, text) = rest.split_once(char::is_whitespace).unwrap_or((rest, ""));
            let text = text.trim_start();
            let text = text
                .strip_prefix("- ")
                .or_else(|| text.strip_prefix(": "))
                .unwrap_or(text);
            let name = name.trim_end_matches([':', ',']).replace('-', "_");
            param = Some((name, text.to_owned()));
            continue;
        }
        if l.is_empty() {
            flush_param(&mut param, &mut doc);
            flush_para(&mut para, &mut doc);
            continue;
        }
        if let Some((_, t)) = param.as_mut() {
            t.push(' ');
            t.push_str(l);
            continue;
        }
        let l = l
            .strip_prefix("\\brief")
            .or_else(|| l.strip_prefix("@brief"))
            .map_or(l, str::trim_start);
        if !para.is_empty() {
            para.push(' ');
        }
        para.push_str(l);
    }
    flush_param(&mut param, &mut doc);
    flush_para(&mut para, &mut doc);
    doc
}

/// Text for use inside a Markdown code span (backticks are replaced, nothing is escaped).
pub fn code(s: &str) -> String {
    s.replace('`', "'")
}

/// Collapses whitespace and escapes Markdown, giving one line of doc text.
pub fn one_line(s: &str) -> String {
    escape_markdown(&s.split_whitespace().collect::<Vec<_>>().join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn brief_and_params() {
        let d = parse(
            "/** \\brief Add an application server\n    @param client_index - opaque cookie\n    @param pfx - ip prefix\n           and length\n    @param rpf-id: the id\n*/",
        );
        assert_eq!(d.paragraphs, vec!["Add an application server".to_owned()]);
        assert_eq!(d.params["pfx"], "ip prefix and length");
        assert_eq!(d.params["rpf_id"], "the id");
        assert_eq!(d.params["client_index"], "opaque cookie");
    }

    #[test]
    fn plain_comment_and_escaping() {
        let d = parse("/*\n * Get API version table [x] <y>\n */");
        assert_eq!(
            d.paragraphs,
            vec!["Get API version table [x] <y>".to_owned()]
        );
        assert_eq!(
            one_line(&d.paragraphs[0]),
            "Get API version table \\[x\\] \\<y\\>"
        );
    }
}
