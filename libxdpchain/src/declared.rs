//! Chains files: the chains a machine should run, as TOML, read whole
//! before anything changes. Each `[[interface]]` names an interface (and
//! its network namespace) and lists its components; every object is read
//! and configured here, so a bad file fails with its file, line and
//! component before `apply` (apply.rs) touches a chain.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use crate::attach::AttachMode;
use crate::component::{Component, Verdicts};
use crate::error::{Error, Result};
use crate::limits;
use crate::ns::Netns;
use crate::owner::Owner;
use crate::plan::{Counting, Mode};
use crate::store::Layout;

/// Where the chains of a machine are declared unless told otherwise.
pub const DEFAULT_CHAINS_FILE: &str = "/etc/xdpchain/chains.toml";

/// The owner of the components that the chains file `file` declares
/// without naming one: the file's name (printable, cut to an owner name's
/// length), so that `apply` never takes for its own what someone added by
/// hand under the command's name, nor what another file declares.
pub fn default_owner(file: &Path) -> String {
    let name = file
        .file_name()
        .map_or_else(|| "chains".into(), |n| n.to_string_lossy());
    name.chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '_' })
        .take(crate::owner::MAX_OWNER_NAME)
        .collect()
}

/// A chains file is text an operator writes: 1 MiB is plenty.
const MAX_FILE: u64 = 1 << 20;

/// A place in a chains file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub file: PathBuf,
    pub line: usize,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// The chain one interface should run.
#[derive(Debug)]
pub struct DeclaredChain {
    pub interface: String,
    /// A name in /run/netns, or a path; None: this process's namespace.
    pub netns: Option<String>,
    /// How the chain is made if `apply` creates it; a running chain keeps
    /// its own.
    pub mode: Option<Mode>,
    pub attach: AttachMode,
    pub layout: Option<Layout>,
    pub counting: Counting,
    /// Bound to the interface though no component reads RX metadata.
    pub device_bound: bool,
    pub components: Vec<DeclaredComponent>,
    pub at: Location,
}

impl DeclaredChain {
    /// The interface, with its namespace if it has one.
    pub fn label(&self) -> String {
        match &self.netns {
            Some(ns) => format!("{} (netns {ns})", self.interface),
            None => self.interface.clone(),
        }
    }
}

/// A component as declared, read and configured.
#[derive(Debug)]
pub struct DeclaredComponent {
    pub component: Component,
    pub owner: String,
    pub at: Location,
}

impl DeclaredComponent {
    /// How messages name it: its location, program and object.
    pub fn describe(&self) -> String {
        format!("{}: component {}", self.at, self.component.label())
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileDoc {
    #[serde(default)]
    interface: Vec<Spanned<InterfaceDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InterfaceDoc {
    name: String,
    netns: Option<String>,
    mode: Option<String>,
    attach: Option<String>,
    layout: Option<String>,
    counters: Option<bool>,
    #[serde(default, rename = "device-bound")]
    device_bound: bool,
    #[serde(default)]
    component: Vec<Spanned<ComponentDoc>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct ComponentDoc {
    path: PathBuf,
    program: Option<String>,
    priority: Option<i32>,
    continue_on: Option<Vec<String>>,
    owner: Option<String>,
    #[serde(default)]
    traceable: bool,
    #[serde(default)]
    globals: BTreeMap<String, GlobalValue>,
    #[serde(default)]
    map_sizes: BTreeMap<String, u32>,
}

/// An integer, or text as [`Component::with_global_text`] reads it.
#[derive(Deserialize)]
#[serde(untagged)]
enum GlobalValue {
    Int(i64),
    Text(String),
}

/// Which of the chains a file declares [`read_chains`] reads: all by
/// default. Only the objects of those are read, so that an interface that
/// appears is not held up by another's broken object.
#[derive(Clone, Copy, Debug, Default)]
pub struct Selection<'a> {
    /// Only those of this network namespace: a name in /run/netns or a
    /// path, which names the namespace a declaration's `netns` names.
    pub netns: Option<&'a str>,
    /// Only the chain of this interface (of `netns`, without it of this
    /// process's namespace).
    pub interface: Option<&'a str>,
}

impl Selection<'_> {
    fn takes(&self, netns: Option<&str>, interface: &str) -> bool {
        let netns_ok = match (self.netns, netns) {
            (Some(want), Some(declared)) => same_netns(want, declared),
            (Some(_), None) => false,
            (None, declared) => self.interface.is_none() || declared.is_none(),
        };
        netns_ok && self.interface.is_none_or(|i| i == interface)
    }
}

/// Whether network namespace names `a` and `b` (names or paths) stand for
/// one namespace: the same file, or files of the same namespace.
fn same_netns(a: &str, b: &str) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(a), Ok(b)) = (Netns::path(a), Netns::path(b)) else {
        return false;
    };
    let id = |p: &Path| std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()));
    a == b || id(&a).is_some_and(|a| Some(a) == id(&b))
}

