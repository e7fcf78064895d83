//! HTML escaping for the values Tera writes into pages (`{{ name }}`).
//!
//! It escapes the five characters that matter in element content and in quoted attribute
//! values, where our templates put variables: `& < > " '` (OWASP XSS Prevention Cheat
//! Sheet, rule 1). That is `html-escape`'s encoder for quoted attributes; its `encode_text`
//! would leave the quotes, and our templates also put values inside attributes
//! (`<time datetime="{{ ends_iso }}">`). Tera's own escaper also escapes `/`, an old OWASP
//! rule for closing tags that HTML does not need (`/` cannot end an element or a quoted
//! attribute), and it builds its output a character at a time, about twice the work.

/// `text` with `&`, `<`, `>`, `"` and `'` replaced by character references, in the
/// `fn(&str) -> String` form Tera takes as its escape function.
pub fn escape_html(text: &str) -> String {
    html_escape::encode_quoted_attribute(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::escape_html;

    #[test]
    fn the_five_special_characters_become_references_and_the_rest_stays() {
        assert_eq!(
            escape_html(r#"<img src=x onerror="alert('1')"> & co"#),
            "&lt;img src=x onerror=&quot;alert(&#x27;1&#x27;)&quot;&gt; &amp; co"
        );
        assert_eq!(escape_html("&&"), "&amp;&amp;");
        assert_eq!(escape_html("a<"), "a&lt;");
        assert_eq!(escape_html(">b"), "&gt;b");
    }

    #[test]
    fn text_without_special_characters_is_unchanged() {
        for text in ["", "Pat Tester", "pat@example.com", "2026-11-29T01:00:00Z", "a/b", "x=y"] {
            assert_eq!(escape_html(text), text);
        }
    }

    #[test]
    fn multi_byte_characters_around_special_ones_survive() {
        assert_eq!(escape_html("Zoë <Ärger> 😀&日本"), "Zoë &lt;Ärger&gt; 😀&amp;日本");
    }

    #[test]
    fn it_agrees_with_teras_escaper_apart_from_the_slash() {
        let samples = ["", "plain", "<>&\"'", "a/b</script>", "Zoë 'x' \"y\" & <z>", "\u{0}\r\n\t", "&#x27;"];
        for text in samples {
            let tera = rocket_dyn_templates::tera::escape_html(text).replace("&#x2F;", "/");
            assert_eq!(escape_html(text), tera, "{text:?}");
        }
    }
}
