//! The hastmon.conf syntax: lexer and parser into a [`Document`].
//!
//! Compatible with what 0.3.4 accepted, minus its accidents: characters
//! outside the word alphabet are errors instead of being echoed and skipped,
//! line and column numbers are 1-based, numbers may stand where a name is
//! expected, names may equal keywords, and quoted strings (`"a b"`, `'x'`)
//! are an extension that cannot change the meaning of an old file (the
//! original skipped the quote characters themselves).

use super::document::{
    At, Block, Document, KeyDoc, Level, Located, OnBlock, Pos, ResourceDoc, Word, check_name,
    is_keyword, takes_list,
};

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word { text: String, quoted: bool },
    Open,
    Close,
    Eof,
}

#[derive(Clone, Debug)]
struct Token {
    tok: Tok,
    pos: Pos,
}

fn word_char(c: char) -> bool {
    // The original's STR alphabet, plus brackets and '%' for IPv6 literals.
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '/' | ':' | '[' | ']' | '%')
}

fn lex(text: &str) -> Result<Vec<Token>, Located> {
    let mut out = Vec::new();
    let mut pos = Pos { line: 1, col: 1 };
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        let start = pos;
        match c {
            '\n' => {
                chars.next();
                pos.line += 1;
                pos.col = 1;
                continue;
            }
            ' ' | '\t' | '\r' => {
                chars.next();
                pos.col += 1;
                continue;
            }
            '#' => {
                while chars.peek().is_some_and(|&c| c != '\n') {
                    chars.next();
                    pos.col += 1;
                }
                continue;
            }
            '{' | '}' => {
                chars.next();
                pos.col += 1;
                out.push(Token {
                    tok: if c == '{' { Tok::Open } else { Tok::Close },
                    pos: start,
                });
                continue;
            }
            '"' | '\'' => {
                chars.next();
                pos.col += 1;
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None | Some('\n') => {
                            return Err(Located::new(start, "unterminated quoted string"));
                        }
                        Some(q) if q == c => {
                            pos.col += 1;
                            break;
                        }
                        Some('\\') if c == '"' => {
                            pos.col += 1;
                            match chars.next() {
                                Some(e @ ('"' | '\\')) => {
                                    s.push(e);
                                    pos.col += 1;
                                }
                                _ => {
                                    return Err(Located::new(
                                        pos,
                                        "only \\\" and \\\\ are escapes in a quoted string",
                                    ));
                                }
                            }
                        }
                        Some(ch) if ch.is_control() && ch != '\t' => {
                            return Err(Located::new(pos, "control character in a quoted string"));
                        }
                        Some(ch) => {
                            s.push(ch);
                            pos.col += 1;
                        }
                    }
                }
                out.push(Token {
                    tok: Tok::Word {
                        text: s,
                        quoted: true,
                    },
                    pos: start,
                });
                continue;
            }
            c if word_char(c) => {
                let mut s = String::new();
                while let Some(&c) = chars.peek() {
                    if !word_char(c) {
                        break;
                    }
                    s.push(c);
                    chars.next();
                    pos.col += 1;
                }
                out.push(Token {
                    tok: Tok::Word {
                        text: s,
                        quoted: false,
                    },
                    pos: start,
                });
                continue;
            }
            other => {
                return Err(Located::new(
                    start,
                    format!("unexpected character {other:?}"),
                ));
            }
        }
    }
    out.push(Token { tok: Tok::Eof, pos });
    Ok(out)
}

struct Parser {
    toks: Vec<Token>,
    next: usize,
}

/// Parses hastmon.conf text.
pub fn parse(text: &str) -> Result<Document, Located> {
    let mut p = Parser {
        toks: lex(text)?,
        next: 0,
    };
    let mut doc = Document::default();
    let Document {
        global,
        on,
        resources,
    } = &mut doc;
    p.block(Level::Global, global, Some(on), Some(resources), None)?;
    Ok(doc)
}

impl Parser {
    fn peek(&self) -> &Token {
        &self.toks[self.next]
    }

    fn bump(&mut self) -> Token {
        let t = self.toks[self.next].clone();
        if t.tok != Tok::Eof {
            self.next += 1;
        }
        t
    }

