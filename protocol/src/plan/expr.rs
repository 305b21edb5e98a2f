//! The small expression language of `if:` steps: `${status} == 200 && ${cart_items} > 0`.
//!
//! Operands are variables (`${name}`; `${status}` is the status code of the VU's last response,
//! 0 before any), numbers (`200`, `-1.5`), strings (`'ok'` or `"ok"`) and `true` / `false`.
//! Comparisons are `== != < <= > >=`; conditions combine with `&&`, `||`, `!` and parentheses.
//! Two operands that both read as numbers compare as numbers, otherwise as text (variables hold
//! text, so `${count} > 9` is numeric and `${name} == 'bob'` is textual). An operand alone is
//! true unless it is empty, `0` or `false`.
//!
//! The expression is generic over how a variable is named: the plan holds names (and checks
//! them), the agent maps them once to slots in a VU's variables ([`Expr::map_vars`]), so
//! evaluating one reads no map.

/// The variable name that means the status code of the last response.
pub const STATUS: &str = "status";

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `==`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
}

/// A value in an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Operand<V> {
    /// A variable's value.
    Var(V),
    /// A number literal.
    Num(f64),
    /// A string literal (also `true` / `false`).
    Str(String),
}

/// A parsed condition.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr<V> {
    /// An operand's truth.
    Value(Operand<V>),
    /// `a OP b`.
    Cmp(Operand<V>, CmpOp, Operand<V>),
    /// `!e`
    Not(Box<Expr<V>>),
    /// `a && b`
    And(Box<Expr<V>>, Box<Expr<V>>),
    /// `a || b`
    Or(Box<Expr<V>>, Box<Expr<V>>),
}

impl Expr<String> {
    /// Parses `text`; the error names what is wrong and where.
    pub fn parse(text: &str) -> Result<Self, String> {
        let tokens = lex(text)?;
        let mut p = Parser { tokens, at: 0 };
        let e = p.or()?;
        match p.tokens.get(p.at) {
            None => Ok(e),
            Some(t) => Err(format!(
                "unexpected {} after a complete condition",
                t.show()
            )),
        }
    }
}

impl<V> Expr<V> {
    /// The variables referenced, in order.
    pub fn vars(&self) -> Vec<&V> {
        let mut out = Vec::new();
        self.collect(&mut out);
        out
    }

    fn collect<'a>(&'a self, out: &mut Vec<&'a V>) {
        let mut operand = |o: &'a Operand<V>| {
            if let Operand::Var(v) = o {
                out.push(v);
            }
        };
        match self {
            Expr::Value(a) => operand(a),
            Expr::Cmp(a, _, b) => {
                operand(a);
                operand(b);
            }
            Expr::Not(e) => e.collect(out),
            Expr::And(a, b) | Expr::Or(a, b) => {
                a.collect(out);
                b.collect(out);
            }
        }
    }

    /// The same expression with each variable replaced by `f(variable)`.
    pub fn map_vars<W, E>(&self, f: &mut impl FnMut(&V) -> Result<W, E>) -> Result<Expr<W>, E> {
        let mut operand = |o: &Operand<V>| -> Result<Operand<W>, E> {
            Ok(match o {
                Operand::Var(v) => Operand::Var(f(v)?),
                Operand::Num(n) => Operand::Num(*n),
                Operand::Str(s) => Operand::Str(s.clone()),
            })
        };
        Ok(match self {
            Expr::Value(a) => Expr::Value(operand(a)?),
            Expr::Cmp(a, op, b) => Expr::Cmp(operand(a)?, *op, operand(b)?),
            Expr::Not(e) => Expr::Not(Box::new(e.map_vars(f)?)),
            Expr::And(a, b) => Expr::And(Box::new(a.map_vars(f)?), Box::new(b.map_vars(f)?)),
            Expr::Or(a, b) => Expr::Or(Box::new(a.map_vars(f)?), Box::new(b.map_vars(f)?)),
        })
    }

    /// Evaluates the condition, reading variables through `value`.
    pub fn eval<'a>(&'a self, value: &impl Fn(&'a V) -> &'a str) -> bool {
        match self {
            Expr::Value(a) => truthy(text(a, value)),
            Expr::Cmp(a, op, b) => compare(a, *op, b, value),
            Expr::Not(e) => !e.eval(value),
            Expr::And(a, b) => a.eval(value) && b.eval(value),
            Expr::Or(a, b) => a.eval(value) || b.eval(value),
        }
    }
}

enum Read<'a> {
    Text(&'a str),
    Num(f64),
}