/// The chains that `path` declares: one file, or every `*.toml` file of a
/// directory (in name order); those `select` takes. An interface is
/// declared once.
pub fn read_chains(path: &Path, select: Selection) -> Result<Vec<DeclaredChain>> {
    let files = match std::fs::metadata(path) {
        // Its files are checked with the directories above them.
        Ok(m) if m.is_dir() => {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::os(format!("read {}", path.display()), e))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            files
        }
        Ok(_) => vec![path.to_path_buf()],
        Err(e) => return Err(Error::os(format!("read {}", path.display()), e)),
    };
    let mut chains: Vec<DeclaredChain> = Vec::new();
    let mut seen: HashMap<(Option<String>, String), Location> = HashMap::new();
    for file in files {
        for chain in parse_chains(&read_text(&file)?, &file, select)? {
            let key = (chain.netns.clone(), chain.interface.clone());
            if let Some(first) = seen.get(&key) {
                return Err(Error::ChainsFile {
                    at: chain.at.to_string(),
                    reason: format!("interface {} is declared already, at {first}", key.1),
                });
            }
            seen.insert(key, chain.at.clone());
            chains.push(chain);
        }
    }
    Ok(chains)
}

fn read_text(file: &Path) -> Result<String> {
    use std::io::Read;
    let f = open_trusted(file, |what| Error::ChainsFile {
        at: file.display().to_string(),
        reason: format!("{what}, not a chains file"),
    })?;
    let mut text = String::new();
    f.take(MAX_FILE + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::os(format!("read {}", file.display()), e))?;
    if text.len() as u64 > MAX_FILE {
        return Err(Error::TooLarge {
            name: file.display().to_string(),
            what: "a chains file".into(),
            limit: MAX_FILE,
        });
    }
    Ok(text)
}

/// Opens `path`, a chains file or an object one names, if no user but root
/// (or the caller) can change it: root loads what it says into the kernel,
/// at boot unattended. The file and every directory above it, symbolic links
/// resolved, must belong to root or the caller and be writable by no one
/// else; a sticky directory (as /tmp) counts as safe, since there others
/// cannot replace what is not theirs. `refuse` names what else than a
/// regular file it is.
fn open_trusted(path: &Path, refuse: impl FnOnce(&str) -> Error) -> Result<std::fs::File> {
    use std::os::unix::fs::MetadataExt;
    let os = |op: &str, p: &Path, e| Error::os(format!("{op} {}", p.display()), e);
    let check = |meta: &std::fs::Metadata, at: &Path| {
        let (owner, mode) = (meta.uid(), meta.mode());
        let open_to_group = mode & 0o020 != 0 && meta.gid() != 0;
        let open_to_all = mode & 0o002 != 0 && !(meta.is_dir() && mode & 0o1000 != 0);
        if (owner != 0 && owner != crate::sys::euid()) || open_to_group || open_to_all {
            return Err(Error::Untrusted {
                path: at.display().to_string(),
                reason: format!(
                    "owned by uid {owner} (gid {}) with mode {:o}: other users could change what root loads",
                    meta.gid(),
                    mode & 0o7777
                ),
            });
        }
        Ok(())
    };
    let real = std::fs::canonicalize(path).map_err(|e| os("open", path, e))?;
    for dir in real.ancestors().skip(1) {
        check(
            &std::fs::metadata(dir).map_err(|e| os("stat", dir, e))?,
            dir,
        )?;
    }
    let file = limits::open_regular(&real, refuse)?;
    check(&file.metadata().map_err(|e| os("stat", &real, e))?, &real)?;
    Ok(file)
}

