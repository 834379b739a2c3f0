//! Server-side templates (minijinja): the emails (`notify::render`) and the
//! link recipient's landing page (`http::landing`). Templates named `.html`
//! are auto-escaped; a value is data, never read as a template (a case
//! titled `{{view_url}}` stays that text), and a name with no value is an
//! error, not an empty string (strict undefined).

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// An environment with the house rules; the caller adds its templates.
pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_keep_trailing_newline(true);
    // Escape `& < > " '` only: minijinja's own HTML escaping also writes
    // `/` as `&#x2f;`, valid but it makes every URL of a page or an email
    // unreadable in its source.
    env.set_formatter(|out, state, value| {
        if state.auto_escape() == AutoEscape::Html && !value.is_safe() {
            if let Some(s) = value.as_str() {
                return out.write_str(&escape_html(s)).map_err(Into::into);
            }
        }
        minijinja::escape_formatter(out, state, value)
    });
    env
}

pub fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

#[cfg(test)]
mod tests {
    use super::environment;
    use minijinja::context;

    #[test]
    fn values_are_never_read_as_templates_and_unknown_names_fail() {
        let mut env = environment();
        env.add_template("t.html", "<a href=\"{{ url }}\">{{ title }}</a>")
            .unwrap();
        let out = env
            .get_template("t.html")
            .unwrap()
            .render(context! { url => "https://x/cases/1", title => "{{ url }} <b>&" })
            .unwrap();
        assert_eq!(
            out,
            "<a href=\"https://x/cases/1\">{{ url }} &lt;b&gt;&amp;</a>"
        );
        assert!(env.render_str("{{ nope }}", context! {}).is_err());
    }
}
