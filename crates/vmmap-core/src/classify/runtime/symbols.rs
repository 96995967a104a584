//! Allocators linked statically into the executable: no shared object of
//! theirs is mapped, but their entry points are in its symbol tables.
//!
//! This runs on every snapshot, and an executable's string tables can be
//! tens of MiB (node's are 12), so the file is asked cheaply first: its
//! GNU hash table says in a few small reads whether it exports one of the
//! allocators' own API names (`mallocx` is jemalloc's, `tc_malloc`
//! tcmalloc's, `mi_malloc` mimalloc's) or defines `malloc` itself, which a
//! program using glibc's malloc never does (the linker exports it so that
//! it interposes libc's). Only then, or for a static executable without
//! dynamic symbols, are the `.symtab` strings read, in chunks, to say
//! which allocator it is.

use super::allocator::Kind;

const SHT_SYMTAB: u32 = 2;
const SHT_GNU_HASH: u32 = 0x6fff_fff6;
/// Most hash-chain entries followed for one name.
const MAX_CHAIN: u32 = 4096;
/// Bytes of string table read at most per table: an unstripped binary's
/// `.strtab` can be tens of MiB, and this runs on every snapshot.
const MAX_TABLE: u64 = 32 << 20;
const CHUNK: usize = 1 << 20;
const MAX_SECTIONS: usize = 4096;

/// The allocator API names, with their allocator. jemalloc may carry a
/// prefix (`je_` in some builds, `_rjem_` in Rust's tikv-jemallocator).
const NAMES: [(&[u8], Kind); 8] = [
    (b"mallocx", Kind::Jemalloc),
    (b"je_mallocx", Kind::Jemalloc),
    (b"_rjem_mallocx", Kind::Jemalloc),
    (b"tc_malloc", Kind::Tcmalloc),
    (b"tc_malloc_size", Kind::Tcmalloc),
    (b"mi_malloc", Kind::Mimalloc),
    (b"mi_heap_malloc", Kind::Mimalloc),
    (b"_mi_heap_malloc", Kind::Mimalloc),
];

/// The allocator an ELF64 little-endian file defines, and the name that
/// showed it, reading the file through `read(offset, buf)`.
pub(super) fn linked_allocator(
    read: &mut dyn FnMut(u64, &mut [u8]) -> bool,
) -> Option<(Kind, &'static str)> {
    let (sh, _) = section_headers(read)?;
    let count = u16::try_from(sh.len() / 64).ok()?;
    let section = |i: usize| sh.get(i * 64..(i + 1) * 64);
    let find =
        |t: u32| (0..usize::from(count)).find(|&i| section(i).is_some_and(|s| u32_at(s, 4) == t));
    if let Some(g) = find(SHT_GNU_HASH) {
        let table = || -> Option<DynTable> {
            let gnu = section(g)?;
            let dynsym = section(u32_at(gnu, 40) as usize)?;
            let dynstr = section(u32_at(dynsym, 40) as usize)?;
            Some(DynTable {
                hash: u64_at(gnu, 24),
                syms: u64_at(dynsym, 24),
                strs: u64_at(dynstr, 24),
            })
        };
        let t = table()?;
        for (name, kind) in NAMES {
            if t.defines(read, name) {
                return Some((kind, std::str::from_utf8(name).unwrap_or("?")));
            }
        }
        if !t.defines(read, b"malloc") {
            return None;
        }
    }
    let symtab = section(find(SHT_SYMTAB)?)?;
    let strtab = section(u32_at(symtab, 40) as usize)?;
    let (offset, size) = (u64_at(strtab, 24), u64_at(strtab, 32).min(MAX_TABLE));
    scan_table(read, offset, size)
}

fn u32_at(b: &[u8], o: usize) -> u32 {
    u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]])
}

fn u64_at(b: &[u8], o: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[o..o + 8]);
    u64::from_le_bytes(w)
}

/// The section header table of an ELF64 little-endian file and the index
/// of its section-name table.
fn section_headers(read: &mut dyn FnMut(u64, &mut [u8]) -> bool) -> Option<(Vec<u8>, usize)> {
    let mut h = [0u8; 64];
    if !read(0, &mut h) || &h[..4] != b"\x7fELF" || h[4] != 2 || h[5] != 1 {
        return None;
    }
    let u16_at = |o: usize| u16::from_le_bytes([h[o], h[o + 1]]);
    let (shoff, entsize, count, names) =
        (u64_at(&h, 0x28), u16_at(0x3a), u16_at(0x3c), u16_at(0x3e));
    if shoff == 0 || entsize != 64 || count == 0 || usize::from(count) > MAX_SECTIONS {
        return None;
    }
    let mut sh = vec![0u8; usize::from(count) * 64];
    read(shoff, &mut sh).then_some((sh, usize::from(names)))
}

