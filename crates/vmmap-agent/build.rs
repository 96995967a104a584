//! Compiles the C part of the agent: the variadic `execl*` functions, which
//! stable Rust cannot define. Links GCC's unwinder in.
fn main() {
    println!("cargo:rerun-if-changed=src/execl.c");
    cc::Build::new()
        .file("src/execl.c")
        .flag_if_supported("-fvisibility=default")
        .compile("vmmap_agent_execl");
    // Rust's std calls the `_Unwind_*` functions (panics, backtraces),
    // which it takes from libgcc_s.so.1: a traced C program then mapped
    // that library only for the agent, and counted it as its own. The
    // static copy (libgcc_eh.a, from the same GCC) resolves them inside
    // the agent, so the linker (`--as-needed`) drops libgcc_s; the
    // agent's export list keeps the copy's symbols hidden, and a program
    // that loads libgcc_s itself keeps its own. The agent's stacks never
    // use it (`unwind.rs` walks `.eh_frame` with gimli).
    println!("cargo:rustc-link-lib=static:+whole-archive=gcc_eh");
}