fn text<'a, V>(o: &'a Operand<V>, value: &impl Fn(&'a V) -> &'a str) -> Read<'a> {
    match o {
        Operand::Var(v) => Read::Text(value(v)),
        Operand::Num(n) => Read::Num(*n),
        Operand::Str(s) => Read::Text(s),
    }
}

fn truthy(r: Read<'_>) -> bool {
    match r {
        Read::Num(n) => n != 0.0,
        Read::Text(t) => !t.is_empty() && t != "0" && t != "false",
    }
}

fn number(r: &Read<'_>) -> Option<f64> {
    match r {
        Read::Num(n) => Some(*n),
        Read::Text(t) => t.trim().parse::<f64>().ok().filter(|n| n.is_finite()),
    }
}

fn compare<'a, V>(
    a: &'a Operand<V>,
    op: CmpOp,
    b: &'a Operand<V>,
    value: &impl Fn(&'a V) -> &'a str,
) -> bool {
    let (a, b) = (text(a, value), text(b, value));
    let order = match (number(&a), number(&b)) {
        (Some(x), Some(y)) => x.partial_cmp(&y),
        _ => {
            let show = |r: &Read<'a>| match r {
                Read::Text(t) => (*t).to_string(),
                Read::Num(n) => n.to_string(),
            };
            Some(show(&a).cmp(&show(&b)))
        }
    };
    let Some(order) = order else { return false };
    match op {
        CmpOp::Eq => order.is_eq(),
        CmpOp::Ne => order.is_ne(),
        CmpOp::Lt => order.is_lt(),
        CmpOp::Le => order.is_le(),
        CmpOp::Gt => order.is_gt(),
        CmpOp::Ge => order.is_ge(),
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Var(String),
    Num(f64),
    Str(String),
    Op(CmpOp),
    And,
    Or,
    Not,
    Open,
    Close,
}

impl Token {
    fn show(&self) -> String {
        match self {
            Token::Var(v) => format!("${{{v}}}"),
            Token::Num(n) => n.to_string(),
            Token::Str(s) => format!("'{s}'"),
            Token::Op(op) => format!("`{op:?}`"),
            Token::And => "`&&`".into(),
            Token::Or => "`||`".into(),
            Token::Not => "`!`".into(),
            Token::Open => "`(`".into(),
            Token::Close => "`)`".into(),
        }
    }
}