/// The chains `text`, the contents of `file`, declares, those `select`
/// takes; the objects they name are read (relative paths from the file's
/// directory).
pub fn parse_chains(text: &str, file: &Path, select: Selection) -> Result<Vec<DeclaredChain>> {
    let at = |offset: usize| Location {
        file: file.to_path_buf(),
        line: 1 + text[..offset.min(text.len())].matches('\n').count(),
    };
    let doc: FileDoc = toml::from_str(text).map_err(|e| Error::ChainsFile {
        at: at(e.span().map_or(0, |s| s.start)).to_string(),
        reason: e.message().to_string(),
    })?;
    let base = file.parent().unwrap_or(Path::new("."));
    let owner = default_owner(file);
    doc.interface
        .into_iter()
        .filter(|i| select.takes(i.get_ref().netns.as_deref(), &i.get_ref().name))
        .map(|i| {
            let iface_at = at(i.span().start);
            let i = i.into_inner();
            let bad = |reason: String| Error::ChainsFile {
                at: iface_at.to_string(),
                reason: format!("interface {}: {reason}", i.name),
            };
            let mode = i.mode.as_deref().map(Mode::parse).transpose();
            let layout = i.layout.as_deref().map(Layout::parse).transpose();
            let attach = match i.attach.as_deref() {
                None | Some("native") => AttachMode::Native,
                Some("skb") => AttachMode::Skb,
                Some(other) => {
                    return Err(bad(format!("attach '{other}' (native or skb)")));
                }
            };
            let components = i
                .component
                .into_iter()
                .map(|c| {
                    let at = at(c.span().start);
                    let c = c.into_inner();
                    let what = match &c.program {
                        Some(p) => format!("component {}:{p}", c.path.display()),
                        None => format!("component {}", c.path.display()),
                    };
                    component(c, base, &owner)
                        .map(|(component, owner)| DeclaredComponent {
                            component,
                            owner,
                            at: at.clone(),
                        })
                        .map_err(|e| Error::Declared {
                            at: at.to_string(),
                            what,
                            source: Box::new(e),
                        })
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(DeclaredChain {
                mode: mode.map_err(|e| bad(e.to_string()))?,
                layout: layout.map_err(|e| bad(e.to_string()))?,
                device_bound: i.device_bound,
                attach,
                counting: match i.counters {
                    None => Counting::Auto,
                    Some(true) => Counting::On,
                    Some(false) => Counting::Off,
                },
                interface: i.name,
                netns: i.netns,
                components,
                at: iface_at,
            })
        })
        .collect()
}

/// The component `doc` declares, configured, and its owner (`owner` where
/// it names none).
fn component(doc: ComponentDoc, base: &Path, owner: &str) -> Result<(Component, String)> {
    let owner = doc.owner.unwrap_or_else(|| owner.into());
    Owner::named(&owner)?;
    // Absolute, so that the component's recorded object is the same
    // whichever directory the file was applied from.
    let path = std::path::absolute(base.join(&doc.path))
        .map_err(|e| Error::os(format!("resolve {}", doc.path.display()), e))?;
    let name = path.display().to_string();
    let bytes = limits::read_open(open_trusted(&path, limits::refuse_object(&name))?, &name)?;
    let mut c = Component::from_bytes(bytes, &name, doc.program.as_deref())?;
    for (name, value) in &doc.globals {
        c = match value {
            GlobalValue::Int(n) => c.with_global_int(name, i128::from(*n))?,
            GlobalValue::Text(t) => c.with_global_text(name, t)?,
        };
    }
    for (name, n) in &doc.map_sizes {
        c = c.with_map_size(name, *n)?;
    }
    if let Some(p) = doc.priority {
        c = c.with_priority(p);
    }
    if let Some(v) = doc.continue_on {
        c = c.with_continue_on(Verdicts::parse(&v.join(","))?);
    }
    Ok((c.with_traceable(doc.traceable), owner))
}

#[cfg(test)]
mod tests {
    use super::{default_owner, AttachMode, Mode, Owner, Result, Selection};
    use std::path::Path;

    #[test]
    fn a_files_components_are_owned_by_its_name() {
        assert_eq!(
            default_owner(Path::new("/etc/xdpchain/chains.toml")),
            "chains.toml"
        );
        assert_eq!(default_owner(Path::new("10 veth.toml")), "10_veth.toml");
        assert_eq!(default_owner(Path::new("/")), "chains");
        let long = format!("{}.toml", "x".repeat(100));
        assert_eq!(default_owner(Path::new(&long)).len(), crate::MAX_OWNER_NAME);
        assert!(Owner::named(&default_owner(Path::new("é.toml"))).is_ok());
    }

    #[test]
    fn a_selection_takes_the_chains_of_its_namespace_and_interface() {
        let all = Selection::default();
        let one = Selection {
            interface: Some("eth0"),
            ..all
        };
        let blue = Selection {
            netns: Some("blue"),
            ..all
        };
        let blue_one = Selection {
            netns: Some("/run/netns/blue"),
            interface: Some("eth0"),
        };
        // (selection, declared netns, declared interface, taken)
        for (s, netns, iface, taken) in [
            (all, None, "eth0", true),
            (all, Some("blue"), "eth0", true),
            (one, None, "eth0", true),
            (one, None, "eth1", false),
            (one, Some("blue"), "eth0", false),
            (blue, None, "eth0", false),
            (blue, Some("blue"), "eth1", true),
            (blue, Some("/run/netns/blue"), "eth1", true),
            (blue, Some("red"), "eth1", false),
            (blue_one, Some("blue"), "eth0", true),
            (blue_one, Some("blue"), "eth1", false),
            (blue_one, None, "eth0", false),
        ] {
            assert_eq!(s.takes(netns, iface), taken, "{s:?} {netns:?} {iface}");
        }
    }

    /// A directory of this test's own that holds the test component as
    /// `fw.o`, removed when dropped.
    struct Dir(std::path::PathBuf);

    impl Dir {
        fn new(name: &str) -> Dir {
            let dir = std::env::temp_dir().join(format!("xdpchain-{name}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir(&dir).unwrap();
            let component = include_bytes!(concat!(env!("OUT_DIR"), "/test_component.bpf.o"));
            std::fs::write(dir.join("fw.o"), component).unwrap();
            Dir(dir)
        }
    }

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn parse(dir: &Dir, text: &str) -> Result<Vec<super::DeclaredChain>> {
        super::parse_chains(text, &dir.0.join("10-fw.toml"), Selection::default())
    }

    #[test]
    fn a_file_declares_configured_components_owned_by_its_name() {
        let dir = Dir::new("declared");
        let text = r#"
[[interface]]
name = "eth0"
attach = "skb"
mode = "static"
device-bound = true

[[interface.component]]
path = "fw.o"
program = "xdp_first"
priority = 10
continue-on = ["pass", "tx"]
globals = { port = 80 }

[[interface.component]]
path = "fw.o"
program = "xdp_second"
owner = "probe"
"#;
        let chains = parse(&dir, text).unwrap();
        let c = &chains[0];
        assert_eq!(
            (c.interface.as_str(), c.attach, c.mode),
            ("eth0", AttachMode::Skb, Some(Mode::Static))
        );
        assert!(c.device_bound);
        let first = &c.components[0];
        assert_eq!(
            (first.owner.as_str(), first.component.priority()),
            ("10-fw.toml", 10)
        );
        assert_eq!(first.component.continue_on().to_string(), "pass,tx");
        assert_eq!(first.at.line, 8);
        assert_eq!(c.components[1].owner, "probe");
        // The object by the path it was read from.
        let fw = dir.0.join("fw.o");
        let described = format!(
            "{}: component {}:xdp_second",
            dir.0.join("10-fw.toml:15").display(),
            fw.display()
        );
        assert_eq!(c.components[1].describe(), described);
    }

    /// Every mistake names its file and line (and component), before
    /// anything is read further.
    #[test]
    fn mistakes_name_their_line() {
        let dir = Dir::new("mistakes");
        let header = "[[interface]]\nname = \"eth0\"\n";
        for (body, line, says) in [
            ("colour = \"red\"\n", 3, "unknown field `colour`"),
            ("attach = \"hw\"\n", 1, "interface eth0: attach 'hw' (native or skb)"),
            ("mode = \"fast\"\n", 1, "unknown mode 'fast'"),
            ("[[interface.component]]\npath = \"gone.o\"\n", 3, "component gone.o: open"),
            ("[[interface.component]]\npath = \"fw.o\"\nprogram = \"xdp_first\"\ncontinue-on = [\"maybe\"]\n", 3, "unknown XDP verdict 'maybe'"),
            ("[[interface.component]]\npath = \"fw.o\"\n", 3, "several XDP programs"),
        ] {
            let e = parse(&dir, &format!("{header}{body}")).unwrap_err().to_string();
            assert!(e.contains(&format!("10-fw.toml:{line}: ")), "{body}: {e}");
            assert!(e.contains(says), "{body}: {e}");
        }
    }
}