    /// Statements until the closing brace (or end of file at the top level).
    /// `opened` is the keyword that opened this block, for error messages.
    fn block(
        &mut self,
        level: Level,
        block: &mut Block,
        mut on: Option<&mut Vec<OnBlock>>,
        mut resources: Option<&mut Vec<ResourceDoc>>,
        opened: Option<&Word>,
    ) -> Result<(), Located> {
        loop {
            let t = self.bump();
            let keyword = match t.tok {
                Tok::Eof => {
                    return match opened {
                        None => Ok(()),
                        Some(w) => Err(Located::new(
                            w.pos,
                            format!("'{}' section is not closed (missing '}}')", w.value),
                        )),
                    };
                }
                Tok::Close if opened.is_some() => return Ok(()),
                Tok::Close => return Err(Located::new(t.pos, "unexpected '}'")),
                Tok::Open => return Err(Located::new(t.pos, "unexpected '{'")),
                Tok::Word { quoted: true, text } => {
                    return Err(Located::new(
                        t.pos,
                        format!("expected a keyword, found \"{text}\""),
                    ));
                }
                Tok::Word { text, .. } => At {
                    value: text,
                    pos: t.pos,
                },
            };
            match (
                keyword.value.as_str(),
                resources.as_deref_mut(),
                on.as_deref_mut(),
            ) {
                ("resource", Some(list), _) => self.resource(&keyword, list)?,
                ("on", _, Some(list)) => {
                    let inner = if level == Level::Global {
                        Level::GlobalOn
                    } else {
                        Level::ResourceOn
                    };
                    self.on_block(&keyword, inner, list)?;
                }
                ("key", ..) => {
                    let key = block.open_key(level, &keyword)?;
                    self.expect_open(&keyword)?;
                    self.key_block(key, &keyword)?;
                }
                ("resource" | "on", ..) => {
                    // Misplaced: let the shared placement rules explain.
                    block.set(level, &keyword, &[])?;
                }
                _ => {
                    let values = self.values(&keyword);
                    block.set(level, &keyword, &values)?;
                }
            }
        }
    }

    fn resource(&mut self, keyword: &Word, list: &mut Vec<ResourceDoc>) -> Result<(), Located> {
        let name = self.name(keyword)?;
        check_name("resource", &name)?;
        if let Some(first) = list.iter().find(|r| r.name.value == name.value) {
            return Err(Located::new(
                name.pos,
                format!(
                    "resource '{}' is defined twice (first at line {})",
                    name.value, first.name.pos.line
                ),
            ));
        }
        self.expect_open(keyword)?;
        let mut res = ResourceDoc {
            name,
            block: Block::default(),
            on: Vec::new(),
        };
        let ResourceDoc { block, on, .. } = &mut res;
        self.block(Level::Resource, block, Some(on), None, Some(keyword))?;
        list.push(res);
        Ok(())
    }

    fn on_block(
        &mut self,
        keyword: &Word,
        level: Level,
        list: &mut Vec<OnBlock>,
    ) -> Result<(), Located> {
        let node = self.name(keyword)?;
        check_name("node", &node)?;
        if let Some(first) = list.iter().find(|o| o.node.value == node.value) {
            return Err(Located::new(
                node.pos,
                format!(
                    "duplicate 'on {}' section (first at line {})",
                    node.value, first.node.pos.line
                ),
            ));
        }
        self.expect_open(keyword)?;
        let mut block = Block::default();
        self.block(level, &mut block, None, None, Some(keyword))?;
        list.push(OnBlock { node, block });
        Ok(())
    }

    fn key_block(&mut self, key: &mut KeyDoc, opened: &Word) -> Result<(), Located> {
        loop {
            let t = self.bump();
            match t.tok {
                Tok::Close => return Ok(()),
                Tok::Eof => {
                    return Err(Located::new(
                        opened.pos,
                        "'key' section is not closed (missing '}')",
                    ));
                }
                Tok::Open => return Err(Located::new(t.pos, "unexpected '{'")),
                Tok::Word { text, quoted } => {
                    let keyword = At {
                        value: text,
                        pos: t.pos,
                    };
                    if quoted {
                        return Err(Located::new(
                            t.pos,
                            format!("expected a keyword, found \"{}\"", keyword.value),
                        ));
                    }
                    let values = self.values(&keyword);
                    key.set(&keyword, &values)?;
                }
            }
        }
    }

