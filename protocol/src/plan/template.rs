//! Text with variables: `Bearer ${token}`.
//!
//! A step's path (and query), header values, body and the expected texts of its checks may
//! reference variables as `${name}`. Names are `[A-Za-z_][A-Za-z0-9_]*`; `$${` writes a literal
//! `${`, and a `$` not followed by `{` is an ordinary character, so JSON bodies and prices need
//! no escaping. The plan parser checks that every referenced name is defined (by `vars`, a
//! feeder's columns, an extraction, or a built-in) and names the field if not; the agent compiles
//! each template once into literal and variable parts and renders it per request.
//!
//! Three functions give a fresh value at every render, so an imported JMeter plan keeps its
//! `${__Random(…)}`, `${__UUID()}` and `${__time()}` instead of values fixed at import time:
//! `${__random(A,B)}` (an integer in `A..=B`), `${__uuid}` (a random version-4 UUID) and
//! `${__time}` (milliseconds since the Unix epoch). They are parts of their own ([`Func`]), not
//! variables, so they need no definition and a template that holds one is never static.

/// One part of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Text sent as it is.
    Literal(String),
    /// The value of a variable.
    Var(String),
    /// A value computed at each render.
    Func(Func),
}

/// A template function.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Func {
    /// `${__random(A,B)}`: an integer drawn uniformly from `min..=max`.
    Random {
        /// Smallest value.
        min: i64,
        /// Largest value.
        max: i64,
    },
    /// `${__uuid}`: a random (version 4) UUID in lower-case hex.
    Uuid,
    /// `${__time}`: milliseconds since the Unix epoch.
    Time,
}

impl Func {
    /// How the function is written in a plan.
    pub fn format(&self) -> String {
        match self {
            Func::Random { min, max } => format!("${{__random({min},{max})}}"),
            Func::Uuid => "${__uuid}".to_string(),
            Func::Time => "${__time}".to_string(),
        }
    }

    /// Parses the function `name` with the text between its parentheses (`None`: written
    /// without them); `Ok(None)` when `name` is not a function.
    fn parse(name: &str, args: Option<&str>) -> Result<Option<Self>, String> {
        let no_args = |f: Func| match args.map(str::trim) {
            None | Some("") => Ok(Some(f)),
            Some(a) => Err(format!("`${{{name}}}` takes no arguments, not `{a}`")),
        };
        match name {
            "__uuid" => no_args(Func::Uuid),
            "__time" => no_args(Func::Time),
            "__random" => {
                let usage = "write `${__random(MIN,MAX)}` with two integers, MIN <= MAX";
                let Some(args) = args else {
                    return Err(format!("`${{__random}}` needs its bounds: {usage}"));
                };
                let bounds: Vec<&str> = args.split(',').map(str::trim).collect();
                let [min, max] = bounds[..] else {
                    return Err(format!("`${{__random({args})}}`: {usage}"));
                };
                match (min.parse::<i64>(), max.parse::<i64>()) {
                    (Ok(min), Ok(max)) if min <= max => Ok(Some(Func::Random { min, max })),
                    _ => Err(format!("`${{__random({args})}}`: {usage}")),
                }
            }
            _ => Ok(None),
        }
    }
}

/// A parsed template: literal text and variable references, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<Part>,
}

/// Built-in variables every VU has: its agent's index, its own number in the whole run, and how
/// many iterations it has started before the current one.
pub const BUILTINS: [&str; 3] = ["__agent", "__vu", "__iteration"];

/// The template functions' names ([`Func`]): not variables, and no variable may take them.
pub const FUNCTIONS: [&str; 3] = ["__random", "__uuid", "__time"];

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
            let mut end = len;
            let func = match after[len..].chars().next() {
                Some('(') if FUNCTIONS.contains(&name) => {
                    let Some(close) = after[len..].find(')') else {
                        return Err(format!("`${{{name}(` at byte {at} is not closed by `)}}`"));
                    };
                    if !after[len + close + 1..].starts_with('}') {
                        return Err(format!("`${{{name}(…)` at byte {at} is not closed by `}}`"));
                    }
                    end = len + close + 1;
                    Func::parse(name, Some(&after[len + 1..len + close]))?
                }
                Some('}') => Func::parse(name, None)?,
                _ => None,
            };
            if let Some(func) = func {
                if !literal.is_empty() {
                    parts.push(Part::Literal(std::mem::take(&mut literal)));
                }
                parts.push(Part::Func(func));
                rest = &after[end + 1..];
                continue;
            }
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
            Part::Literal(_) | Part::Func(_) => None,
        })
    }

    /// Whether the template is plain text: no variable and no function.
    pub fn is_static(&self) -> bool {
        self.parts.iter().all(|p| matches!(p, Part::Literal(_)))
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
    fn functions_are_parts_of_their_own() {
        let t = Template::parse(
            "/o/${__random(1,100)}?id=${__uuid}&t=${__time}&n=${__random( -5 , 5 )}${__uuid()}",
        )
        .expect("valid");
        assert_eq!(
            t.parts(),
            [
                lit("/o/"),
                Part::Func(Func::Random { min: 1, max: 100 }),
                lit("?id="),
                Part::Func(Func::Uuid),
                lit("&t="),
                Part::Func(Func::Time),
                lit("&n="),
                Part::Func(Func::Random { min: -5, max: 5 }),
                Part::Func(Func::Uuid),
            ]
        );
        assert_eq!(t.vars().count(), 0, "functions are not variables");
        assert!(!t.is_static(), "a function is rendered at every send");
        assert_eq!(
            Func::Random { min: -5, max: 5 }.format(),
            "${__random(-5,5)}"
        );
        assert_eq!(Func::Uuid.format(), "${__uuid}");
        assert_eq!(Func::Time.format(), "${__time}");
    }

    #[test]
    fn bad_function_calls_are_explained() {
        for (text, says) in [
            ("${__random}", "needs its bounds"),
            ("${__random(1)}", "two integers"),
            ("${__random(5,1)}", "MIN <= MAX"),
            ("${__random(a,b)}", "two integers"),
            ("${__random(1,2,3)}", "two integers"),
            ("${__random(1,2}", "not closed by `)}`"),
            ("${__random(1,2)x}", "not closed by `}`"),
            ("${__uuid(4)}", "takes no arguments"),
            ("${__time(yyyy)}", "takes no arguments"),
        ] {
            let e = Template::parse(text).expect_err(text);
            assert!(e.contains(says), "{text}: {e}");
        }
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
