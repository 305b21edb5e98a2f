//! Inlines the console's ES modules into one `<script>`, so the report runs from `file://`
//! (where a page cannot import a module from a file) with the console's own chart and table code
//! rather than a copy that would drift from it.
//!
//! Each module becomes a scope of its own, `const { a, b } = (() => { …; return { a, b }; })();`
//! (a module that exports nothing, the page's entry, a plain block),
//! its `import` lines dropped (the names they import are the earlier modules' constants, so
//! modules must come after those they import) and its `export`s turned into the returned names.
//! Only the forms the console uses are understood — one-line `import`s, `export function`,
//! `export async function`, `export const`, `export class`, `export { x as default };` — and a
//! test bundles every module the report uses, so a new form fails there, not in a browser.

use std::fmt::Write as _;

/// What cannot be bundled.
#[derive(Debug, thiserror::Error)]
#[error("{module}:{line}: {problem}")]
pub struct BundleError {
    /// The module's name.
    pub module: &'static str,
    /// The 1-based line.
    pub line: usize,
    /// What is wrong there.
    pub problem: String,
}

/// `modules` ((name, source) in dependency order) as the body of one module script.
pub fn bundle(modules: &[(&'static str, &'static str)]) -> Result<String, BundleError> {
    let mut out = String::new();
    for (name, source) in modules {
        out.push_str(&scoped(name, source)?);
    }
    Ok(out)
}

fn scoped(module: &'static str, source: &str) -> Result<String, BundleError> {
    let mut names: Vec<String> = Vec::new();
    let mut body = String::with_capacity(source.len());
    // Inside a block comment that opened on a line of its own (uPlot comments out whole
    // functions, `export` included): lines are copied, never read as imports or exports.
    let mut in_comment = false;
    for (n, line) in source.lines().enumerate() {
        let trimmed = line.trim_start();
        if in_comment || (trimmed.starts_with("/*") && !trimmed.contains("*/")) {
            in_comment = !line.contains("*/");
            body.push_str(line);
            body.push('\n');
            continue;
        }
        let err = |problem: String| BundleError {
            module,
            line: n + 1,
            problem,
        };
        if trimmed.starts_with("import ") {
            if !trimmed.trim_end().ends_with(';') {
                return Err(err("an import must fit on one line".into()));
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("export ") {
            if let Some(list) = rest.strip_prefix('{') {
                let list = list
                    .trim_end()
                    .strip_suffix("};")
                    .ok_or_else(|| err("an export list must fit on one line".into()))?;
                for item in list.split(',').map(str::trim).filter(|i| !i.is_empty()) {
                    let local = item.split(" as ").next().unwrap_or(item).trim();
                    names.push(local.to_string());
                }
                continue;
            }
            let declared = ["async function ", "function ", "const ", "class ", "let "]
                .iter()
                .find_map(|kw| rest.strip_prefix(kw))
                .ok_or_else(|| err(format!("unsupported export: {line}")))?;
            let name: String = declared
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '$')
                .collect();
            if name.is_empty() {
                return Err(err(format!("cannot read the exported name: {line}")));
            }
            names.push(name);
            body.push_str(rest);
        } else {
            body.push_str(line);
        }
        body.push('\n');
    }
    if names.is_empty() {
        // The entry module (the page's own script): a block of its own, nothing to hand on.
        return Ok(format!("// ---- {module}\n{{\n{body}}}\n"));
    }
    let list = names.join(", ");
    let mut out = String::with_capacity(body.len() + 200);
    let _ = write!(
        out,
        "// ---- {module}\nconst {{ {list} }} = (() => {{\n{body}return {{ {list} }};\n}})();\n"
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exports_become_the_scope_s_names_and_imports_go() {
        let a =
            "const hidden = 1;\nexport function f(x) { return x + hidden; }\nexport const K = 2;\n";
        let b = "import { f, K } from \"./a.js\";\nconst local = 3;\nexport class C {}\nconst v = f(K);\nexport { v as default };\n";
        let out = bundle(&[("a.js", a), ("b.js", b)]).expect("bundles");
        assert!(out.contains("const { f, K } = (() => {"), "{out}");
        assert!(out.contains("return { f, K };"), "{out}");
        assert!(out.contains("const { C, v } = (() => {"), "{out}");
        assert!(!out.contains("import "), "{out}");
        assert!(!out.lines().any(|l| l.starts_with("export ")), "{out}");
        assert!(out.contains("function f(x)"), "{out}");
    }

    #[test]
    fn exports_inside_a_block_comment_stay_comments() {
        let src = "/*\nexport function old() {}\n*/\nexport function f() {}\n";
        let out = bundle(&[("c.js", src)]).expect("bundles");
        assert!(out.starts_with("// ---- c.js\nconst { f } = "), "{out}");
        assert!(
            out.contains("/*\nexport function old() {}\n*/\nfunction f() {}"),
            "{out}"
        );
    }

    #[test]
    fn unknown_forms_are_refused_with_their_line() {
        let e = bundle(&[("x.js", "export default 3;\n")]).expect_err("refused");
        assert_eq!((e.module, e.line), ("x.js", 1));
        let e = bundle(&[("y.js", "import {\n  a,\n} from \"./a.js\";\n")]).expect_err("refused");
        assert!(e.problem.contains("one line"), "{e}");
        let entry = bundle(&[("z.js", "import { f } from \"./a.js\";\nconst a = f();\n")])
            .expect("an entry module");
        assert_eq!(entry, "// ---- z.js\n{\nconst a = f();\n}\n");
    }
}
