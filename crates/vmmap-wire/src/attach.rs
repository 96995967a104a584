//! What `vmmap attach` and an agent loaded into a running process share:
//! the control block the agent's attach entry returns, and the ring its
//! writer puts trace messages in for vmmap to take (`docs/tracing.md`,
//! "Attach").
//!
//! The agent of an attached process writes no file: the process may run
//! as another user, in another mount namespace, with descriptors vmmap
//! must not disturb. Its writer appends each trace message to a ring in
//! the agent's own memory, and vmmap, which may read and write the
//! process's memory (it could attach), copies the messages out with
//! `process_vm_readv` and appends them to its file between its snapshots.
//! The block is plain memory: every field is a little-endian `u64` at the
//! offset named here, so that the two sides need no shared type.

/// The block's first eight bytes.
pub const MAGIC: [u8; 8] = *b"VMMAPAT1";
/// Offset of the ring's address (u64).
pub const RING: usize = 8;
/// Offset of the ring's length in bytes (u64, a power of two).
pub const RING_LEN: usize = 16;
/// Offset of the bytes the agent has put in the ring since the start
/// (u64, only grows; position `head % len`). Written after the bytes.
pub const HEAD: usize = 24;
/// Offset of the bytes vmmap has taken (u64, only grows): the agent
/// writes no further than `TAIL + len`.
pub const TAIL: usize = 32;
/// Offset of vmmap's request (u64): [`DETACH`] asks the agent to remove
/// its hooks, write everything and stop.
pub const REQUEST: usize = 40;
/// Offset of the agent's state (u64): [`RUNNING`], then [`FINISHED`].
pub const STATE: usize = 48;
/// Offset of the bytes of messages the agent dropped because the ring
/// stayed full (u64).
pub const LOST: usize = 56;
/// Offset of vmmap's heartbeat (u64): vmmap bumps it at least every
/// 100 ms; when it stands still for two seconds (vmmap was killed) the
/// agent detaches by itself.
pub const HEARTBEAT: usize = 64;
/// The block's size.
pub const SIZE: usize = 72;

/// [`REQUEST`]: detach now.
pub const DETACH: u64 = 1;
/// [`STATE`]: hooks installed, writer running.
pub const RUNNING: u64 = 1;
/// [`STATE`]: hooks removed, the END message is in the ring, the writer
/// has stopped.
pub const FINISHED: u64 = 2;

/// A message in the ring: its length (u32 LE), then the message (what a
/// `CHUNK_TRACE` chunk's payload holds). Positions are taken modulo the
/// ring's length: a message may wrap around its end.
pub const FRAME_HEADER: usize = 4;

/// The `flags` bit of the HELLO message of an image traced by attaching:
/// its blocks and regions from before the attach are unknown.
pub const HELLO_ATTACHED: u64 = 2;

/// Return values of the attach entry other than a block's address.
pub mod refusal {
    /// The process is traced by an agent already (`vmmap run`, or an
    /// attach that has not finished).
    pub const ALREADY: i64 = -1;
    /// The agent could not start (memory, its writer thread).
    pub const START: i64 = -2;
    /// The configuration string was not understood.
    pub const CONFIG: i64 = -3;
    /// No module imports the allocator: nothing to hook.
    pub const NO_ALLOCATOR: i64 = -4;
    /// No room for the agent's control page and ring (RLIMIT_AS, the
    /// memory cgroup).
    pub const MEMORY: i64 = -5;
    /// No thread-specific data key left for the agent (PTHREAD_KEYS_MAX).
    pub const KEY: i64 = -6;
    /// The writer thread could not be created; the error number is
    /// `THREAD - value` (see [`thread`] and [`thread_errno`]).
    pub const THREAD: i64 = -1000;

    /// The return value for a writer thread refused with `errno`.
    pub fn thread(errno: i32) -> i64 {
        THREAD - i64::from(errno.max(0))
    }

    /// The error number of a [`thread`] return value.
    pub fn thread_errno(r: i64) -> Option<i32> {
        (r <= THREAD).then(|| i32::try_from(THREAD - r).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::refusal;

    #[test]
    fn a_refused_thread_carries_its_error_number() {
        // EAGAIN: a task limit.
        assert_eq!(refusal::thread_errno(refusal::thread(11)), Some(11));
        assert_eq!(refusal::thread_errno(refusal::thread(0)), Some(0));
        for other in [
            refusal::ALREADY,
            refusal::START,
            refusal::CONFIG,
            refusal::NO_ALLOCATOR,
        ] {
            assert_eq!(refusal::thread_errno(other), None);
        }
    }
}
