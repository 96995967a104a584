//! Symbolisation of recorded return addresses to functions, files and
//! lines, inlined frames included (blazesym over DWARF and ELF symbols).
//!
//! A trace carries each module's path, build id and load bias, so it can
//! be symbolised later and on another machine: the file at the recorded
//! path is used only if its build id matches; otherwise the debug file is
//! looked up by build id (`.build-id/xx/rest.debug`) in the user's
//! directories and the distribution's `/usr/lib/debug`, and a file of the
//! same name in the user's directories is accepted when its build id
//! matches. What cannot be resolved stays `module+offset`, never an error.
//! Results are cached by (build id, offset) in the trace file itself (see
//! [`vmmap_core::format::CHUNK_SYMBOLS`]), so a second open costs nothing.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::debug_file::{self, DebugFile};
use super::decode::{ModuleInfo, TraceInfo};

/// One source-level frame: a function, and where in it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Frame {
    /// Function name (demangled), or `module+0xoffset` when unknown.
    pub function: String,
    /// Source file, when debug information has it.
    pub file: Option<String>,
    /// Line in `file`.
    pub line: Option<u32>,
    /// The function was inlined into its caller (the next frame out).
    pub inlined: bool,
}

impl Frame {
    /// `function (file:line)`, or just the function.
    pub fn label(&self, with_line: bool) -> String {
        match (&self.file, self.line, with_line) {
            (Some(f), Some(l), true) => format!("{} ({}:{l})", self.function, short_path(f)),
            _ => self.function.clone(),
        }
    }
}

/// The last two components of a path: enough to tell `src/a.c` from
/// `lib/a.c` without a screen-wide column.
pub fn short_path(p: &str) -> &str {
    let mut it = p.rmatch_indices('/');
    it.next();
    match it.next() {
        Some((i, _)) => &p[i + 1..],
        None => p,
    }
}

/// Where symbols are looked for, beyond the recorded paths.
#[derive(Clone, Debug, Default)]
pub struct SymbolOptions {
    /// The user's directories (VMMap's "Configure Symbols"): searched for
    /// `.build-id/` trees, files of the module's name and debug links.
    pub(crate) dirs: Vec<PathBuf>,
    /// Skip the distribution's debug directory (tests).
    pub(crate) no_system_dirs: bool,
}

impl SymbolOptions {
    /// The user's directories `dirs`, then those of `$VMMAP_SYMBOL_PATH`
    /// (colon-separated), as every front end reads them.
    pub fn with_env(mut dirs: Vec<PathBuf>) -> SymbolOptions {
        if let Some(p) = std::env::var_os("VMMAP_SYMBOL_PATH") {
            dirs.extend(std::env::split_paths(&p).filter(|p| !p.as_os_str().is_empty()));
        }
        SymbolOptions {
            dirs,
            no_system_dirs: false,
        }
    }
}

/// Cached frames of one module, keyed by its build id (or path when it
/// has none), as stored in the trace file.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CachedModule {
    /// Hex build id, or `path:` and the path.
    pub key: String,
    /// (link-time address looked up, frames innermost first).
    pub entries: Vec<(u64, Vec<Frame>)>,
}

/// Frames for return addresses, with the modules they came from.
#[derive(Default)]
pub struct Symbols {
    /// (image, return address) to frames, innermost first.
    frames: HashMap<(u32, u64), Vec<Frame>>,
    /// Per module key: link-time address to frames (cache contents and
    /// new results).
    by_module: HashMap<String, HashMap<u64, Vec<Frame>>>,
    /// Module keys with results not yet in the file's cache.
    fresh: Vec<String>,
    /// What could not be resolved and why, one line per module.
    pub(crate) notes: Vec<String>,
}

impl Symbols {
    /// Starts from cached results (the file's symbol chunks).
    pub(crate) fn from_cache(cached: impl IntoIterator<Item = CachedModule>) -> Symbols {
        let mut s = Symbols::default();
        for m in cached {
            s.by_module.entry(m.key).or_default().extend(m.entries);
        }
        s
    }

