//! From the document to this node's settings: node matching, inheritance,
//! defaults and the checks that need the whole file.
//!
//! Precedence, independent of the order of statements in the file:
//! resource `on <this node>` > resource > top-level `on <this node>` >
//! top level > built-in default.

use super::address::Address;
use super::document::{At, Block, Document, Located, OnBlock, Pos, Settings};
use super::{Config, Key, Resource, defaults};
use crate::types::Role;

/// The names under which this node appears in `on` sections.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeNames {
    names: Vec<String>,
    uuid: Option<String>,
}

impl NodeNames {
    /// Exactly one name, as given with `-n`.
    pub fn exact(name: &str) -> NodeNames {
        NodeNames {
            names: vec![name.to_string()],
            uuid: None,
        }
    }

    /// The full host name, its first label, and the host UUID if any.
    /// Matching is exact: `node1` never matches `on node10` (Q40).
    pub fn from_host(hostname: &str, uuid: Option<&str>) -> NodeNames {
        let mut names = vec![hostname.to_string()];
        if let Some(i) = hostname.find('.')
            && i > 0
        {
            names.push(hostname[..i].to_string());
        }
        NodeNames {
            names,
            uuid: uuid.filter(|u| !u.is_empty()).map(str::to_string),
        }
    }

    pub fn matches(&self, node: &str) -> bool {
        self.names.iter().any(|n| n == node)
            || self
                .uuid
                .as_deref()
                .is_some_and(|u| u.eq_ignore_ascii_case(node))
    }

    /// The name this node goes by in messages and dumps.
    pub fn primary(&self) -> &str {
        self.names.last().map(String::as_str).unwrap_or("")
    }

    pub fn describe(&self) -> String {
        let mut all: Vec<&str> = self.names.iter().map(String::as_str).collect();
        all.extend(self.uuid.as_deref());
        all.join(", ")
    }
}

/// Resolves the document for one node.
pub fn resolve(doc: &Document, node: &NodeNames) -> Result<Config, Located> {
    let global_on: Vec<&OnBlock> = doc
        .on
        .iter()
        .filter(|o| node.matches(&o.node.value))
        .collect();
    let mut resources = Vec::new();
    let mut skipped = Vec::new();
    for res in &doc.resources {
        let mine: Vec<&OnBlock> = res
            .on
            .iter()
            .filter(|o| node.matches(&o.node.value))
            .collect();
        if mine.is_empty() {
            skipped.push(res.name.value.clone());
            continue;
        }
        let layers = Layers {
            res_on: &mine,
            res: &res.block,
            global_on: &global_on,
            global: &doc.global,
        };
        let name = &res.name;
        let exec = layers.pick(|s| &s.exec)?.map(|e| e.value.clone());
        let Some(exec) = exec else {
            return Err(Located::new(
                name.pos,
                format!(
                    "resource '{}' has no exec (set it in the resource, its 'on' section, or at the top level)",
                    name.value
                ),
            ));
        };
        let mut remote: Vec<At<Address>> = Vec::new();
        for on in &mine {
            for r in &on.block.remote {
                if let Some(first) = remote.iter().find(|x| x.value == r.value) {
                    return Err(Located::new(
                        r.pos,
                        format!(
                            "remote address '{}' is listed twice for this node (first at line {})",
                            r.value, first.pos.line
                        ),
                    ));
                }
                remote.push(r.clone());
            }
        }
        if remote.is_empty() {
            return Err(Located::new(
                name.pos,
                format!(
                    "resource '{}' has no remote for this node (write 'remote ADDRESS' or 'remote none' in its 'on' section)",
                    name.value
                ),
            ));
        }
        let mut friends: Vec<Address> = res.block.friends.iter().map(|f| f.value.clone()).collect();
        friends.extend(
            mine.iter()
                .flat_map(|o| o.block.friends.iter().map(|f| f.value.clone())),
        );
        let timeout = layers.value(|s| &s.timeout, defaults::TIMEOUT)?;
        let heartbeat_interval = layers.value(|s| &s.heartbeat_interval, defaults::HEARTBEAT)?;
        let complaint_count = layers.value(|s| &s.complaint_count, defaults::COMPLAINT_COUNT)?;
        let silence_limit = layers.value(
            |s| &s.silence_limit,
            heartbeat_interval * complaint_count + timeout,
        )?;
        resources.push(Resource {
            name: name.value.clone(),
            exec,
            remote: remote.into_iter().map(|r| r.value).collect(),
            friends,
            priority: layers.value(|s| &s.priority, defaults::PRIORITY)?,
            role_on_start: layers.value(|s| &s.role_on_start, Role::Init)?,
            timeout,
            attempts: layers.value(|s| &s.attempts, defaults::ATTEMPTS)?,
            heartbeat_interval,
            complaint_count,
            complaint_interval: layers
                .value(|s| &s.complaint_interval, defaults::COMPLAINT_INTERVAL)?,
            hook_timeout: layers.value(|s| &s.hook_timeout, defaults::HOOK_TIMEOUT)?,
            silence_limit,
            key: key(&res.block, &doc.global)?,
        });
    }
    // A node that takes part in no resource has nothing to do: as 0.3.4,
    // refuse the file (a top-level `on` section alone does not count).
    if !doc.resources.is_empty() && resources.is_empty() {
        let first = &doc.resources[0].name;
        return Err(Located::new(
            first.pos,
            format!(
                "No resource {} configuration for this node (acceptable node names: {}).",
                first.value,
                node.describe()
            ),
        ));
    }
    let control = single(&global_on, |b| &b.control)?
        .or(doc.global.control.as_ref())
        .map(|a| a.value.clone());
    let listen = single(&global_on, |b| &b.listen)?
        .or(doc.global.listen.as_ref())
        .map(|a| a.value.clone());
    let mut friends: Vec<Address> = doc.global.friends.iter().map(|f| f.value.clone()).collect();
    friends.extend(
        global_on
            .iter()
            .flat_map(|o| o.block.friends.iter().map(|f| f.value.clone())),
    );
    Ok(Config {
        node: node.primary().to_string(),
        control: control.unwrap_or_else(defaults::control),
        listen: listen.unwrap_or_else(defaults::listen),
        friends,
        resources,
        skipped,
    })
}

