//! `vmmap explain`: definitions of types and columns, and why a region
//! has its type.

use std::io::{self, Write};
use std::path::Path;

use vmmap_core::collect::{self, Options};
use vmmap_core::figures::Column;
use vmmap_core::model::MemoryType;

use crate::target::parse_address;
use crate::{address, output_error, resolve, Failure};

/// `vmmap explain PID ADDRESS`: why the region at an address has its type.
pub(crate) fn explain_address(target: &str, text: &str, proc_root: &Path) -> Result<(), Failure> {
    let addr = parse_address(text)?;
    let pid = resolve(target, proc_root)?;
    let snap = collect::snapshot(pid, &Options::default().proc_root(proc_root))?;
    let out = io::stdout();
    let mut w = out.lock();
    address::write_why(&snap, addr, &mut w).map_err(|e| output_error(e, "standard output"))
}

pub(crate) fn explain(topic: Option<&str>) -> Result<(), Failure> {
    let mut text = String::new();
    match topic {
        None => {
            text.push_str("MEMORY TYPES\n\n");
            for t in MemoryType::ALL {
                text.push_str(&format!("{}\n{}\n", t.name(), wrap(t.definition())));
            }
            text.push_str("COLUMNS (all figures in bytes, from /proc/PID/smaps)\n\n");
            for c in Column::ALL {
                text.push_str(&format!("{}\n{}\n", c.header(), wrap(c.definition())));
            }
        }
        Some(t) => {
            if let Some(m) = MemoryType::parse(t) {
                text.push_str(&format!("{} (type)\n{}", m.name(), wrap(m.definition())));
            } else if let Some(c) = Column::parse(t) {
                text.push_str(&format!(
                    "{} (column)\n    {}\n",
                    c.header(),
                    c.definition()
                ));
            } else {
                return Err(Failure::usage(format!(
                    "nothing called {t:?} to explain; topics are the types ({}) and the columns ({})",
                    MemoryType::ALL.iter().map(|t| t.id()).collect::<Vec<_>>().join(", "),
                    Column::ALL.iter().map(|c| c.id()).collect::<Vec<_>>().join(", ")
                )));
            }
        }
    }
    io::stdout()
        .lock()
        .write_all(text.as_bytes())
        .map_err(|e| output_error(e, "standard output"))
}

/// Wraps a definition at 76 columns, indented by four spaces.
fn wrap(text: &str) -> String {
    let mut out = String::new();
    let mut line = String::from("   ");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 80 && line.len() > 4 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("   ");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}
