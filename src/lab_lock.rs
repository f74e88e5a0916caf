//! One rollcheck at a time changes the lab. Two runs on one engine would fight over it: a
//! second cluster run found the first run's paused node, took the lab for the wrong shape and
//! removed it under the first run; two single-node runs replace each other's service of the
//! same name. Commands that change the lab hold an advisory lock on a file in the temp
//! directory for as long as they run; the kernel releases it when the process ends, however
//! it ends. The file names the holder, for the error a second command prints. Commands for
//! another engine (`DOCKER_HOST`) take that engine's lock.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::PathBuf;

pub struct LabLock {
    // Held for its lock: closing the file releases it.
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error(
        "the lab is in use by another rollcheck ({holder}); wait until it ends, or stop it, then try again"
    )]
    Busy { holder: String },
    #[error("cannot lock {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// One lock per engine: the default one, or the one `DOCKER_HOST` names.
pub fn path() -> PathBuf {
    let name = match std::env::var("DOCKER_HOST") {
        Ok(host) if !host.is_empty() && host != "unix:///var/run/docker.sock" => {
            let host: String = host
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            format!("rollcheck-lab-{host}.lock")
        }
        _ => "rollcheck-lab.lock".into(),
    };
    std::env::temp_dir().join(name)
}

impl LabLock {
    /// Takes the lock at once or says who holds it; never waits.
    pub fn acquire() -> Result<LabLock, LockError> {
        let path = path();
        let io = |source| LockError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io)?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(LockError::Busy {
                    holder: if holder.is_empty() {
                        "it did not say which".into()
                    } else {
                        holder.into()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(io(e)),
        }
        let args: Vec<String> = std::env::args().collect();
        let holder = format!(
            "pid {}, `{}`, since {}",
            std::process::id(),
            args.join(" "),
            chrono::Utc::now().format("%H:%M:%S UTC")
        );
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(holder.as_bytes()))
            .map_err(io)?;
        Ok(LabLock { _file: file })
    }
}