    /// Frames of a return address of process image `image`, innermost
    /// first; empty if it was never resolved.
    pub fn frames(&self, image: u32, addr: u64) -> &[Frame] {
        self.frames
            .get(&(image, addr))
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// One freshly resolved module, for tests of the cache's writing.
    #[cfg(test)]
    pub(crate) fn with_fresh(m: CachedModule) -> Symbols {
        let mut s = Symbols::from_cache([m.clone()]);
        s.fresh.push(m.key);
        s
    }

    /// Results computed by [`Symbols::resolve`] that the cache lacked.
    pub(crate) fn new_cache_entries(&self) -> Vec<CachedModule> {
        self.fresh
            .iter()
            .filter_map(|k| {
                let m = self.by_module.get(k)?;
                let mut entries: Vec<_> = m.iter().map(|(a, f)| (*a, f.clone())).collect();
                entries.sort_by_key(|e| e.0);
                Some(CachedModule {
                    key: k.clone(),
                    entries,
                })
            })
            .collect()
    }

    /// Resolves return addresses `(image, address)` against the trace's
    /// module lists.
    pub fn resolve(&mut self, info: &TraceInfo, addrs: &[(u32, u64)], opts: &SymbolOptions) {
        // Group by module: one symboliser call per module.
        let mut wanted: HashMap<usize, (u32, &ModuleInfo, Vec<u64>)> = HashMap::new();
        let mut modules: Vec<(u32, &ModuleInfo)> = Vec::new();
        for (image, _, list) in info.modules.iter().rev() {
            for m in list {
                modules.push((*image, m));
            }
        }
        for &(image, addr) in addrs {
            if self.frames.contains_key(&(image, addr)) {
                continue;
            }
            let found = modules
                .iter()
                .position(|(i, m)| *i == image && contains(m, addr));
            match found {
                Some(i) => wanted
                    .entry(i)
                    .or_insert_with(|| (image, modules[i].1, Vec::new()))
                    .2
                    .push(addr),
                None => {
                    self.frames.insert(
                        (image, addr),
                        vec![Frame {
                            function: format!("{addr:#x}"),
                            file: None,
                            line: None,
                            inlined: false,
                        }],
                    );
                }
            }
        }
        let symbolizer = blazesym::symbolize::Symbolizer::builder()
            .enable_code_info(true)
            .enable_inlined_fns(true)
            .enable_demangling(true)
            // blazesym opens by name what it finds in these: only those
            // no other user can change (vmmap's own look-up, `locate`,
            // searches every one, opening regular files only).
            .set_debug_dirs(Some(
                debug_dirs(opts)
                    .into_iter()
                    .filter_map(|d| std::path::absolute(d).ok())
                    .filter(|d| debug_file::fixed_dir(d)),
            ))
            .build();
        let mut keys: Vec<_> = wanted.into_iter().collect();
        keys.sort_by_key(|(i, _)| *i);
        for (_, (image, m, addrs)) in keys {
            let key = module_key(m);
            // Return addresses point after the call: look up the call.
            let lookups: Vec<u64> = addrs
                .iter()
                .map(|a| a.wrapping_sub(m.base).wrapping_sub(1))
                .collect();
            let cached = self.by_module.entry(key.clone()).or_default();
            let missing: Vec<u64> = lookups
                .iter()
                .copied()
                .filter(|a| !cached.contains_key(a))
                .collect();
            let mut degraded = HashMap::new();
            if !missing.is_empty() {
                let name = module_name(&m.path);
                let offset_frame = |a: u64| Frame {
                    function: format!("{name}+{:#x}", a.wrapping_add(1)),
                    file: None,
                    line: None,
                    inlined: false,
                };
                match symbolize_module(&symbolizer, m, &missing, opts) {
                    Ok(v) => {
                        for (a, frames) in missing.iter().zip(v) {
                            let frames = if frames.is_empty() {
                                vec![offset_frame(*a)]
                            } else {
                                frames
                            };
                            cached.insert(*a, frames);
                        }
                        if !self.fresh.contains(&key) {
                            self.fresh.push(key.clone());
                        }
                    }
                    // Not cached: the user may yet give the debug files.
                    Err(note) => {
                        self.notes.push(format!("{}: {note}", m.path));
                        degraded.extend(missing.iter().map(|a| (*a, vec![offset_frame(*a)])));
                    }
                }
            }
            for (addr, l) in addrs.iter().zip(&lookups) {
                if let Some(f) = cached.get(l).or_else(|| degraded.get(l)) {
                    self.frames.insert((image, *addr), f.clone());
                }
            }
        }
    }
}

fn contains(m: &ModuleInfo, addr: u64) -> bool {
    m.segments.iter().any(|&(vaddr, memsz, _, _)| {
        let lo = m.base.wrapping_add(vaddr);
        addr >= lo && addr < lo.wrapping_add(memsz)
    })
}

fn module_key(m: &ModuleInfo) -> String {
    if m.build_id.is_empty() {
        return format!("path:{}", m.path);
    }
    hex(&m.build_id)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn module_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

fn debug_dirs(opts: &SymbolOptions) -> Vec<PathBuf> {
    let mut v = opts.dirs.clone();
    if !opts.no_system_dirs {
        v.push(PathBuf::from("/usr/lib/debug"));
        v.push(PathBuf::from("/lib/debug"));
    }
    v
}

/// A module's file for blazesym: a regular file (`vmmap_core::regular`:
/// the paths come from the trace, and a trace may come from anyone), as
/// [`debug_file::readable`] makes it safe to read, named by its
/// descriptor (`/proc/self/fd/N`), for blazesym opens what it is given by
/// name. blazesym's file cache keys on device and inode, so a descriptor
/// number used again later is not taken for the same file. None: nothing
/// there to open.
fn open_module(p: &Path) -> Option<Result<DebugFile, String>> {
    let file = vmmap_core::regular::open(p).ok()?;
    Some(debug_file::readable(file))
}

/// The file to read a module's symbols from: the recorded path if its
/// build id matches, else a debug file found by build id or by name.
fn locate(m: &ModuleInfo, opts: &SymbolOptions) -> Result<DebugFile, String> {
    // The candidates in order, each with whether its build id must match.
    let recorded = Path::new(&m.path);
    let mut candidates = vec![(recorded.to_path_buf(), true)];
    if !m.build_id.is_empty() && m.build_id.len() > 1 {
        let id = hex(&m.build_id);
        for d in debug_dirs(opts) {
            let p = d
                .join(".build-id")
                .join(&id[..2])
                .join(format!("{}.debug", &id[2..]));
            candidates.push((p, false));
        }
    }
    let name = module_name(&m.path);
    for d in &opts.dirs {
        for p in [d.join(name), d.join(format!("{name}.debug"))] {
            candidates.push((p, true));
        }
    }
    // Why a file that was there could not be read, if none could be.
    let mut refused = None;
    for (p, check) in candidates {
        let r = match open_module(&p) {
            None => continue,
            Some(Err(e)) => {
                refused.get_or_insert(e);
                continue;
            }
            Some(Ok(r)) => r,
        };
        let ok = !check
            || match blazesym::helper::read_elf_build_id(&r.by_fd) {
                Ok(Some(id)) => m.build_id.is_empty() || *id == *m.build_id,
                Ok(None) => m.build_id.is_empty(),
                Err(_) => false,
            };
        if ok {
            return Ok(r);
        }
    }
    if let Some(e) = refused {
        Err(e)
    } else if recorded.is_file() {
        Err("the file at this path has another build id than the traced one, and no debug file with the traced build id was found (give its directory with --symbols)".into())
    } else {
        Err("not found on this machine (give a directory holding it with --symbols)".into())
    }
}

/// Frames (innermost first) for link-time addresses of one module.
fn symbolize_module(
    symbolizer: &blazesym::symbolize::Symbolizer,
    m: &ModuleInfo,
    addrs: &[u64],
    opts: &SymbolOptions,
) -> Result<Vec<Vec<Frame>>, String> {
    use blazesym::symbolize::{source, Input, Symbolized};
    let mut file = locate(m, opts)?;
    // A copy's hidden debug link, followed here as blazesym would have
    // (vmmap's look-up opens regular files only, and checks the CRC).
    if let Some(debug) = file
        .link
        .as_ref()
        .and_then(|link| debug_file::linked(Path::new(&m.path), link, &debug_dirs(opts)))
    {
        file = debug;
    }
    let src = source::Source::Elf(source::Elf::new(&file.by_fd));
    let out = symbolizer
        .symbolize(&src, Input::VirtOffset(addrs))
        .map_err(|e| format!("cannot read its symbols: {e}"))?;
    Ok(out
        .into_iter()
        .map(|s| match s {
            Symbolized::Sym(sym) => {
                // blazesym gives the outer function with the location of
                // its inlined call, then each inlined function with the
                // location within it: reverse into innermost first.
                let loc = |c: Option<&blazesym::symbolize::CodeInfo<'_>>| {
                    c.map(|c| (c.to_path().to_string_lossy().into_owned(), c.line))
                };
                let mut frames = vec![{
                    let l = loc(sym.code_info.as_deref());
                    Frame {
                        function: sym.name.to_string(),
                        file: l.as_ref().map(|l| l.0.clone()),
                        line: l.and_then(|l| l.1),
                        inlined: false,
                    }
                }];
                for f in sym.inlined.iter() {
                    let l = loc(f.code_info.as_ref());
                    frames.push(Frame {
                        function: f.name.to_string(),
                        file: l.as_ref().map(|l| l.0.clone()),
                        line: l.and_then(|l| l.1),
                        inlined: true,
                    });
                }
                frames.reverse();
                frames
            }
            Symbolized::Unknown(_) => Vec::new(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_short_paths() {
        let f = Frame {
            function: "work".into(),
            file: Some("/src/app/lib/a.c".into()),
            line: Some(12),
            inlined: false,
        };
        assert_eq!(f.label(true), "work (lib/a.c:12)");
        assert_eq!(f.label(false), "work");
        assert_eq!(short_path("a.c"), "a.c");
        assert_eq!(short_path("/a.c"), "/a.c");
    }

    #[test]
    fn unknown_modules_degrade_to_offsets() {
        let info = TraceInfo {
            modules: vec![(
                0,
                0,
                vec![ModuleInfo {
                    base: 0x1000,
                    path: "/nonexistent/libgone.so".into(),
                    build_id: vec![1, 2, 3, 4],
                    segments: vec![(0, 0x2000, 0, 5)],
                }],
            )],
            ..TraceInfo::default()
        };
        let mut s = Symbols::default();
        let opts = SymbolOptions {
            dirs: vec![],
            no_system_dirs: true,
        };
        s.resolve(&info, &[(0, 0x1234), (0, 0x9999_0000)], &opts);
        assert_eq!(s.frames(0, 0x1234)[0].function, "libgone.so+0x234");
        assert_eq!(s.frames(0, 0x9999_0000)[0].function, "0x99990000");
        assert_eq!(s.notes.len(), 1);
        assert!(s.notes[0].contains("not found"), "{:?}", s.notes);
        // Nothing to cache: a later run may be given the debug files.
        assert!(s.new_cache_entries().is_empty());
    }
}
