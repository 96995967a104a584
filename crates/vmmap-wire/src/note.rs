//! The GNU build id of a loaded module, as the agent reads it from the
//! module's notes in memory and writes it in a MODULES message.

/// The GNU build id in a block of ELF notes (a PT_NOTE segment or a
/// `.note.gnu.build-id` section), if there is one.
pub fn find_build_id_note(mut notes: &[u8]) -> Option<&[u8]> {
    const NT_GNU_BUILD_ID: u32 = 3;
    let word = |b: &[u8], i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(b.get(i..i + 4)?.try_into().ok()?))
    };
    let align4 = |n: usize| (n + 3) & !3;
    while notes.len() >= 12 {
        let namesz = word(notes, 0)? as usize;
        let descsz = word(notes, 4)? as usize;
        let kind = word(notes, 8)?;
        let name_end = 12usize.checked_add(align4(namesz))?;
        let desc_end = name_end.checked_add(descsz)?;
        let name = notes.get(12..12 + namesz)?;
        let desc = notes.get(name_end..desc_end)?;
        if kind == NT_GNU_BUILD_ID && name == b"GNU\0" {
            return Some(desc);
        }
        notes = notes.get(align4(desc_end).min(notes.len())..)?;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], kind: u32, desc: &[u8]) -> Vec<u8> {
        let mut n = Vec::new();
        n.extend_from_slice(&(name.len() as u32).to_le_bytes());
        n.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        n.extend_from_slice(&kind.to_le_bytes());
        n.extend_from_slice(name);
        n.resize(n.len().next_multiple_of(4), 0);
        n.extend_from_slice(desc);
        n.resize(n.len().next_multiple_of(4), 0);
        n
    }

    #[test]
    fn finds_the_gnu_build_id_after_other_notes() {
        let mut notes = note(b"GNU\0", 1, &[0; 16]);
        notes.extend(note(b"Go\0", 3, b"other"));
        notes.extend(note(b"GNU\0", 3, &[0xab, 0xcd, 0xef]));
        assert_eq!(find_build_id_note(&notes), Some(&[0xab, 0xcd, 0xef][..]));
    }

    #[test]
    fn cut_or_absent_notes_give_none() {
        let notes = note(b"GNU\0", 3, &[1, 2, 3, 4]);
        assert_eq!(find_build_id_note(&notes[..notes.len() - 2]), None);
        assert_eq!(find_build_id_note(&note(b"GNU\0", 1, &[1])), None);
        assert_eq!(find_build_id_note(&[]), None);
    }
}
