//! seccomp filter evaluation (vmmap_seccomp): any bytes as a filter.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vmmap_seccomp::{first_refused, run, verdict, Data, Insn, AUDIT_ARCH_X86_64};

fuzz_target!(|data: &[u8]| {
    let prog = Insn::parse(data);
    assert_eq!(prog.len(), data.len() / 8);
    // Runs end (jumps only go forward) and never panic, on any call.
    for nr in [0, 9, 10, 157, 435, -1] {
        let d = Data {
            nr,
            arch: AUDIT_ARCH_X86_64,
            ip: 0,
            args: [data.len() as u64, 1, 2, 3, 4, 5],
        };
        let one = run(&prog, &d);
        assert_eq!(verdict(std::slice::from_ref(&prog), &d), one);
    }
    let _ = first_refused(std::slice::from_ref(&prog), true, false);
    let _ = first_refused(&[prog], true, true);
});