/// The file offset and size of the section called `name` ([`crate::elf::sections`]
/// over the inspector's exact reads).
pub(super) fn section_named(
    read: &mut dyn FnMut(u64, &mut [u8]) -> bool,
    name: &[u8],
) -> Option<(u64, u64)> {
    let mut read_len = |offset: u64, len: usize| {
        let mut b = vec![0u8; len];
        read(offset, &mut b).then_some(b)
    };
    crate::elf::sections(&mut read_len)
        .ok()?
        .into_iter()
        .find(|s| s.name.as_bytes() == name)
        .map(|s| (s.offset, s.size))
}

/// The values (addresses as linked) of the `.symtab` symbols called
/// `names`, in that order; `None` for each one missing, and `None` for the
/// whole when the file has no symbol table (stripped) or is not ELF64 LE.
/// The tables are read whole, up to [`MAX_TABLE`] bytes each: this runs
/// only for executables that are known to need it (Go programs).
pub(super) fn symbol_values(
    read: &mut dyn FnMut(u64, &mut [u8]) -> bool,
    names: &[&[u8]],
) -> Option<Vec<Option<u64>>> {
    let (sh, _) = section_headers(read)?;
    let section = |i: usize| sh.get(i * 64..(i + 1) * 64);
    let symtab = sh.chunks_exact(64).find(|s| u32_at(s, 4) == SHT_SYMTAB)?;
    let strtab = section(u32_at(symtab, 40) as usize)?;
    let load = |read: &mut dyn FnMut(u64, &mut [u8]) -> bool, s: &[u8]| -> Option<Vec<u8>> {
        let size = usize::try_from(u64_at(s, 32).min(MAX_TABLE)).ok()?;
        let mut b = vec![0u8; size];
        read(u64_at(s, 24), &mut b).then_some(b)
    };
    let syms = load(read, symtab)?;
    let strs = load(read, strtab)?;
    let mut out = vec![None; names.len()];
    for sym in syms.chunks_exact(24) {
        let at = u32_at(sym, 0) as usize;
        let Some(name) = strs.get(at..).and_then(|n| n.split(|&c| c == 0).next()) else {
            continue;
        };
        if let Some(k) = names.iter().position(|n| *n == name) {
            out[k] = Some(u64_at(sym, 8));
        }
    }
    Some(out)
}

/// The ELF type (`e_type`: 2 executable, 3 shared object or PIE).
pub(super) fn elf_type(read: &mut dyn FnMut(u64, &mut [u8]) -> bool) -> Option<u16> {
    let mut h = [0u8; 64];
    read(0, &mut h).then_some(())?;
    crate::elf::parse(&h).ok().map(|i| i.file_type)
}

/// Where the dynamic symbols' GNU hash table, symbols and names are.
struct DynTable {
    hash: u64,
    syms: u64,
    strs: u64,
}

impl DynTable {
    /// Whether the executable defines (not merely imports) `name`, by a
    /// GNU hash lookup: `buckets[h % n]` gives the first symbol of the
    /// chain; chain entries hold each symbol's hash with bit 0 marking the
    /// chain's end.
    fn defines(&self, read: &mut dyn FnMut(u64, &mut [u8]) -> bool, name: &[u8]) -> bool {
        let h = name.iter().fold(5381u32, |h, &c| {
            h.wrapping_mul(33).wrapping_add(u32::from(c))
        });
        let mut head = [0u8; 16];
        if !read(self.hash, &mut head) {
            return false;
        }
        let word = |b: &[u8], o: usize| u32::from_le_bytes([b[o], b[o + 1], b[o + 2], b[o + 3]]);
        let (nbuckets, symoffset, bloom_words) = (word(&head, 0), word(&head, 4), word(&head, 8));
        if nbuckets == 0 {
            return false;
        }
        // Offsets come from the file: wrap rather than overflow; a wrong
        // offset only makes a read fail or compare other bytes.
        let buckets = self.hash.wrapping_add(16 + u64::from(bloom_words) * 8);
        let chains = buckets.wrapping_add(u64::from(nbuckets) * 4);
        let mut b = [0u8; 4];
        if !read(buckets.wrapping_add(u64::from(h % nbuckets) * 4), &mut b) {
            return false;
        }
        let first = word(&b, 0);
        if first < symoffset {
            return false;
        }
        for i in first..first.saturating_add(MAX_CHAIN) {
            if !read(chains.wrapping_add(u64::from(i - symoffset) * 4), &mut b) {
                return false;
            }
            let ch = word(&b, 0);
            if ch | 1 == h | 1 && self.is_defined(read, i, name) {
                return true;
            }
            if ch & 1 == 1 {
                break;
            }
        }
        false
    }