/// The four places a per-resource setting can come from, most specific first.
struct Layers<'a> {
    res_on: &'a [&'a OnBlock],
    res: &'a Block,
    global_on: &'a [&'a OnBlock],
    global: &'a Block,
}

impl<'a> Layers<'a> {
    fn pick<T>(
        &self,
        field: impl Fn(&'a Settings) -> &'a Option<At<T>>,
    ) -> Result<Option<&'a At<T>>, Located> {
        Ok(single(self.res_on, |b| field(&b.settings))?
            .or(field(&self.res.settings).as_ref())
            .or(single(self.global_on, |b| field(&b.settings))?)
            .or(field(&self.global.settings).as_ref()))
    }

    fn value<T: Clone + 'a>(
        &self,
        field: impl Fn(&'a Settings) -> &'a Option<At<T>>,
        default: T,
    ) -> Result<T, Located> {
        Ok(self
            .pick(field)?
            .map(|a| a.value.clone())
            .unwrap_or(default))
    }
}

/// A setting from the `on` sections that match this node; two of them
/// setting it (say `on node1` and `on node1.example.com`) is ambiguous.
fn single<'a, T>(
    blocks: &[&'a OnBlock],
    field: impl Fn(&'a Block) -> &'a Option<At<T>>,
) -> Result<Option<&'a At<T>>, Located> {
    let mut found: Option<&At<T>> = None;
    for b in blocks {
        if let Some(v) = field(&b.block) {
            if let Some(first) = found {
                return Err(Located::new(
                    v.pos,
                    format!(
                        "this setting is also made for this node at line {}; which one applies is ambiguous",
                        first.pos.line
                    ),
                ));
            }
            found = Some(v);
        }
    }
    Ok(found)
}

/// A resource key inherits each missing field from the top-level key.
fn key(res: &Block, global: &Block) -> Result<Option<Key>, Located> {
    let (r, g) = (res.key.as_ref(), global.key.as_ref());
    let algorithm = r
        .and_then(|k| k.algorithm.as_ref())
        .or(g.and_then(|k| k.algorithm.as_ref()));
    let secret = r
        .and_then(|k| k.secret.as_ref())
        .or(g.and_then(|k| k.secret.as_ref()));
    let pos = r.or(g).map(|k| k.pos).unwrap_or(Pos::default());
    match (algorithm, secret) {
        (None, None) => Ok(None),
        (Some(a), Some(s)) => Ok(Some(Key {
            algorithm: a.value.clone(),
            secret: s.value.clone(),
        })),
        (None, Some(_)) => Err(Located::new(pos, "key has a secret but no algorithm")),
        (Some(_), None) => Err(Located::new(
            pos,
            "key has an algorithm but no secret (an empty secret protects nothing)",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_match_exactly_never_by_prefix() {
        let n = NodeNames::from_host("node1.example.com", Some("ABCD-1"));
        assert!(n.matches("node1"));
        assert!(n.matches("node1.example.com"));
        assert!(n.matches("abcd-1"));
        for other in ["node10", "node1x", "node1.other.org", "node", "example"] {
            assert!(!n.matches(other), "{other}");
        }
        let n = NodeNames::from_host(".hidden", None);
        assert!(n.matches(".hidden") && !n.matches(""));
    }
}