fn lex(text: &str) -> Result<Vec<Token>, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let two = rest.get(..2).unwrap_or("");
        let (token, len) = match bytes[i] {
            b' ' | b'\t' | b'\n' | b'\r' => {
                i += 1;
                continue;
            }
            _ if two == "&&" => (Token::And, 2),
            _ if two == "||" => (Token::Or, 2),
            _ if two == "==" => (Token::Op(CmpOp::Eq), 2),
            _ if two == "!=" => (Token::Op(CmpOp::Ne), 2),
            _ if two == "<=" => (Token::Op(CmpOp::Le), 2),
            _ if two == ">=" => (Token::Op(CmpOp::Ge), 2),
            b'<' => (Token::Op(CmpOp::Lt), 1),
            b'>' => (Token::Op(CmpOp::Gt), 1),
            b'!' => (Token::Not, 1),
            b'(' => (Token::Open, 1),
            b')' => (Token::Close, 1),
            b'$' if rest.starts_with("${") => {
                let end = rest
                    .find('}')
                    .ok_or_else(|| format!("`${{` at byte {i} is not closed by `}}`"))?;
                let name = &rest[2..end];
                if !super::is_var_name(name) {
                    return Err(format!("`${{{name}}}` is not a variable name"));
                }
                (Token::Var(name.to_string()), end + 1)
            }
            q @ (b'\'' | b'"') => {
                let end = rest[1..]
                    .find(q as char)
                    .ok_or_else(|| format!("the string at byte {i} is not closed"))?;
                (Token::Str(rest[1..=end].to_string()), end + 2)
            }
            b'0'..=b'9' | b'-' | b'.' => {
                let len = rest
                    .bytes()
                    .enumerate()
                    .take_while(|(j, b)| {
                        b.is_ascii_digit() || *b == b'.' || (*j == 0 && *b == b'-')
                    })
                    .count();
                let n = rest[..len]
                    .parse::<f64>()
                    .map_err(|_| format!("{:?} at byte {i} is not a number", &rest[..len]))?;
                (Token::Num(n), len)
            }
            _ if rest.starts_with("true") => (Token::Str("true".into()), 4),
            _ if rest.starts_with("false") => (Token::Str("false".into()), 5),
            _ => {
                let word: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
                return Err(format!(
                    "cannot read {word:?} at byte {i}: write variables as ${{name}}, strings in \
                     quotes, and use == != < <= > >= && || ! ( )"
                ));
            }
        };
        out.push(token);
        i += len;
    }
    if out.is_empty() {
        return Err("is empty; write a condition like \"${status} == 200\"".into());
    }
    Ok(out)
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn or(&mut self) -> Result<Expr<String>, String> {
        let mut e = self.and()?;
        while self.peek() == Some(&Token::Or) {
            self.at += 1;
            e = Expr::Or(Box::new(e), Box::new(self.and()?));
        }
        Ok(e)
    }

    fn and(&mut self) -> Result<Expr<String>, String> {
        let mut e = self.unary()?;
        while self.peek() == Some(&Token::And) {
            self.at += 1;
            e = Expr::And(Box::new(e), Box::new(self.unary()?));
        }
        Ok(e)
    }

    fn unary(&mut self) -> Result<Expr<String>, String> {
        match self.peek() {
            Some(Token::Not) => {
                self.at += 1;
                Ok(Expr::Not(Box::new(self.unary()?)))
            }
            Some(Token::Open) => {
                self.at += 1;
                let e = self.or()?;
                if self.peek() != Some(&Token::Close) {
                    return Err("a `(` is not closed by `)`".into());
                }
                self.at += 1;
                Ok(e)
            }
            _ => {
                let a = self.operand()?;
                if let Some(Token::Op(op)) = self.peek() {
                    let op = *op;
                    self.at += 1;
                    let b = self.operand()?;
                    return Ok(Expr::Cmp(a, op, b));
                }
                Ok(Expr::Value(a))
            }
        }
    }

    fn operand(&mut self) -> Result<Operand<String>, String> {
        let t = self.peek().cloned();
        self.at += 1;
        match t {
            Some(Token::Var(v)) => Ok(Operand::Var(v)),
            Some(Token::Num(n)) => Ok(Operand::Num(n)),
            Some(Token::Str(s)) => Ok(Operand::Str(s)),
            Some(other) => Err(format!("expected a value, got {}", other.show())),
            None => Err("ends where a value is expected".into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(text: &str, vars: &[(&str, &str)]) -> bool {
        let e = Expr::parse(text).expect("valid");
        e.eval(&|name: &String| vars.iter().find(|(k, _)| k == name).map_or("", |(_, v)| *v))
    }

    #[test]
    fn comparisons_are_numeric_when_both_sides_are_numbers() {
        let v = [("status", "200"), ("items", "10"), ("name", "bob")];
        assert!(eval("${status} == 200", &v));
        assert!(!eval("${status} != 200", &v));
        assert!(eval("${items} > 9", &v), "10 > 9 as numbers, not as text");
        assert!(eval("${items} >= 10 && ${items} <= 10", &v));
        assert!(eval("${name} == 'bob'", &v));
        assert!(eval(r#"${name} != "alice""#, &v));
        assert!(eval("${name} < 'carol'", &v), "text order");
        assert!(eval("-1.5 < 0", &v));
    }

    #[test]
    fn logic_has_precedence_and_parentheses() {
        let v = [("a", "1"), ("b", "0"), ("e", "")];
        assert!(eval("${a} || ${b} && ${b}", &v), "&& binds tighter");
        assert!(!eval("(${a} || ${b}) && ${b}", &v));
        assert!(eval("!${b} && !${e} && ${a}", &v));
        assert!(eval("true && !false", &v));
    }

    #[test]
    fn variables_are_listed_and_mapped() {
        let e = Expr::parse("${status} == 200 && ${x} > ${y}").expect("valid");
        assert_eq!(e.vars(), ["status", "x", "y"]);
        let mapped: Expr<usize> = e
            .map_vars(&mut |v: &String| Ok::<_, ()>(v.len()))
            .expect("maps");
        assert_eq!(mapped.vars(), [&6, &1, &1]);
    }

    #[test]
    fn bad_conditions_are_explained() {
        for (bad, says) in [
            ("", "is empty"),
            ("${status} ==", "ends where a value"),
            ("${status} = 200", "cannot read"),
            ("status == 200", "cannot read"),
            ("(${a}", "not closed"),
            ("${a} ${b}", "unexpected"),
            ("'open", "not closed"),
            ("${9} == 1", "not a variable name"),
        ] {
            let e = Expr::parse(bad).expect_err(bad);
            assert!(e.contains(says), "{bad:?}: {e}");
        }
    }
}
