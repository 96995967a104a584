//! Collection off the UI thread: the UI sends requests and keeps drawing;
//! snapshots and process lists come back over a channel as they finish.

use std::path::PathBuf;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{Duration, Instant};

use vmmap_core::collect::{self, Options, ProcessEntry};
use vmmap_core::model::Snapshot;

/// What the UI asks for.
#[derive(Debug)]
pub enum Request {
    /// The process list.
    Processes,
    /// A snapshot of a process.
    Snapshot(u32),
    /// The combined figures of several processes (marked in the picker).
    Combined(Vec<u32>),
    /// A sample of `vmmap top`'s processes, with PSS or not.
    Top(collect::top::Select, bool),
}

/// The combined figures, the snapshots they were made from (in the order
/// of its processes) and the processes that could not be read.
pub type CombinedResult = (vmmap_core::multi::Combined, Vec<Arc<Snapshot>>, Vec<String>);

/// What comes back.
pub enum Response {
    /// The process list, or why it failed.
    Processes(Result<Vec<ProcessEntry>, String>),
    /// A snapshot (and how long it took), or why it failed.
    Snapshot(u32, Result<(Arc<Snapshot>, Duration), String>),
    /// The combined figures of the PIDs asked for, with each process's
    /// snapshot and the processes skipped, or why it failed.
    Combined(Vec<u32>, Result<CombinedResult, String>),
    /// A sample for `vmmap top`, or why it failed.
    Top(Result<Vec<vmmap_core::top::Proc>, String>),
}

/// The collection thread's handle.
pub struct Collector {
    tx: Sender<Request>,
    /// Responses, in completion order.
    pub rx: Receiver<Response>,
    /// Requests not yet answered.
    pub pending: usize,
}

impl Collector {
    /// Starts the thread.
    pub fn start(proc_root: PathBuf) -> Collector {
        let (tx, req_rx) = channel::<Request>();
        let (resp_tx, rx) = channel::<Response>();
        std::thread::Builder::new()
            .name("vmmap-collect".into())
            .spawn(move || {
                let opts = Options::default().proc_root(proc_root.clone());
                // top's sampler keeps what does not change between samples.
                let mut sampler: Option<collect::top::Sampler> = None;
                for req in req_rx {
                    let resp = match req {
                        Request::Processes => Response::Processes(
                            collect::list_processes(&proc_root).map_err(|e| e.to_string()),
                        ),
                        Request::Snapshot(pid) => {
                            let t = Instant::now();
                            let r =
                                collect::snapshot(pid, &opts).map(|s| (Arc::new(s), t.elapsed()));
                            Response::Snapshot(pid, r.map_err(|e| e.to_string()))
                        }
                        Request::Top(select, pss) => {
                            let s = match sampler.as_mut() {
                                Some(s) if *s.select() == select && s.reads_pss() == pss => s,
                                _ => sampler.insert(
                                    collect::top::Sampler::new(&proc_root, select).pss(pss),
                                ),
                            };
                            Response::Top(s.sample().map_err(|e| e.to_string()))
                        }
                        Request::Combined(pids) => {
                            let r = vmmap_core::multi::collect_keeping(&pids, &opts, false, true)
                                .map(|(c, snaps, skipped)| {
                                    (c, snaps.into_iter().map(Arc::new).collect(), skipped)
                                })
                                .map_err(|e| e.to_string());
                            Response::Combined(pids, r)
                        }
                    };
                    if resp_tx.send(resp).is_err() {
                        return;
                    }
                }
            })
            .expect("spawn the collection thread");
        Collector { tx, rx, pending: 0 }
    }

    /// Queues a request.
    pub fn request(&mut self, r: Request) {
        if self.tx.send(r).is_ok() {
            self.pending += 1;
        }
    }
}