    /// Whether dynamic symbol `i` is `name` and defined in this file.
    fn is_defined(
        &self,
        read: &mut dyn FnMut(u64, &mut [u8]) -> bool,
        i: u32,
        name: &[u8],
    ) -> bool {
        let mut sym = [0u8; 24];
        if !read(self.syms.wrapping_add(u64::from(i) * 24), &mut sym) {
            return false;
        }
        let st_name = u32::from_le_bytes([sym[0], sym[1], sym[2], sym[3]]);
        let shndx = u16::from_le_bytes([sym[6], sym[7]]);
        let mut got = vec![0u8; name.len() + 1];
        shndx != 0
            && read(self.strs.wrapping_add(u64::from(st_name)), &mut got)
            && got[..name.len()] == *name
            && got[name.len()] == 0
    }
}

/// Looks for the names in a NUL-separated string table, chunk by chunk,
/// carrying a name cut at a chunk's end over to the next.
fn scan_table(
    read: &mut dyn FnMut(u64, &mut [u8]) -> bool,
    offset: u64,
    size: u64,
) -> Option<(Kind, &'static str)> {
    let mut carry: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; CHUNK];
    let mut at = 0u64;
    while at < size {
        let n = (size - at).min(CHUNK as u64) as usize;
        if !read(offset.wrapping_add(at), &mut buf[..n]) {
            return None;
        }
        at += n as u64;
        let chunk = &buf[..n];
        let Some(last) = chunk.iter().rposition(|&c| c == 0) else {
            // No name ends here: the carried name only grows, and past the
            // longest name it can match nothing, so a bounded prefix will do.
            let room = 64usize.saturating_sub(carry.len());
            carry.extend_from_slice(&chunk[..chunk.len().min(room.max(1))]);
            continue;
        };
        let (whole, tail) = (&chunk[..last], &chunk[last + 1..]);
        let mut names = whole.split(|&c| c == 0);
        if let Some(first) = names.next() {
            carry.extend_from_slice(first);
            if let Some(hit) = lookup(&carry) {
                return Some(hit);
            }
        }
        for name in names {
            if let Some(hit) = lookup(name) {
                return Some(hit);
            }
        }
        carry.clear();
        carry.extend_from_slice(tail);
    }
    lookup(&carry)
}

