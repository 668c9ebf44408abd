//! Unit tests of the kit's HTML ↔ text conversions.

use super::*;

#[test]
fn clipping_keeps_short_text_and_marks_the_cut() {
    assert_eq!(clip("short", 5), "short");
    assert_eq!(clip("éàüöß!", 4), "éàü…");
    assert_eq!(clip("abc", 1), "…");
}

fn text(html: &str) -> String {
    html_to_text(html).text
}

#[test]
fn blocks_breaks_and_list_items_become_lines() {
    assert_eq!(text("<p>One</p><p>Two<br/>Three</p>"), "One\nTwo\nThree");
    assert_eq!(
        text("<div>Items:</div><ul><li>a</li><li>b &lt;c&gt;</li></ul>"),
        "Items:\n- a\n- b <c>"
    );
    assert_eq!(text("<p>x</p><p></p><p></p><p>y</p>"), "x\ny");
    assert_eq!(text("<h2>Title</h2>body<hr>end"), "Title\nbody\nend");
}

#[test]
fn layout_whitespace_collapses_like_a_browser_shows_it() {
    assert_eq!(text("<p>Hello\n   world</p>"), "Hello world");
    assert_eq!(text("<p>  a  </p>\n\n<p>b</p>"), "a\nb");
}

#[test]
fn an_intercom_reply_reads_as_text() {
    let t = html_to_text(
        "<p>Please try:</p><ul><li>Open settings</li><li>Try&nbsp;again</li></ul><p>Thanks &#8212; Eva<br/>Support</p>",
    );
    assert_eq!(
        t.text,
        "Please try:\n- Open settings\n- Try again\nThanks — Eva\nSupport"
    );
    assert!(t.images.is_empty());
}

#[test]
fn nbsp_is_a_plain_space_everywhere() {
    assert_eq!(text("<p>a&nbsp;b</p>"), "a b");
    assert_eq!(text("a&nbsp;b"), "a b");
}

#[test]
fn references_are_decoded_and_unknown_ones_kept() {
    assert_eq!(
        text("<b>Bold</b> &#8364;5 &#x41; &quot;q&quot; &apos;"),
        "Bold €5 A \"q\" '"
    );
    assert_eq!(text("a &unknown; b"), "a &unknown; b");
    assert_eq!(text("a < b &unknown; c"), "a < b &unknown; c");
    assert_eq!(text("Plain &amp; simple\nsecond line"), "Plain & simple\nsecond line");
}

#[test]
fn script_style_and_head_are_dropped_with_their_content() {
    assert_eq!(
        text("<head><title>t</title></head><style>p{}</style><p>Hi</p><script>alert(1)</script>!"),
        "Hi\n!"
    );
}

#[test]
fn links_keep_their_url_and_images_are_returned_apart() {
    let t = html_to_text(
        "<p>See <a href=\"https://x.example/a?b=1&amp;c=2\">the guide</a></p>\
         <img src='https://img.example/1.png' alt=x><a href='https://y.example'>https://y.example</a>\
         <a href=\"https://z.example\"></a>",
    );
    assert_eq!(
        t.text,
        "See the guide (https://x.example/a?b=1&c=2)\nhttps://y.examplehttps://z.example"
    );
    assert_eq!(t.images, vec!["https://img.example/1.png".to_owned()]);
}

#[test]
fn an_unclosed_tag_is_text_and_nothing_panics_on_odd_input() {
    assert_eq!(text("a <b"), "a <b");
    for odd in [
        "<",
        ">",
        "&",
        "&#;",
        "&#x110000;",
        "<a href=>x</a>",
        "</a>",
        "<a href",
        "<img src=\"",
        "é<p>ü",
    ] {
        let _ = html_to_text(odd);
    }
}

#[test]
fn a_rich_message_becomes_html_a_desk_shows_and_reads_back_to_the_same_words() {
    use crate::domain::message::{Attachment, Card};
    let m = Message {
        text: Some("Pick one <please>".into()),
        buttons: vec![Button {
            title: "Track".into(),
            payload: None,
            url: Some("https://t.example.com/?a=1&b=\"2\"".into()),
        }],
        cards: vec![Card {
            title: "Parcel A-1".into(),
            subtitle: Some("Late".into()),
            image_url: Some("https://cdn.example.com/a1.png".into()),
            buttons: vec![Button {
                title: "This one".into(),
                payload: Some("a1".into()),
                url: None,
            }],
        }],
        quick_replies: vec!["Yes".into(), "No".into()],
        attachments: vec![Attachment {
            kind: "file".into(),
            url: "https://cdn.example.com/l.pdf".into(),
            name: Some("label.pdf".into()),
        }],
        ..Message::default()
    };
    let html = message_html("Bot: ", &m);
    assert!(html.starts_with("Bot: Pick one &lt;please&gt;<ul><li><a href=\"https://t.example.com/?a=1&amp;b=&quot;2&quot;\">Track</a></li></ul>"), "{html}");
    assert!(html.contains("<li><b>Parcel A-1</b> — Late<br><img src=\"https://cdn.example.com/a1.png\" alt=\"Parcel A-1\"><br>This one</li>"), "{html}");
    assert!(html.contains("<p>Quick replies: Yes | No</p>"));
    assert!(html.ends_with("<p><a href=\"https://cdn.example.com/l.pdf\">label.pdf</a></p>"));
    let back = html_to_text(&html);
    assert_eq!(back.images, ["https://cdn.example.com/a1.png"]);
    assert_eq!(
        back.text,
        "Bot: Pick one <please>\n- Track (https://t.example.com/?a=1&b=\"2\")\n- Parcel A-1 — Late\n\nThis one\nQuick replies: Yes | No\nlabel.pdf (https://cdn.example.com/l.pdf)"
    );
}

#[test]
fn text_becomes_escaped_html_with_line_breaks() {
    assert_eq!(text_to_html("a < b & \"c\"\r\nnext"), "a &lt; b &amp; \"c\"<br>next");
    assert_eq!(text(&text_to_html("x <y>\nz")), "x <y>\nz");
}

#[test]
fn generated_html_links_only_to_allowed_schemes() {
    use crate::domain::message::{Attachment, Button, Card};
    let evil = [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        " java\tscript:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "vbscript:msgbox(1)",
        "/relative/path",
    ];
    for url in evil {
        let m = Message {
            text: Some("hi".into()),
            buttons: vec![Button {
                title: "Open".into(),
                payload: None,
                url: Some(url.into()),
            }],
            cards: vec![Card {
                title: "Card".into(),
                subtitle: None,
                image_url: Some(url.into()),
                buttons: vec![],
            }],
            attachments: vec![
                Attachment {
                    kind: "image".into(),
                    url: url.into(),
                    name: Some("pic".into()),
                },
                Attachment {
                    kind: "file".into(),
                    url: url.into(),
                    name: Some("doc".into()),
                },
            ],
            ..Message::default()
        };
        let html = message_html("Bot: ", &m).to_ascii_lowercase();
        assert!(!html.contains("href") && !html.contains("src="), "{url}: {html}");
        assert!(html.contains("open") && html.contains("doc"), "the words stay: {html}");
    }
    for url in [
        "https://x.example/a",
        "http://x.example/",
        "mailto:a@x.example",
        "tel:+3212345678",
    ] {
        assert!(safe_url(url).is_some(), "{url}");
    }
}
