//! The kit's server processes: each in its own process group, killed as a whole (the server
//! and anything it spawned) when dropped, also when a test panics.

use std::io;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus};

/// A child process leading its own process group.
pub(crate) struct GroupChild(Child);

impl GroupChild {
    /// Spawns `cmd` as the leader of a new process group.
    pub(crate) fn spawn(cmd: &mut Command) -> io::Result<GroupChild> {
        cmd.process_group(0).spawn().map(GroupChild)
    }

    /// The exit status, if the process has exited.
    pub(crate) fn try_wait(&mut self) -> io::Result<Option<ExitStatus>> {
        self.0.try_wait()
    }

    /// Kills the whole group now (SIGKILL), as a crash would, and reaps the leader.
    pub(crate) fn kill(&mut self) {
        let pid = self.0.id() as i32;
        // SAFETY: kill(2) on the process group we created (process_group(0) makes the
        // child's pid its group id); no memory is involved.
        unsafe { libc::kill(-pid, libc::SIGKILL) };
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for GroupChild {
    fn drop(&mut self) {
        self.kill();
    }
}
