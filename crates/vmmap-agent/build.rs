//! Compiles the C part of the agent: the variadic `execl*` functions, which
//! stable Rust cannot define.
fn main() {
    println!("cargo:rerun-if-changed=src/execl.c");
    cc::Build::new()
        .file("src/execl.c")
        .flag_if_supported("-fvisibility=default")
        .compile("vmmap_agent_execl");
}
