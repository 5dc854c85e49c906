//! The same settings written in TOML (a file whose name ends in `.toml`):
//!
//! ```toml
//! control = "uds:///var/run/hastmonctl"
//! [key]
//! algorithm = "SHA256"
//! secret = "s3cr3t"
//! [resource.r1]
//! exec = "/usr/local/etc/hastmon/r1.sh"
//! [resource.r1.on.nodeA]
//! remote = ["tcp4://10.0.0.2"]
//! priority = 1
//! ```
//!
//! Every table is walked into the same [`Document`] the hastmon.conf parser
//! builds, through the same [`Block::set`], so both syntaxes accept exactly
//! the same settings with the same checks.

use std::ops::Range;

use ::toml::Spanned;
use ::toml::de::{DeTable, DeValue};

use super::document::{
    At, Block, Document, KeyDoc, Level, Located, OnBlock, Pos, ResourceDoc, Word, check_name,
    takes_list,
};

struct Source<'a> {
    text: &'a str,
}

impl Source<'_> {
    fn pos(&self, span: Range<usize>) -> Pos {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() as u32 + 1;
        let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) as u32 + 1;
        Pos { line, col }
    }

    fn word(&self, key: &Spanned<std::borrow::Cow<'_, str>>) -> Word {
        At {
            value: key.get_ref().to_string(),
            pos: self.pos(key.span()),
        }
    }

    fn err(&self, span: Range<usize>, msg: impl Into<String>) -> Located {
        Located::new(self.pos(span), msg)
    }
}

pub fn parse(text: &str) -> Result<Document, Located> {
    let src = Source { text };
    let table = DeTable::parse(text).map_err(|e| {
        let span = e.span().unwrap_or(0..0);
        let msg = e
            .message()
            .lines()
            .next()
            .unwrap_or("invalid TOML")
            .to_string();
        src.err(span, format!("invalid TOML: {msg}"))
    })?;
    let mut doc = Document::default();
    for (k, v) in table.get_ref() {
        let kw = src.word(k);
        match kw.value.as_str() {
            "on" => on_sections(&src, v, Level::GlobalOn, &mut doc.on)?,
            "resource" => {
                for (name, body) in sub_table(&src, v, "resource")? {
                    let name = src.word(name);
                    check_name("resource", &name)?;
                    let mut res = ResourceDoc {
                        name,
                        block: Block::default(),
                        on: Vec::new(),
                    };
                    let body = sub_table(&src, body, &res.name.value)?;
                    for (k, v) in body {
                        let kw = src.word(k);
                        if kw.value == "on" {
                            on_sections(&src, v, Level::ResourceOn, &mut res.on)?;
                        } else {
                            statement(&src, &mut res.block, Level::Resource, &kw, v)?;
                        }
                    }
                    doc.resources.push(res);
                }
            }
            _ => statement(&src, &mut doc.global, Level::Global, &kw, v)?,
        }
    }
    Ok(doc)
}

fn sub_table<'a, 'i>(
    src: &Source<'_>,
    v: &'a Spanned<DeValue<'i>>,
    what: &str,
) -> Result<&'a DeTable<'i>, Located> {
    v.get_ref()
        .as_table()
        .ok_or_else(|| src.err(v.span(), format!("'{what}' must be a table")))
}

fn on_sections(
    src: &Source<'_>,
    v: &Spanned<DeValue<'_>>,
    level: Level,
    list: &mut Vec<OnBlock>,
) -> Result<(), Located> {
    for (node, body) in sub_table(src, v, "on")? {
        let node = src.word(node);
        check_name("node", &node)?;
        let mut block = Block::default();
        for (k, v) in sub_table(src, body, &node.value)? {
            statement(src, &mut block, level, &src.word(k), v)?;
        }
        list.push(OnBlock { node, block });
    }
    Ok(())
}

fn statement(
    src: &Source<'_>,
    block: &mut Block,
    level: Level,
    kw: &Word,
    v: &Spanned<DeValue<'_>>,
) -> Result<(), Located> {
    if kw.value == "key" {
        let key: &mut KeyDoc = block.open_key(level, kw)?;
        for (k, v) in sub_table(src, v, "key")? {
            let kw = src.word(k);
            let values = values(src, &kw, v)?;
            key.set(&kw, &values)?;
        }
        return Ok(());
    }
    let values = values(src, kw, v)?;
    block.set(level, kw, &values)
}

/// A TOML value as the words the statement takes.
fn values(src: &Source<'_>, kw: &Word, v: &Spanned<DeValue<'_>>) -> Result<Vec<Word>, Located> {
    let list = takes_list(&kw.value);
    match v.get_ref() {
        DeValue::Array(items) if list => items.iter().map(|i| scalar(src, kw, i)).collect(),
        DeValue::Array(_) => Err(src.err(
            v.span(),
            format!("'{}' takes one value, not an array", kw.value),
        )),
        _ => Ok(vec![scalar(src, kw, v)?]),
    }
}

fn scalar(src: &Source<'_>, kw: &Word, v: &Spanned<DeValue<'_>>) -> Result<Word, Located> {
    let pos = src.pos(v.span());
    let text = match v.get_ref() {
        DeValue::String(s) => s.to_string(),
        DeValue::Integer(i) if i.radix() == 10 => i.as_str().replace('_', ""),
        DeValue::Float(f) => f.as_str().replace('_', ""),
        other => {
            return Err(Located::new(
                pos,
                format!(
                    "'{}' does not take a {} value",
                    kw.value,
                    match other {
                        DeValue::Integer(_) => "non-decimal integer",
                        other => other.type_str(),
                    }
                ),
            ));
        }
    };
    Ok(At { value: text, pos })
}
