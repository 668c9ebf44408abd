//! HTML ↔ text for every provider whose desk speaks HTML (Intercom, Help Scout, Engage Digital).
//!
//! One implementation, so an agent's reply reads the same whichever desk it came from: tags
//! dropped, `<script>`/`<style>`/`<head>` dropped with their content, block elements and `<br>`
//! as line breaks, list items as `- ` lines, a link's URL kept after its label, inline images
//! returned apart (adapters turn them into attachments), character references decoded (`&nbsp;`
//! is a plain space), layout whitespace collapsed and at most one blank line in a row.
//!
//! The decoder knows the references desks actually send (the XML five, `&nbsp;`, numeric ones);
//! anything else is kept as written rather than guessed.

use crate::domain::Message;
use crate::domain::message::Button;

/// Readable text from an HTML body, and the sources of its inline images.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct HtmlText {
    pub text: String,
    pub images: Vec<String>,
}

/// Plain text from an HTML body. A body without any tag is taken as plain text: its references
/// are decoded and its own line breaks kept.
pub fn html_to_text(html: &str) -> HtmlText {
    if !html.contains('<') {
        return HtmlText {
            text: tidy(&decode_entities(html)),
            images: Vec::new(),
        };
    }
    let mut out = String::with_capacity(html.len());
    let mut images = Vec::new();
    let mut links: Vec<(Option<String>, usize)> = Vec::new();
    let mut skip_until: Option<String> = None;
    let mut rest = html;
    while let Some(lt) = rest.find('<') {
        if skip_until.is_none() {
            push_text(&mut out, &rest[..lt]);
        }
        let after = &rest[lt + 1..];
        let Some(gt) = after.find('>') else {
            // A lone `<` is text.
            if skip_until.is_none() {
                push_text(&mut out, &rest[lt..]);
            }
            rest = "";
            break;
        };
        let tag = after[..gt].trim();
        rest = &after[gt + 1..];
        let closing = tag.starts_with('/');
        let body = tag.trim_start_matches('/');
        let name = body
            .chars()
            .take_while(char::is_ascii_alphanumeric)
            .collect::<String>()
            .to_ascii_lowercase();
        if let Some(end) = &skip_until {
            if closing && &name == end {
                skip_until = None;
            }
            continue;
        }
        match (name.as_str(), closing) {
            ("script" | "style" | "head", false) => skip_until = Some(name),
            ("br", _) => {
                trim_trailing_space(&mut out);
                out.push('\n');
            }
            ("li", false) => {
                newline(&mut out);
                out.push_str("- ");
            }
            (
                "p" | "div" | "ul" | "ol" | "li" | "tr" | "table" | "blockquote" | "pre" | "hr" | "h1" | "h2" | "h3"
                | "h4" | "h5" | "h6",
                _,
            ) => newline(&mut out),
            ("a", false) => links.push((attribute(body, "href"), out.len())),
            ("a", true) => {
                if let Some((Some(href), start)) = links.pop() {
                    let label = out.get(start..).unwrap_or("").trim();
                    if !href.is_empty() && label != href {
                        if label.is_empty() {
                            out.push_str(&href);
                        } else {
                            out.push_str(&format!(" ({href})"));
                        }
                    }
                }
            }
            ("img", _) => {
                if let Some(src) = attribute(body, "src").filter(|s| !s.is_empty()) {
                    images.push(src);
                }
            }
            _ => {}
        }
    }
    if skip_until.is_none() {
        push_text(&mut out, rest);
    }
    HtmlText {
        text: tidy(&out),
        images,
    }
}

/// A rich message as HTML, for desks that show HTML (Help Scout notes): the text, then buttons
/// as a list (a button with a URL as a link), cards as a list with their image, subtitle and
/// buttons, quick replies on one line, images inline and other attachments as links. A desk
/// renders it as the richest form it has; the agent cannot click a postback, so those are shown
/// by title.
pub fn message_html(label: &str, message: &Message) -> String {
    let mut out = String::new();
    let text = message.text.as_deref().unwrap_or_default();
    out.push_str(&text_to_html(&format!("{label}{text}")));
    let button = |b: &Button| match b.url.as_deref().and_then(safe_url) {
        Some(url) => format!("<a href=\"{}\">{}</a>", escape_attribute(&url), escape_html(&b.title)),
        None => escape_html(&b.title),
    };
    if !message.buttons.is_empty() {
        out.push_str("<ul>");
        for b in &message.buttons {
            out.push_str(&format!("<li>{}</li>", button(b)));
        }
        out.push_str("</ul>");
    }
    if !message.cards.is_empty() {
        out.push_str("<ul>");
        for c in &message.cards {
            out.push_str(&format!("<li><b>{}</b>", escape_html(&c.title)));
            if let Some(sub) = &c.subtitle {
                out.push_str(&format!(" — {}", escape_html(sub)));
            }
            if let Some(img) = c.image_url.as_deref().and_then(safe_url) {
                out.push_str(&format!(
                    "<br><img src=\"{}\" alt=\"{}\">",
                    escape_attribute(&img),
                    escape_attribute(&c.title)
                ));
            }
            if !c.buttons.is_empty() {
                let buttons: Vec<String> = c.buttons.iter().map(button).collect();
                out.push_str(&format!("<br>{}", buttons.join(" | ")));
            }
            out.push_str("</li>");
        }
        out.push_str("</ul>");
    }
    if !message.quick_replies.is_empty() {
        let replies: Vec<String> = message.quick_replies.iter().map(|q| escape_html(q)).collect();
        out.push_str(&format!("<p>Quick replies: {}</p>", replies.join(" | ")));
    }
    for a in &message.attachments {
        let name = escape_html(a.name.as_deref().unwrap_or(&a.url));
        match safe_url(&a.url) {
            Some(url) if a.kind == "image" => {
                out.push_str(&format!("<p><img src=\"{}\"></p>", escape_attribute(&url)));
            }
            Some(url) => out.push_str(&format!("<p><a href=\"{}\">{name}</a></p>", escape_attribute(&url))),
            // Not a link: the agent still sees what was sent.
            None => out.push_str(&format!("<p>{name}</p>")),
        }
    }
    if let Some(loc) = &message.location {
        out.push_str(&format!("<p>Location: {}, {}</p>", loc.latitude, loc.longitude));
    }
    out
}

