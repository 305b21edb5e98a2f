//! A small XML tree for JMX files, built with quick-xml, keeping each element's byte offset so
//! that a malformed file is reported at its line and column.
//!
//! Why a tree: JMeter's format pairs each element with the `<hashTree>` that follows it (its
//! children), and scopes (headers, timers, assertions) are resolved by walking that tree.

use super::error::ImportError;
use super::text::line_col;
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;

/// An XML element.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Node {
    pub name: String,
    pub attrs: Vec<(String, String)>,
    pub children: Vec<Node>,
    /// The element's own text (concatenated text and CDATA children).
    pub text: String,
}

impl Node {
    pub fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

fn element(e: &BytesStart<'_>, text: &str, pos: usize) -> Result<Node, ImportError> {
    let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
    let mut attrs = Vec::new();
    for a in e.attributes() {
        let a = a.map_err(|err| malformed(text, pos, &err.to_string()))?;
        let key = String::from_utf8_lossy(a.key.as_ref()).into_owned();
        let value = a
            .unescape_value()
            .map_err(|err| malformed(text, pos, &err.to_string()))?
            .into_owned();
        attrs.push((key, value));
    }
    Ok(Node {
        name,
        attrs,
        ..Node::default()
    })
}

fn malformed(text: &str, pos: usize, message: &str) -> ImportError {
    let (line, column) = line_col(text, pos);
    ImportError::Malformed {
        format: "XML",
        line,
        column,
        message: message.to_string(),
    }
}

/// Parses a document into its root element.
pub(crate) fn parse(text: &str) -> Result<Node, ImportError> {
    let mut reader = Reader::from_str(text);
    reader.config_mut().check_end_names = true;
    let mut stack: Vec<Node> = vec![Node::default()];
    loop {
        let before = reader.buffer_position() as usize;
        let event = reader
            .read_event()
            .map_err(|e| malformed(text, reader.error_position() as usize, &e.to_string()))?;
        match event {
            Event::Start(e) => stack.push(element(&e, text, before)?),
            Event::Empty(e) => {
                let node = element(&e, text, before)?;
                if let Some(parent) = stack.last_mut() {
                    parent.children.push(node);
                }
            }
            Event::End(_) => {
                let node = stack.pop().unwrap_or_default();
                match stack.last_mut() {
                    Some(parent) => parent.children.push(node),
                    None => return Err(malformed(text, before, "unexpected closing tag")),
                }
            }
            Event::Text(t) => {
                let s = t
                    .unescape()
                    .map_err(|e| malformed(text, before, &e.to_string()))?;
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(&s);
                }
            }
            Event::CData(c) => {
                if let Some(n) = stack.last_mut() {
                    n.text.push_str(&String::from_utf8_lossy(&c));
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if stack.len() > 1 {
        let open = stack.last().map(|n| n.name.clone()).unwrap_or_default();
        return Err(malformed(
            text,
            text.len(),
            &format!("the document ends before <{open}> is closed"),
        ));
    }
    let mut doc = stack.pop().unwrap_or_default();
    doc.children
        .pop()
        .filter(|_| doc.children.is_empty())
        .ok_or_else(|| malformed(text, 0, "expected exactly one root element"))
}
