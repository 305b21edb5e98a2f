//! Text with variables: `Bearer ${token}`.
//!
//! A step's path (and query), header values, body and the expected texts of its checks may
//! reference variables as `${name}`. Names are `[A-Za-z_][A-Za-z0-9_]*`; `$${` writes a literal
//! `${`, and a `$` not followed by `{` is an ordinary character, so JSON bodies and prices need
//! no escaping. The plan parser checks that every referenced name is defined (by `vars`, a
//! feeder's columns, an extraction, or a built-in) and names the field if not; the agent compiles
//! each template once into literal and variable parts and renders it per request.

/// One part of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text sent as it is.
    Literal(String),
    /// The value of a variable.
    Var(String),
}

/// A parsed template: literal text and variable references, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Built-in variables every VU has: its agent's index, its own number in the whole run, and how
/// many iterations it has started before the current one.
pub const BUILTINS: [&str; 3] = ["__agent", "__vu", "__iteration"];

/// Whether `name` is a valid variable name (`[A-Za-z_][A-Za-z0-9_]*`).
pub fn is_var_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Template {
    /// Parses `text`; the error says what is wrong (an unclosed `${`, a bad name).
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut literal = String::new();
        let mut rest = text;
        while let Some(i) = rest.find("${") {
            if rest[..i].ends_with('$') {
                // `$${` is a literal `${`.
                literal.push_str(&rest[..i - 1]);
                literal.push_str("${");
                rest = &rest[i + 2..];
                continue;
            }
            literal.push_str(&rest[..i]);
            let at = text.len() - rest.len() + i;
            let after = &rest[i + 2..];
            let len = after
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            let name = &after[..len];
            match after[len..].chars().next() {
                Some('}') if is_var_name(name) => {}
                Some('}') => {
                    return Err(format!(
                        "`${{{name}}}` is not a variable name (letters, digits and _, not starting with a digit)"
                    ))
                }
                None => {
                    return Err(format!(
                        "`${{` at byte {at} is not closed by `}}` (write `$${{` for a literal `${{`)"
                    ))
                }
                Some('.') if name == "env" => {
                    return Err(
                        "`${env.NAME}` is resolved where a plan is loaded from a file (`herd run`, \
                         `herd validate`); here, write the value itself"
                            .to_string(),
                    )
                }
                Some(_) => {
                    return Err(format!(
                        "`${{` at byte {at} does not start a reference like `${{name}}` (write \
                         `$${{` for a literal `${{`)"
                    ))
                }
            }
            let end = len;
            if !literal.is_empty() {
                parts.push(Part::Literal(std::mem::take(&mut literal)));
            }
            parts.push(Part::Var(name.to_string()));
            rest = &after[end + 1..];
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(Part::Literal(literal));
        }
        Ok(Self { parts })
    }

    /// The parts, in order.
    pub fn parts(&self) -> &[Part] {
        &self.parts
    }

    /// The names of the variables referenced, in order (with repeats).
    pub fn vars(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(v) => Some(v.as_str()),
            Part::Literal(_) => None,
        })
    }

    /// Whether the template references no variable.
    pub fn is_static(&self) -> bool {
        self.vars().next().is_none()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lit(s: &str) -> Part {
        Part::Literal(s.into())
    }

    fn var(s: &str) -> Part {
        Part::Var(s.into())
    }

    #[test]
    fn variables_and_literals_are_split() {
        let t = Template::parse("/users/${id}?page=${page}&x=1").expect("valid");
        assert_eq!(
            t.parts(),
            [
                lit("/users/"),
                var("id"),
                lit("?page="),
                var("page"),
                lit("&x=1")
            ]
        );
        assert_eq!(t.vars().collect::<Vec<_>>(), ["id", "page"]);
        assert!(!t.is_static());
    }

    #[test]
    fn dollars_without_a_brace_and_escaped_braces_are_literal() {
        let t = Template::parse(r#"{"price": "$5", "tpl": "$${not_a_var}", "v": "${v}"}"#)
            .expect("valid");
        assert_eq!(
            t.parts(),
            [
                lit(r#"{"price": "$5", "tpl": "${not_a_var}", "v": ""#),
                var("v"),
                lit(r#""}"#)
            ]
        );
        let plain = Template::parse("no variables, $ and { } alone").expect("valid");
        assert!(plain.is_static());
        assert_eq!(plain.parts(), [lit("no variables, $ and { } alone")]);
        assert_eq!(Template::parse("").expect("valid").parts(), []);
    }

    #[test]
    fn bad_references_are_explained() {
        let open = Template::parse("Bearer ${token").expect_err("unclosed");
        assert!(open.contains("at byte 7 is not closed"), "{open}");
        let stray = Template::parse(r#"{"a": "${a", "b": "${b}"}"#).expect_err("stray");
        assert!(
            stray.contains("at byte 7 does not start a reference"),
            "{stray}"
        );
        let name = Template::parse("${9lives}").expect_err("bad name");
        assert!(name.contains("not a variable name"), "{name}");
        assert!(Template::parse("${}").is_err());
        assert!(Template::parse("${a b}").is_err());
    }

    #[test]
    fn names_follow_the_identifier_rule() {
        for ok in ["a", "_x", "token2", "__vu", "A_B"] {
            assert!(is_var_name(ok), "{ok}");
        }
        for bad in ["", "2a", "a-b", "a.b", "é"] {
            assert!(!is_var_name(bad), "{bad}");
        }
    }
}
