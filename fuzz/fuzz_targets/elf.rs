//! ELF header and program header reader.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmmap_core::elf;

fuzz_target!(|data: &[u8]| {
    if let Ok(e) = elf::parse(data) {
        assert!(matches!(e.class, 32 | 64));
        let _ = (e.arch(), e.type_name());
        // Every PT_LOAD entry read lies inside the input.
        assert!(e.loads.len() * 32 <= data.len());
    }
    // The launcher's checks (PT_INTERP, a defined malloc) never panic.
    let _ = elf::program_facts(data);
    // vmmap attach's symbol lookup (dlopen in the target's libc) neither.
    let _ = elf::dynamic_symbol(data, "dlopen");
    // Section headers, read through offsets as from a file: never panics,
    // and no read asks for an absurd length.
    let mut read = |off: u64, len: usize| -> Option<Vec<u8>> {
        assert!(len <= 4 << 20);
        let off = usize::try_from(off).ok()?;
        let end = off.checked_add(len)?.min(data.len());
        Some(data.get(off..end)?.to_vec())
    };
    if let Ok(sections) = elf::sections(&mut read) {
        for s in sections {
            let _ = s.is_loaded();
        }
    }
});