    /// The name after `resource` or `on`: any word, keywords included.
    fn name(&mut self, keyword: &Word) -> Result<Word, Located> {
        match self.peek().tok.clone() {
            Tok::Word { text, .. } => {
                let pos = self.bump().pos;
                Ok(At { value: text, pos })
            }
            _ => Err(Located::new(
                self.peek().pos,
                format!("'{}' needs a name", keyword.value),
            )),
        }
    }

    fn expect_open(&mut self, keyword: &Word) -> Result<(), Located> {
        let t = self.bump();
        match t.tok {
            Tok::Open => Ok(()),
            _ => Err(Located::new(
                t.pos,
                format!("expected '{{' after '{}'", keyword.value),
            )),
        }
    }

    /// The values of a statement. A list runs until the next keyword or
    /// brace. A single value may equal a keyword only on the keyword's own
    /// line, so a forgotten value is reported instead of swallowing the
    /// next statement.
    fn values(&mut self, keyword: &Word) -> Vec<Word> {
        let mut out = Vec::new();
        let list = takes_list(&keyword.value);
        while let Tok::Word { text, quoted } = &self.peek().tok {
            let pos = self.peek().pos;
            let is_kw = !quoted && is_keyword(text);
            let same_line = pos.line == keyword.pos.line;
            let take = if list {
                !is_kw
            } else if out.is_empty() {
                !is_kw || same_line
            } else {
                // A second value is taken only to report it as one too many.
                !is_kw && same_line
            };
            if !take {
                break;
            }
            out.push(At {
                value: text.clone(),
                pos,
            });
            self.bump();
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> (u32, u32, String) {
        let e = parse(text).expect_err(text);
        (e.pos.line, e.pos.col, e.msg)
    }

    #[test]
    fn lexer_positions_are_one_based() {
        let (l, c, m) = err("\n\n  bogus 1\n");
        assert_eq!((l, c), (3, 3));
        assert!(m.contains("unknown keyword 'bogus'"), "{m}");
    }

    #[test]
    fn stray_characters_are_errors_not_echoed() {
        let (l, c, m) = err("timeout 5;\n");
        assert_eq!((l, c), (1, 10));
        assert!(m.contains("unexpected character ';'"), "{m}");
    }

    #[test]
    fn quotes_and_crlf_keep_the_old_meaning() {
        let doc = parse("resource \"r1\" {\r\n exec '/bin/x'\r\n}\r\n").unwrap();
        assert_eq!(doc.resources[0].name.value, "r1");
        assert_eq!(
            doc.resources[0].block.settings.exec.as_ref().unwrap().value,
            "/bin/x"
        );
    }

    #[test]
    fn numbers_and_keywords_can_be_names() {
        let doc = parse("resource 1 { on primary { remote none } }").unwrap();
        assert_eq!(doc.resources[0].name.value, "1");
        assert_eq!(doc.resources[0].on[0].node.value, "primary");
        let doc = parse("key { algorithm SHA256 secret 12345 }").unwrap();
        assert_eq!(doc.global.key.unwrap().secret.unwrap().value, "12345");
    }

    #[test]
    fn forgotten_value_does_not_swallow_the_next_statement() {
        let (l, _, m) = err("exec\ntimeout 5\n");
        assert_eq!(l, 1);
        assert!(m.contains("'exec' needs a value"), "{m}");
    }

    #[test]
    fn unterminated_sections_name_their_opening() {
        let (l, c, m) = err("resource r1 {\n  on a {\n");
        assert_eq!((l, c), (2, 3));
        assert!(m.contains("'on' section is not closed"), "{m}");
        let (l, _, m) = err("key {\n algorithm MD5\n");
        assert_eq!(l, 1);
        assert!(m.contains("'key' section is not closed"), "{m}");
    }

    #[test]
    fn lists_end_at_the_next_keyword() {
        let doc = parse("resource r { on a { remote 10.0.0.1 10.0.0.2 priority 3 } }").unwrap();
        let on = &doc.resources[0].on[0].block;
        assert_eq!(on.remote.len(), 2);
        assert_eq!(on.settings.priority.as_ref().unwrap().value, 3);
    }
}