fn lookup(name: &[u8]) -> Option<(Kind, &'static str)> {
    NAMES
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(n, k)| (*k, std::str::from_utf8(n).unwrap_or("?")))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A minimal ELF64: header, one string table, one symbol table linked
    /// to it, and the section headers at the end.
    fn elf(strings: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; 64];
        f[..6].copy_from_slice(b"\x7fELF\x02\x01");
        let str_off = f.len() as u64;
        f.extend_from_slice(strings);
        let shoff = f.len() as u64;
        let mut null = [0u8; 64];
        let mut strtab = [0u8; 64];
        strtab[4..8].copy_from_slice(&3u32.to_le_bytes());
        strtab[24..32].copy_from_slice(&str_off.to_le_bytes());
        strtab[32..40].copy_from_slice(&(strings.len() as u64).to_le_bytes());
        let mut symtab = [0u8; 64];
        symtab[4..8].copy_from_slice(&SHT_SYMTAB.to_le_bytes());
        symtab[40..44].copy_from_slice(&1u32.to_le_bytes());
        null[0] = 0;
        for s in [null, strtab, symtab] {
            f.extend_from_slice(&s);
        }
        f[0x28..0x30].copy_from_slice(&shoff.to_le_bytes());
        f[0x3a..0x3c].copy_from_slice(&64u16.to_le_bytes());
        f[0x3c..0x3e].copy_from_slice(&3u16.to_le_bytes());
        f
    }

    /// The file is the target's: any damage is a "not found", never a panic.
    #[test]
    fn damaged_files_never_panic() {
        let f = elf(b"\0main\0mallocx\0");
        for i in 0..f.len() {
            for x in [0x01u8, 0x80, 0xff] {
                let mut d = f.clone();
                d[i] ^= x;
                let _ = scan(&d);
                let mut read = |o: u64, b: &mut [u8]| {
                    let o = o as usize;
                    d.get(o..o.saturating_add(b.len()))
                        .map(|s| b.copy_from_slice(s))
                        .is_some()
                };
                let _ = section_named(&mut read, b".go.buildinfo");
                let _ = symbol_values(&mut read, &[b"runtime.allgs"]);
            }
        }
    }

    #[test]
    fn sections_by_name() {
        // The string table doubles as the section-name table: section 2
        // (the symbol table) is called ".go.buildinfo" here.
        let mut f = elf(b"\0.go.buildinfo\0mallocx\0");
        let shoff = u64_at(&f, 0x28) as usize;
        f[shoff + 2 * 64..shoff + 2 * 64 + 4].copy_from_slice(&1u32.to_le_bytes());
        f[0x3e..0x40].copy_from_slice(&1u16.to_le_bytes());
        let mut read = |o: u64, b: &mut [u8]| {
            let o = o as usize;
            f.get(o..o + b.len())
                .map(|s| b.copy_from_slice(s))
                .is_some()
        };
        assert_eq!(section_named(&mut read, b".go.buildinfo"), Some((0, 0)));
        assert_eq!(section_named(&mut read, b".go"), None, "whole names only");
        assert_eq!(section_named(&mut read, b".data"), None);
    }

    #[test]
    fn symbol_values_by_name() {
        // One symbol, named at offset 1 of the string table, value 0x529430.
        let mut f = elf(b"\0runtime.allgs\0");
        let shoff = u64_at(&f, 0x28) as usize;
        let syms_at = f.len() as u64;
        let mut sym = [0u8; 24];
        sym[0..4].copy_from_slice(&1u32.to_le_bytes());
        sym[8..16].copy_from_slice(&0x529430u64.to_le_bytes());
        f.extend_from_slice(&sym);
        let symtab = shoff + 2 * 64;
        f[symtab + 24..symtab + 32].copy_from_slice(&syms_at.to_le_bytes());
        f[symtab + 32..symtab + 40].copy_from_slice(&24u64.to_le_bytes());
        let mut read = |o: u64, b: &mut [u8]| {
            let o = o as usize;
            f.get(o..o + b.len())
                .map(|s| b.copy_from_slice(s))
                .is_some()
        };
        assert_eq!(
            symbol_values(&mut read, &[b"runtime.allglen", b"runtime.allgs"]),
            Some(vec![None, Some(0x529430)])
        );
    }

    fn scan(file: &[u8]) -> Option<(Kind, &'static str)> {
        let mut read = |o: u64, b: &mut [u8]| {
            let o = o as usize;
            match file.get(o..o.saturating_add(b.len())) {
                Some(s) => {
                    b.copy_from_slice(s);
                    true
                }
                None => false,
            }
        };
        linked_allocator(&mut read)
    }

    #[test]
    fn names_in_the_symbol_strings() {
        assert_eq!(
            scan(&elf(b"\0main\0mallocx\0free\0")),
            Some((Kind::Jemalloc, "mallocx"))
        );
        assert_eq!(
            scan(&elf(b"\0mi_malloc\0")),
            Some((Kind::Mimalloc, "mi_malloc"))
        );
        assert_eq!(scan(&elf(b"\0malloc\0free\0my_mallocx\0")), None);
        assert_eq!(scan(b"not elf"), None);
        let mut cut = elf(b"\0mallocx\0");
        cut.truncate(70);
        assert_eq!(scan(&cut), None, "section headers cut off");
    }

    #[test]
    fn a_name_cut_by_a_chunk_boundary_is_found() {
        let mut strings = vec![b'x'; CHUNK - 4];
        strings[0] = 0;
        strings.extend_from_slice(b"\0tc_malloc\0");
        assert_eq!(scan(&elf(&strings)), Some((Kind::Tcmalloc, "tc_malloc")));
    }
}