/// The schemes a link or image in generated HTML may use. Anything else (`javascript:`,
/// `data:`, `vbscript:`, a relative URL) is never put in an `href` or `src`: an agent desk
/// renders this HTML inside its own page.
pub const LINK_SCHEMES: [&str; 4] = ["http", "https", "mailto", "tel"];

/// `url` as it may appear in an `href` or `src` (as given, surrounding blanks removed), or
/// `None` when its scheme, read the way a browser reads it (tabs and line breaks dropped,
/// case folded), is not one of [`LINK_SCHEMES`].
pub fn safe_url(url: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url.trim()).ok()?;
    LINK_SCHEMES.contains(&parsed.scheme()).then(|| url.trim().to_owned())
}

/// Text escaped for an attribute value in double quotes.
pub fn escape_attribute(s: &str) -> String {
    escape_html(s).replace('"', "&quot;")
}

/// Our plain text as HTML: escaped, line breaks as `<br>`.
pub fn text_to_html(text: &str) -> String {
    text.split('\n')
        .map(|line| escape_html(line.strip_suffix('\r').unwrap_or(line)))
        .collect::<Vec<_>>()
        .join("<br>")
}

/// Text escaped for HTML element content: `&`, `<` and `>` only. Quotes stay as they are so an
/// agent reads "I'm", also in tools that show the stored body raw; nothing we write puts text in
/// an attribute.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Text between tags: references decoded, layout whitespace (source line breaks included)
/// collapsed to single spaces as a browser shows it.
fn push_text(out: &mut String, raw: &str) {
    for c in decode_entities(raw).chars() {
        if c.is_whitespace() {
            if !out.is_empty() && !out.ends_with(' ') && !out.ends_with('\n') {
                out.push(' ');
            }
        } else {
            out.push(c);
        }
    }
}

fn newline(out: &mut String) {
    trim_trailing_space(out);
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
}

fn trim_trailing_space(out: &mut String) {
    while out.ends_with(' ') {
        out.pop();
    }
}

/// Trims every line and keeps at most one empty line in a row, none at either end.
fn tidy(s: &str) -> String {
    let mut lines: Vec<&str> = Vec::new();
    for line in s.lines() {
        let l = line.trim();
        if l.is_empty() && lines.last().is_none_or(|p| p.is_empty()) {
            continue;
        }
        lines.push(l);
    }
    while lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines.join("\n")
}

/// The value of one attribute of a tag (`a href="…"`), references decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let mut s = tag.trim_start_matches(|c: char| c.is_ascii_alphanumeric());
    loop {
        s = s.trim_start_matches(|c: char| c.is_whitespace() || c == '/');
        if s.is_empty() {
            return None;
        }
        let key_end = s
            .find(|c: char| c == '=' || c.is_whitespace() || c == '/')
            .unwrap_or(s.len());
        let key = &s[..key_end];
        s = s[key_end..].trim_start();
        let value = match s.strip_prefix('=') {
            Some(after_eq) => {
                let v = after_eq.trim_start();
                let (value, remaining) = match v.chars().next() {
                    Some(q @ ('"' | '\'')) => {
                        let inner = &v[1..];
                        let end = inner.find(q).unwrap_or(inner.len());
                        (&inner[..end], inner.get(end + 1..).unwrap_or(""))
                    }
                    _ => {
                        let end = v.find(char::is_whitespace).unwrap_or(v.len());
                        (&v[..end], &v[end..])
                    }
                };
                s = remaining;
                Some(value)
            }
            None => None,
        };
        if key.eq_ignore_ascii_case(name) {
            return value.map(decode_entities);
        }
        if value.is_none() && key.is_empty() {
            return None;
        }
    }
}

/// Decodes the XML five, `&nbsp;` (as a plain space) and numeric references; anything else is
/// kept as written.
pub fn decode_entities(s: &str) -> String {
    if !s.contains('&') {
        return s.to_owned();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let decoded = tail[1..].find(';').filter(|&end| end <= 10).and_then(|end| {
            let name = &tail[1..1 + end];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ => name
                    .strip_prefix('#')
                    .and_then(|n| match n.strip_prefix('x').or_else(|| n.strip_prefix('X')) {
                        Some(hex) => u32::from_str_radix(hex, 16).ok(),
                        None => n.parse::<u32>().ok(),
                    })
                    .and_then(char::from_u32),
            };
            c.map(|c| (c, end + 2))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &tail[len..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// At most `max` characters, the cut marked with an ellipsis (which counts as one): for
/// fields and notes a provider limits in length.
pub fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut out: String = text.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

#[cfg(test)]
mod tests;
